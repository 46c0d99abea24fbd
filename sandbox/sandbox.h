// capsa::sandbox — start a worker confined by bubblewrap, seccomp and limits,
// and hold it from the supervisor side.
//
// spawn() runs bubblewrap (arguments passed through a sealed memfd with
// `--args FD`, never argv) with new user, pid, net, mount, ipc, uts and
// cgroup namespaces, a read-only minimal root, a size-capped /tmp, a fresh
// /proc and minimal /dev, --die-with-parent, --new-session, all capabilities
// dropped and a clean environment, in a cgroup of its own where the
// supervisor may make one (CgroupKind). Inside, capsa-launcher is the pid-1 of
// the sandbox: it forks the worker, which applies rlimits, installs the
// seccomp filter (compiled once per syscall set by the supervisor), hands
// the seccomp listener fd to the supervisor, keeps only fds 0 (/dev/null),
// 1 and 2 (see Spec::stdout_to/stderr_to) and 3 (the bootstrap port) and
// execs the program. The
// launcher then waits and reports the worker's exact exit status and rusage.
// When the launcher (pid 1) exits, the kernel kills every process left in
// the sandbox's pid namespace, so no descendant outlives its worker.
// See docs/SANDBOX.md for the threat model.
//
// Everything here is usable from an epoll loop: pidfd() becomes readable
// when the sandbox has exited, notify_fd() when a violation is pending;
// try_reap() and handle_violation() never block. wait() is the blocking
// convenience for tests and simple callers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "sandbox/host_file.h"
#include "sandbox/spec.h"

namespace capsa::sandbox {

// One reported seccomp violation: a syscall outside the allowlist.
struct Violation {
  std::string worker;       // Spec::name
  std::string syscall;      // e.g. "ptrace"; "unknown(434)" if libseccomp lacks it
  int nr = -1;              // syscall number (x86_64)
  std::uint64_t args[6]{};  // raw arguments, as the worker passed them
  int pid = 0;              // the calling thread, in the supervisor's pid namespace
  ViolationAction action = ViolationAction::kErrno;  // what was done
};

// Why the worker's life ended.
enum class ExitKind : std::uint8_t {
  kExited,       // exit(code)
  kSignaled,     // killed by `signal` (not by us, not a limit)
  kViolation,    // killed for a seccomp violation (our kill, or SIGSYS from
                 // the filter's kill rules: 32-bit/x32 syscalls)
  kLimitMemory,  // the worker died abnormally (signal, or exit != 0) and
                 // either its cgroup's OOM killer fired (exact) or, without
                 // a cgroup, its peak RSS reached 75% of
                 // Limits::address_space_bytes (RLIMIT_AS makes allocations
                 // fail rather than kill, so that is an inference;
                 // docs/SANDBOX.md says why and its limits).
  kLimitCpu,     // RLIMIT_CPU: SIGXCPU or the SIGKILL that follows it
  kLimitWall,    // killed by expire() at the wall-clock deadline
  kKilled,       // killed by Worker::kill()
  kLimitFileSize,  // RLIMIT_FSIZE: SIGXFSZ, a write past max_file_size_bytes
                   // with the signal's default action (a worker that ignores
                   // it gets EFBIG instead and goes on)
};

std::string_view exit_kind_name(ExitKind kind) noexcept;

// The worker's cgroup (docs/SANDBOX.md, "The worker's cgroup"): v2 in a
// delegated subtree, v1 memory (+ pids, cpuacct) hierarchies, or none, when
// the supervisor may make no cgroup (unprivileged without delegation).
// Without one, memfds, tmpfs pages and kernel memory are bounded only per
// file or per process, not for the sandbox as a whole.
enum class CgroupKind : std::uint8_t { kNone, kV1, kV2 };

std::string_view cgroup_kind_name(CgroupKind kind) noexcept;  // "none", "v1", "v2"

struct ExitStatus {
  ExitKind kind = ExitKind::kExited;
  int code = 0;    // exit code (kExited)
  int signal = 0;  // terminating signal, when one did (0 otherwise)
  // user + system. With a cgroup: the cgroup's counter, read after its last
  // process ended (every process of the sandbox, however it ended: a wall
  // kill included). Without: the launcher's getrusage(RUSAGE_CHILDREN) (the
  // worker and every descendant reaped inside); if we killed the sandbox,
  // the CPU time its processes had used when we sent the kill (read from
  // /proc just before).
  std::chrono::microseconds cpu_time{0};
  // From the launcher's getrusage (or bubblewrap's, when it could not
  // report): the largest resident set of any one process.
  std::uint64_t peak_rss_bytes = 0;
  // From the cgroup (0 without one): the most memory the sandbox held at
  // once, all processes together, memfds, tmpfs pages and kernel memory
  // included.
  std::uint64_t peak_memory_bytes = 0;
  CgroupKind cgroup = CgroupKind::kNone;
  std::chrono::microseconds wall_time{0};  // spawn() to reap
  // True when the worker's own status came from the launcher (exact);
  // false when only bubblewrap's was available (then kExited/kSignaled may
  // be ambiguous: bwrap reports a signal as 128+N).
  bool exact = false;

