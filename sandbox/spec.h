// capsa::sandbox — what a worker is started with: the sandbox spec.
//
// A `Spec` is plain data, built and validated by `SpecBuilder` (Sandbox2's
// PolicyBuilder::TryBuild style: every setter records problems, `build()`
// returns all of them at once). The policy layer fills a builder from a
// policy file; C++ callers fill it by hand; both go through the same checks.
//
// Defaults are the safe choice: no extra binds, a 64 MiB /tmp, violations
// answered with EPERM, an empty environment. One exception, kept for
// compatibility: stdout and stderr are the supervisor's (Output::kInherit);
// see Output for when to choose otherwise. Resource limits have no default
// here: the caller states every one (see Limits).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/error.h"

namespace capsa::sandbox {

// Resource limits. Each is applied inside the sandbox before the worker
// starts; 0 means "no limit" only where stated.
//
// No defaults: every field starts as kUnsetLimit and SpecBuilder::build()
// refuses a spec with any field still unset, naming it. A limit is a
// security decision, so it is made once, by the policy layer
// (policy/limits.h, docs/POLICY.md), and passed down explicitly; a caller
// that forgot one must not silently get a second set of defaults.
inline constexpr std::uint64_t kUnsetLimit = ~std::uint64_t{0};

struct Limits {
  // RLIMIT_AS. Allocations past it fail (malloc returns NULL, operator new
  // throws); the kernel does not kill. Note: AddressSanitizer builds need
  // terabytes of address space, so sanitized workers need 0 here.
  // 0 = unlimited.
  std::uint64_t address_space_bytes = kUnsetLimit;
  // RLIMIT_CPU: SIGXCPU at this many CPU seconds, SIGKILL one second later.
  // 0 = unlimited.
  std::uint64_t cpu_seconds = kUnsetLimit;
  // Wall clock from spawn; the supervisor enforces it (Worker::deadline(),
  // Worker::expire()). 0 = no deadline.
  std::uint64_t wall_seconds = kUnsetLimit;
  // RLIMIT_NPROC: processes + threads of the sandbox's uid. The sandbox runs
  // in its own user namespace, where the kernel counts per (namespace, uid),
  // so this bounds the worker's own tree, not the host user's processes.
  std::uint64_t max_processes = kUnsetLimit;
  // RLIMIT_NOFILE: highest fd number + 1 the worker can open.
  std::uint64_t max_open_files = kUnsetLimit;
  // RLIMIT_FSIZE: largest file it can write (in its /tmp). SIGXFSZ past it.
  std::uint64_t max_file_size_bytes = kUnsetLimit;
  // RLIMIT_CORE is always 0 (no core files: they could leak memory contents
  // and fill the disk); not configurable.
};

// The fields of `l` still at kUnsetLimit, by name ("cpu_seconds", ...).
std::vector<std::string_view> unset_limits(const Limits& l);

// What happens when the worker makes a syscall that the filter does not
// allow. Either way the supervisor receives a Violation record.
enum class ViolationAction : std::uint8_t {
  kErrno,  // the call fails with EPERM and the worker continues
  kKill,   // the whole sandbox is killed; exit status says kViolation
};

// Where the worker's stdout or stderr goes. stdin is always /dev/null.
//
// kInherit (the default, for compatibility) hands the worker the
// supervisor's own fd 1 / fd 2. When that is an operator's terminal, a
// hostile worker can write terminal escape sequences to it (retitle the
// window, fake or hide log lines, and on some terminal emulators worse).
// It cannot inject input: the sandbox has no controlling terminal
// (--new-session) and TIOCSTI is refused by the filter. Supervisors that run
// untrusted workers with a terminal on fd 1/2 should use kNull or kPipe.
// A caller that has its own fd for a stream (a pty, a log file) passes it
// to spawn() in StdioFds (sandbox.h), which overrides this setting.
enum class Output : std::uint8_t {
  kInherit,  // the supervisor's fd 1 (stdout) or fd 2 (stderr); /dev/null if closed
  kNull,     // /dev/null: writes succeed and are discarded
  kPipe,     // a pipe; the supervisor reads the other end from
             // Worker::stdout_pipe() / stderr_pipe() (non-blocking) and
             // must drain it: a full pipe (64 KiB) blocks the worker's writes
};

struct Bind {
  std::string source;  // absolute path on the host
  std::string dest;    // absolute path inside the sandbox
};

struct Spec {
  std::string name;                  // worker name, used in every report
  // Absolute path on the host. The supervisor opens it (never following a
  // symlink there) and the sandbox runs it from /.capsa/program, which is
  // also what /proc/self/exe and a script's $0 show inside.
  std::string program;
  // argv[0] included; defaults to {file name of program} (default_argv0).
  // argv[0] is what the worker reads as its name: capsa does not put the
  // host directory there.
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // the worker's whole environment
  std::vector<Bind> ro_binds;        // extra read-only binds, at most kMaxBinds
  std::uint64_t tmpfs_bytes = 64ull << 20;  // size cap of /tmp
  Limits limits;
  std::vector<std::string> extra_syscalls;  // names, added to the allowlist
  ViolationAction on_violation = ViolationAction::kErrno;
  // The trusted launcher executable on the host (opened by the supervisor;
  // bubblewrap execs it through that fd, it is not mounted in the sandbox).
  // Empty = default_launcher_path().
  std::string launcher;
  // spawn() refuses to start the worker when no cgroup can be made for it
  // (Worker::cgroup() would be kNone), instead of running it with memory
  // and processes bounded by rlimits only.
  bool require_cgroup = false;
  Output stdout_to = Output::kInherit;  // the worker's fd 1
  Output stderr_to = Output::kInherit;  // the worker's fd 2 (bubblewrap's own
                                        // errors still go to the supervisor's fd 2)
};

// Where capsa-launcher is: $CAPSA_LAUNCHER if set (the supervisor's own
// environment is trusted), else the path it was built at.
std::string default_launcher_path();

// The argv[0] a worker gets by default: the file name of `program`
// ("/opt/plugins/wordcount" -> "wordcount"). Programs that print their name
// or dispatch on it (busybox-style) keep working; the host directory stays
// out of the sandbox.
std::string default_argv0(std::string_view program);

// Collects a spec and its errors. Every setter can be called in any order;
// build() validates the whole and returns every problem in one error
// (kInvalidArgument, one line per problem).
class SpecBuilder {
 public:
  SpecBuilder& name(std::string name);
  // Absolute host path; run from /.capsa/program in the sandbox (see Spec).
  SpecBuilder& program(std::string path);
  SpecBuilder& args(std::vector<std::string> argv);  // argv[0] included
  SpecBuilder& env(std::string key, std::string value);
  SpecBuilder& ro_bind(std::string source, std::string dest);
  SpecBuilder& ro_bind(const std::string& path) { return ro_bind(path, path); }
  SpecBuilder& tmpfs_bytes(std::uint64_t bytes);
  // Required: build() fails unless every field of `limits` is set.
  SpecBuilder& limits(const Limits& limits);
  // Adds a syscall by name (as libseccomp knows it, e.g. "socket"). Unknown
  // names are a build() error, never silently ignored.
  SpecBuilder& allow_syscall(std::string name);
  SpecBuilder& on_violation(ViolationAction action);
  SpecBuilder& launcher(std::string path);
  SpecBuilder& stdout_to(Output where);
  SpecBuilder& stderr_to(Output where);
  SpecBuilder& require_cgroup(bool required);

