// capsa::sandbox — the supervisor-side state of one worker. Internal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "capabilities/fd.h"
#include "capabilities/port.h"
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
};

namespace detail {

struct StatusRecord;

// Classifies the end of a worker. `exact` is the launcher's kExit record if
// one arrived; `bwrap_status`/`bwrap_ru` are from wait4 on bubblewrap.
ExitStatus classify_exit(const Worker::State& s, const StatusRecord* exact, int bwrap_status,
                         std::chrono::microseconds bwrap_cpu, std::uint64_t bwrap_maxrss_kb,
                         std::chrono::microseconds wall);

}  // namespace detail
}  // namespace capsa::sandbox