  // "exited 0", "signaled SIGSEGV", "violation", "limit cpu", ... + usage.
  std::string to_string() const;
};

// Fds for the worker's stdout and stderr chosen by the caller (a pty, a log
// file, a pipe it already has), for spawn()'s third form. A valid Fd
// overrides the spec's Output for that stream; an invalid one leaves it.
// Write access is what the worker gets: whatever the object lets a writer
// do (a terminal's escape sequences, a file's size limit) is the caller's
// choice.
struct StdioFds {
  Fd out;
  Fd err;
};

namespace detail {
struct WorkerAccess;  // worker_state.h: for spawn.cc and pool.cc
}  // namespace detail

class Worker {
 public:
  Worker(Worker&&) noexcept;
  Worker& operator=(Worker&&) noexcept;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Kills the sandbox (SIGKILL) if it still runs and reaps it, so dropping a
  // Worker never leaves a process behind.
  ~Worker();

  const std::string& name() const noexcept;
  // The bubblewrap process that owns the sandbox (our child). Killing it
  // kills the whole sandbox.
  int pid() const noexcept;
  // Readable (EPOLLIN) once the sandbox has exited: then call try_reap().
  const Fd& pidfd() const noexcept;
  // Readable when a seccomp notification is pending: call handle_violation().
  // While one is pending, the calling worker thread is blocked in the kernel
  // waiting for our answer, so the supervisor must service this fd.
  const Fd& notify_fd() const noexcept;

  // Reads one seccomp notification, answers it (EPERM, or kills the sandbox
  // per Spec::on_violation) and returns the record. std::nullopt when none
  // was pending (or the caller died before we answered). When no task uses
  // the filter any more (POLLHUP), the notify fd is closed here so that an
  // event loop stops seeing it; notify_fd() is then invalid. Never blocks; we
  // never let a call continue, so the notify TOCTOU caveats do not apply.
  Result<std::optional<Violation>> handle_violation();

  // The wall-clock deadline on CLOCK_MONOTONIC (std::chrono::steady_clock),
  // for a timerfd. std::nullopt when Limits::wall_seconds is 0.
  std::optional<std::chrono::steady_clock::time_point> deadline() const noexcept;
  // The deadline passed: kill the sandbox and classify it as kLimitWall.
  Result<void> expire();
  // Kill the sandbox now (SIGKILL to the whole tree); classified kKilled
  // unless an earlier cause (violation, deadline) was recorded first.
  Result<void> kill();

  // Non-blocking: the status if the sandbox has exited and was reaped now,
  // std::nullopt if it still runs. After a status was returned, further
  // calls return it again.
  Result<std::optional<ExitStatus>> try_reap();
  // Blocks until the sandbox exits. Answers pending violations meanwhile (a
  // worker blocked in a notified syscall cannot exit otherwise), and enforces
  // the deadline.
  Result<ExitStatus> wait();
  // The same, and calls `on_violation` with each violation answered meanwhile,
  // in the order they were answered (the callback runs on this thread,
  // before the worker's call returns; it must not call back into this
  // Worker). The library keeps none of them: a worker under kErrno can make
  // denied calls at will, so what to keep (all, a count, the first N) is the
  // caller's memory decision.
  Result<ExitStatus> wait(const std::function<void(const Violation&)>& on_violation);

  // Which cgroup holds the sandbox and, with none (or v1 without some
  // controller), why: "no cgroup: ...: Permission denied". For the
  // supervisor's start-up report and audit.
  CgroupKind cgroup() const noexcept;
  const std::string& cgroup_note() const noexcept;

  // The read ends of the worker's stdout/stderr pipes when the spec said
  // Output::kPipe (invalid Fd otherwise): non-blocking, close-on-exec. They
  // report end-of-file once every process of the sandbox has closed its
  // end (normally: when the sandbox is gone). Bytes read are the worker's
  // and hostile: sanitize before showing them to anyone.
  const Fd& stdout_pipe() const noexcept;
  const Fd& stderr_pipe() const noexcept;
  // Moves a pipe's read end out (e.g. into an event loop that owns it);
  // the accessor above is invalid afterwards.
  Fd take_stdout_pipe() noexcept;
  Fd take_stderr_pipe() noexcept;

  struct State;  // private; defined in worker.cc

 private:
  friend Result<Worker> spawn(const Spec& spec, const HostFiles& files, Fd bootstrap,
                              StdioFds stdio);
  friend struct detail::WorkerAccess;
  explicit Worker(std::unique_ptr<State> state) noexcept;
  std::unique_ptr<State> state_;
};

// Starts a worker. `bootstrap` (normally one end of make_channel()) becomes
// fd 3 in the worker; it is consumed either way. Opens the spec's launcher,
// program and ro_bind sources first (open_host_files(), host_file.h): the
// program runs from /.capsa/program, each bind is at its destination.
// Blocks until the worker program has been exec'ed (a few milliseconds) or
// failed to start; start failures are precise: "program /x/y does not
// exist", "seccomp load failed: ...", "bubblewrap failed (exit 1): see its
// stderr".
//
// Thread-safety: spawn() may be called from any thread and that thread may
// exit afterwards: the fork happens on an internal long-lived thread, so
// bubblewrap's parent-death signal fires only when the supervisor process
// dies, not when the calling thread does.
Result<Worker> spawn(const Spec& spec, Fd bootstrap);
// The same, with the worker's stdout/stderr given as fds (see StdioFds);
// they are consumed either way. With an fd given, the spec's kPipe for that
// stream is not made and its Worker::*_pipe() is invalid.
Result<Worker> spawn(const Spec& spec, Fd bootstrap, StdioFds stdio);
// The same, with the host files opened beforehand (open_host_files(spec)):
// the sandbox gets exactly those files, whatever became of their paths in
// between. `files` stays the caller's and may serve further spawns.
Result<Worker> spawn(const Spec& spec, const HostFiles& files, Fd bootstrap, StdioFds stdio = {});

}  // namespace capsa::sandbox
