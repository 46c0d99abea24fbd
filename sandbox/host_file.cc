#include "sandbox/host_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "capabilities/sys.h"

namespace capsa::sandbox {
namespace {

std::string_view use_name(HostFileUse use) {
  switch (use) {
    case HostFileUse::kLauncher: return "launcher";
    case HostFileUse::kProgram: return "program";
    case HostFileUse::kBindSource: return "read-only bind";
  }
  return "file";
}

Error problem(Errc code, HostFileUse use, const std::string& path, const std::string& what) {
  return Error{code, std::string(use_name(use)) + " " + path + " " + what, 0};
}

// The permission bits of `st` that apply to `id`, the way the kernel picks
// them: the owner's if it owns the file, else the group's if it is in the
// file's group, else the others'. (Only the first class that matches counts:
// an owner without x cannot execute even when "other" has x.)
struct Applicable {
  unsigned bits;     // rwx as 4/2/1
  const char* name;  // for the message
  char chmod_who;    // u, g or o
};

Applicable applicable(const struct stat& st, const SandboxIdentity& id) {
  if (st.st_uid == id.uid) return {(st.st_mode >> 6) & 7u, "owner", 'u'};
  bool in_group = st.st_gid == id.gid ||
                  std::find(id.groups.begin(), id.groups.end(), st.st_gid) != id.groups.end();
  if (in_group) return {(st.st_mode >> 3) & 7u, "group", 'g'};
  return {st.st_mode & 7u, "other", 'o'};
}

// Whether the file starts with "#!". A script is exec'ed by its interpreter,
// which then opens it by name as the sandbox's uid: it needs r as well as x.
// Read through our own fd (a reopen of the very inode, no path lookup). If we
// cannot read it ourselves, neither can an unprivileged sandbox (same
// identity), and as root we always can: then "not a script" is the answer
// that leaves the verdict to the x check alone.
bool is_script(const Fd& fd) {
  std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  Fd readable(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!readable.valid()) return false;
  char head[2] = {};
  ssize_t n = ::pread(readable.get(), head, sizeof head, 0);
  return n == 2 && head[0] == '#' && head[1] == '!';
}

std::string mode_text(const struct stat& st) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "(mode %04o, owner %u:%u)", st.st_mode & 07777u,
                static_cast<unsigned>(st.st_uid), static_cast<unsigned>(st.st_gid));
  return buf;
}

// "cannot be executed by the sandbox's uid 65534 (...): chmod o+x PATH".
Result<void> check_bits(HostFileUse use, const std::string& path, const struct stat& st,
                        unsigned need, const SandboxIdentity& id, bool script) {
  Applicable a = applicable(st, id);
  unsigned missing = need & ~a.bits;
  if (missing == 0) return {};
  std::string verb = S_ISDIR(st.st_mode)  ? "searched"
                     : missing == 4u      ? "read"
                     : missing == 1u      ? "executed"
                                          : "read and executed";
  std::string letters = std::string(missing & 4u ? "r" : "") + (missing & 1u ? "x" : "");
  std::string text = mode_text(st) + " cannot be " + verb + " by the sandbox's uid " +
                     std::to_string(id.uid) + (script ? ", which a script needs" : "") +
                     " (the \"" + a.name + "\" permission bits apply): chmod " + a.chmod_who +
                     "+" + letters + " " + path;
  return std::unexpected(problem(Errc::kInvalidArgument, use, path, text));
}

}  // namespace

SandboxIdentity sandbox_identity() {
  SandboxIdentity id;
  if (::geteuid() == 0) {
    id.uid = kUnprivilegedId;
    id.gid = kUnprivilegedId;
    return id;  // bubblewrap is started with setgroups(0)
  }
  id.uid = ::geteuid();
  id.gid = ::getegid();
  int n = ::getgroups(0, nullptr);
  if (n > 0) {
    id.groups.resize(static_cast<std::size_t>(n));
    n = ::getgroups(n, id.groups.data());
    id.groups.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  return id;
}

Result<Fd> open_host_file(HostFileUse use, const std::string& path, const SandboxIdentity& id) {
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos) {
    return std::unexpected(problem(Errc::kInvalidArgument, use, path, "must be an absolute path"));
  }
  // O_PATH: no open of the object itself (a FIFO cannot block us, a device
  // is not touched). O_NOFOLLOW: a symlink as the last component is returned
  // as itself and refused below, so a link put there later cannot redirect
  // us. RESOLVE_NO_MAGICLINKS: no /proc/PID/{root,cwd,fd} on the way, which
  // would lead into another process's view of the filesystem.
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_NO_MAGICLINKS;
  auto fd = sys_fd("openat2", path, [&] {
    return static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how));
  });
  if (!fd) {
    int err = fd.error().sys_errno;
    if (err == ENOENT) return std::unexpected(problem(Errc::kNotFound, use, path, "does not exist"));
    auto e = problem(Errc::kInvalidArgument, use, path,
                     std::string("cannot be opened: ") + std::strerror(err));
    e.sys_errno = err;
    return std::unexpected(std::move(e));
  }
  struct stat st {};
  CAPSA_TRY(sys("fstat", path, [&] { return ::fstat(fd->get(), &st); }));
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = ::readlinkat(fd->get(), "", target, sizeof target - 1);
    std::string to = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
    return std::unexpected(problem(Errc::kInvalidArgument, use, path,
                                   "is a symbolic link (to " + to +
                                       "); name the file itself: a link there is never followed"));
  }
  if (use == HostFileUse::kBindSource) {
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
      return std::unexpected(
          problem(Errc::kInvalidArgument, use, path, "is neither a directory nor a regular file"));
    }
    CAPSA_TRY(check_bits(use, path, st, S_ISDIR(st.st_mode) ? 1u : 4u, id, false));
    return fd;
  }
  if (!S_ISREG(st.st_mode)) {
    return std::unexpected(problem(Errc::kInvalidArgument, use, path, "is not a regular file"));
  }
  // A bind keeps the flags of the mount it comes from: on a noexec mount the
  // exec inside the sandbox would fail with EACCES whatever the mode says.
  struct statvfs vfs {};
  if (::fstatvfs(fd->get(), &vfs) == 0 && (vfs.f_flag & ST_NOEXEC) != 0) {
    return std::unexpected(problem(Errc::kInvalidArgument, use, path,
                                   "is on a filesystem mounted noexec; the sandbox could not "
                                   "execute it"));
  }
  bool script = use == HostFileUse::kProgram && is_script(*fd);
  CAPSA_TRY(check_bits(use, path, st, script ? 5u : 1u, id, script));
  return fd;
}

Result<HostFiles> open_host_files(const Spec& spec) {
  const SandboxIdentity id = sandbox_identity();
  HostFiles files;
  CAPSA_ASSIGN_OR_RETURN(files.launcher, open_host_file(HostFileUse::kLauncher, spec.launcher, id));
  CAPSA_ASSIGN_OR_RETURN(files.program, open_host_file(HostFileUse::kProgram, spec.program, id));
  for (const Bind& b : spec.ro_binds) {
    CAPSA_ASSIGN_OR_RETURN(Fd source, open_host_file(HostFileUse::kBindSource, b.source, id));
    files.binds.push_back(std::move(source));
  }
  return files;
}

}  // namespace capsa::sandbox
