// capsa::sandbox — the host files a sandbox is built from, opened by the
// supervisor itself.
//
// bubblewrap looks a bind source up by name after it has switched to the
// sandbox's credentials, so a launcher, program or bind kept under a private
// directory (a 0700 home, a 0750 service dir) could not be started, and a
// path swapped between a check and the spawn would be followed. Instead the
// supervisor opens each file once, as itself (O_PATH, the last component never
// followed, no /proc magic links on the way), checks what it got, and
// spawn() hands bubblewrap exactly that file (docs/SANDBOX.md, "What is
// bound, and how"). The directories on the way are resolved once, as the
// supervisor's user, when the file is opened; after that only the file's own
// mode matters, read for the uid the sandbox runs as.
//
// The same checks back `capsa check` (policy/), so a policy that would fail
// at spawn fails there first, with the same text.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "sandbox/spec.h"

namespace capsa::sandbox {

// The uid/gid bubblewrap runs as when the supervisor is root. Never the
// sandbox as kernel uid 0: root's processes are exempt from RLIMIT_NPROC
// (so a fork bomb would not be bounded) and a kernel escape would land as
// root. The sandbox sees uid/gid 65534 inside in every case.
inline constexpr uid_t kUnprivilegedId = 65534;

// The credentials the sandbox's processes have on host files. A supervisor
// running as root starts bubblewrap as uid/gid 65534 with no supplementary
// groups (never kernel uid 0 in a sandbox: see docs/SANDBOX.md); any other
// supervisor's sandbox keeps its uid, gid and groups (its user namespace maps
// the caller to 65534 inside, but files are checked against the caller).
struct SandboxIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// The identity a sandbox spawned by this process has.
SandboxIdentity sandbox_identity();

// What a host file is for; decides the checks and the words of an error.
enum class HostFileUse : std::uint8_t {
  kLauncher,    // regular file the sandbox's uid can execute
  kProgram,     // the same; a script ("#!") must also be readable by it
  kBindSource,  // a directory it can search, or a regular file it can read
};

// Opens `path` (absolute) with O_PATH | O_NOFOLLOW | O_CLOEXEC and
// RESOLVE_NO_MAGICLINKS, then checks the file for `use` and `id`: its type,
// its permission bits for `id` (owner, group or other class, as the kernel
// picks; POSIX ACLs are not read), and for executables a mount that allows
// exec. A symbolic link as the last component is refused, never followed.
// Errors name the file, what is wrong and what to change, e.g.
//   program /srv/p/w (mode 0700, owner 0:0) cannot be executed by the
//   sandbox's uid 65534 (the "other" permission bits apply): chmod o+x /srv/p/w
// kNotFound when the path does not exist, kInvalidArgument otherwise.
Result<Fd> open_host_file(HostFileUse use, const std::string& path, const SandboxIdentity& id);

// The host files of one spec, opened and checked: spawn() binds exactly
// these, whatever happens to their paths after open_host_files() returned
// (a rename, a symlink put in their place). They can serve several spawns.
struct HostFiles {
  Fd launcher;
  Fd program;
  std::vector<Fd> binds;  // one per Spec::ro_binds entry, in order
};

// Opens the launcher, the program and every ro_bind source of `spec` for the
// identity of this process (sandbox_identity()).
Result<HostFiles> open_host_files(const Spec& spec);

}  // namespace capsa::sandbox
