// capsa::sandbox — the supervisor-side state of one worker. Internal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "capabilities/fd.h"
#include "capabilities/port.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"

namespace capsa::sandbox {

// Why we killed the sandbox, if we did. The first cause wins.
enum class KillCause : std::uint8_t { kNone, kRequested, kWall, kViolation };

struct Worker::State {
  std::string name;
  Limits limits;
  ViolationAction action = ViolationAction::kErrno;
  pid_t pid = -1;      // bubblewrap, our child; valid until reaped
  Fd pidfd;            // of bubblewrap
  Fd notify;           // seccomp listener of the worker's filter
  Port status;         // launcher -> us, SOCK_SEQPACKET, non-blocking after start
  Fd stdout_pipe;      // read ends for Output::kPipe
  Fd stderr_pipe;
  std::chrono::steady_clock::time_point started;
  std::optional<std::chrono::steady_clock::time_point> deadline;
  KillCause cause = KillCause::kNone;
  // A pooled sandbox not yet handed over (sandbox/pool.h): its launcher's
  // child waits for the worker's fds; no deadline runs.
  bool pooled_idle = false;
  std::optional<ExitStatus> result;  // set once reaped
  // Without a cgroup: the CPU time the sandbox's processes had used when we
  // killed it (read from /proc before the kill; their rusage is lost with
  // them).
  std::optional<std::chrono::microseconds> cpu_at_kill;
  // Destroyed after the body of ~Worker has reaped bubblewrap: drains and
  // removes the cgroup directories.
  detail::Cgroup cgroup;
};

namespace detail {

struct StatusRecord;

// Reaches a Worker's state from spawn.cc and pool.cc.
struct WorkerAccess {
  static Worker make(std::unique_ptr<Worker::State> s) noexcept { return Worker(std::move(s)); }
  static Worker::State& state(Worker& w) noexcept { return *w.state_; }
};

// Starts a sandbox of `spec`: spawn() when `pooled` is false. Pooled: no
// bootstrap or output fds (`bootstrap` and `stdio` are ignored), and it
// returns once the launcher's child has installed its filter and sent the
// listener; the sandbox then waits for hand_over(). (spawn.cc)
Result<Worker> start_sandbox(const Spec& spec, const HostFiles& files, Fd bootstrap,
                             StdioFds stdio, bool pooled);

// Hands a pooled sandbox (start_sandbox(..., pooled = true)) its worker's
// bootstrap port and outputs (`stdio`'s fds where valid, else as
// spec.stdout_to/stderr_to say) and waits until the program is exec'ed.
// The caller's fds are lent (the kernel passes copies), so on failure they
// are still the caller's. Errc::kClosed: the sandbox had ended, or ended
// before it accepted the fds, so nothing reached a worker and the fds may
// go to another sandbox; other errors are those of a cold start (e.g. the
// program's exec failed). On success the wall-clock deadline starts now.
Result<void> hand_over(Worker& w, const Spec& spec, const Fd& bootstrap, const StdioFds& stdio);

// True when a pooled, idle sandbox can no longer be handed over: bubblewrap
// exited, or the launcher said anything (its child only speaks after a
// hand-over, so a record now means it ended or failed).
bool pooled_sandbox_ended(const Worker::State& s) noexcept;

// Classifies the end of a worker. `exact` is the launcher's kExit record if
// one arrived; `bwrap_status`/`bwrap_ru` are from wait4 on bubblewrap.
// `usage` is the cgroup's, when there is one.
ExitStatus classify_exit(const Worker::State& s, const StatusRecord* exact, int bwrap_status,
                         std::chrono::microseconds bwrap_cpu, std::uint64_t bwrap_maxrss_kb,
                         std::chrono::microseconds wall, const CgroupUsage* usage);

// The CPU time (user + system, reaped children included) of `root` and
// every descendant, from /proc/PID/stat: what a sandbox has used so far.
// std::nullopt when `root` is gone. Without CONFIG_PROC_CHILDREN, the whole
// of /proc is read once to find the tree.
std::optional<std::chrono::microseconds> tree_cpu_time(pid_t root);

}  // namespace detail
}  // namespace capsa::sandbox