  // Checks: name non-empty, printable, <= 64 bytes; program and bind paths
  // absolute, no "..", no NUL; bind sources exist, at most kMaxBinds; dests not over the
  // launcher's mount points (/proc, /dev, /tmp, /.capsa); env keys non-empty
  // with no '=' and no NUL; argv/env sizes bounded (kMaxArgBytes); tmpfs
  // size within [1 MiB, 16 GiB]; every limit set (no kUnsetLimit); syscall
  // names known to libseccomp.
  Result<Spec> build() const;

 private:
  Spec spec_;
  std::vector<std::string> errors_;
};

// The mount points the sandbox makes itself; a bind at one of them or below
// (or at "/") is refused: it would hide the launcher or put host content in
// place of /proc or /dev. Public so the policy check refuses the same.
inline constexpr std::array<std::string_view, 4> kReservedMountPoints{"/proc", "/dev", "/tmp",
                                                                      "/.capsa"};
bool is_reserved_mount_point(std::string_view path);

// An absolute path with no "." or ".." component, no NUL, at most 4096 bytes:
// what SpecBuilder accepts for a program, a bind or the launcher.
bool is_clean_absolute_path(std::string_view path);

// Read-only binds a spec may have: each is one fd or one mount on the way
// into the sandbox, and spawn() prepares them in fixed-size tables.
inline constexpr std::size_t kMaxBinds = 64;

// Total bytes of argv + env the builder accepts. The launcher's
// configuration travels in one memfd; this bounds what it must parse.
inline constexpr std::size_t kMaxArgBytes = 256 * 1024;

}  // namespace capsa::sandbox
