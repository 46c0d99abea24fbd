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
