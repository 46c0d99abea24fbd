// How a worker's end is classified. The order of the checks is the policy:
// a cause we recorded ourselves (violation kill, deadline, kill()) beats
// what the kernel reports, because our SIGKILL is what the kernel saw.
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "sandbox/launcher_protocol.h"
#include "sandbox/worker_state.h"

namespace capsa::sandbox {

std::string_view exit_kind_name(ExitKind kind) noexcept {
  switch (kind) {
    case ExitKind::kExited: return "exited";
    case ExitKind::kSignaled: return "signaled";
    case ExitKind::kViolation: return "violation";
    case ExitKind::kLimitMemory: return "limit memory";
    case ExitKind::kLimitCpu: return "limit cpu";
    case ExitKind::kLimitWall: return "limit wall";
    case ExitKind::kKilled: return "killed";
    case ExitKind::kLimitFileSize: return "limit file size";
  }
  return "unknown";
}

std::string ExitStatus::to_string() const {
  std::string out(exit_kind_name(kind));
  if (kind == ExitKind::kExited) out += " " + std::to_string(code);
  if (signal != 0) {
    const char* abbrev = ::sigabbrev_np(signal);
    out += std::string(" SIG") + (abbrev != nullptr ? abbrev : std::to_string(signal).c_str());
  }
  out += " (cpu " + std::to_string(cpu_time.count() / 1000) + " ms, peak rss " +
         std::to_string(peak_rss_bytes / 1024) + " KiB" +
         (cgroup != CgroupKind::kNone
              ? ", cgroup peak " + std::to_string(peak_memory_bytes / 1024) + " KiB"
              : "") +
         ", wall " +
         std::to_string(wall_time.count() / 1000) + " ms" + (exact ? "" : ", from bwrap") + ")";
  return out;
}

namespace detail {

ExitStatus classify_exit(const Worker::State& s, const StatusRecord* exact, int bwrap_status,
                         std::chrono::microseconds bwrap_cpu, std::uint64_t bwrap_maxrss_kb,
                         std::chrono::microseconds wall, const CgroupUsage* usage) {
  ExitStatus st;
  st.wall_time = wall;
  st.cgroup = s.cgroup.kind();
  bool exited = false;
  if (exact != nullptr) {
    st.exact = true;
    exited = exact->wait_code == CLD_EXITED;
    (exited ? st.code : st.signal) = exact->wait_status;
    st.cpu_time = std::chrono::microseconds(exact->utime_us + exact->stime_us);
    st.peak_rss_bytes = exact->maxrss_kb * 1024;
  } else {
    // bubblewrap itself was killed (by us, or it died) or the launcher could
    // not report: only bwrap's view is left.
    st.cpu_time = bwrap_cpu;
    st.peak_rss_bytes = bwrap_maxrss_kb * 1024;
    if (WIFEXITED(bwrap_status)) {
      exited = true;
      st.code = WEXITSTATUS(bwrap_status);
    } else {
      st.signal = WTERMSIG(bwrap_status);
    }
  }
  // The cgroup counts every process however it ended; the launcher's
  // rusage misses what was still running at a kill.
  if (usage != nullptr && usage->cpu_time) {
    st.cpu_time = *usage->cpu_time;
  } else if (exact == nullptr && s.cpu_at_kill) {
    st.cpu_time = std::max(st.cpu_time, *s.cpu_at_kill);
  }
  if (usage != nullptr) st.peak_memory_bytes = usage->peak_memory_bytes;
  st.kind = exited ? ExitKind::kExited : ExitKind::kSignaled;
  // Our own kill decides, unless the worker had already exited on its own.
  if (s.cause != KillCause::kNone && !(exact != nullptr && exited)) {
    switch (s.cause) {
      case KillCause::kViolation: st.kind = ExitKind::kViolation; break;
      case KillCause::kWall: st.kind = ExitKind::kLimitWall; break;
      case KillCause::kRequested: st.kind = ExitKind::kKilled; break;
      case KillCause::kNone: break;
    }
    return st;
  }
  if (exited && st.code == 0) return st;
  if (st.signal == SIGSYS) {
    // Only seccomp's kill rules (other ABIs) raise SIGSYS with the default
    // action. A worker can raise(SIGSYS) itself: it then misreports only
    // itself.
    st.kind = ExitKind::kViolation;
  } else if (usage != nullptr && usage->oom_kills > 0) {
    // The cgroup's OOM killer fired: exact, whichever process it chose (the
    // worker, or pid 1, which takes the worker with it).
    st.kind = ExitKind::kLimitMemory;
  } else if (st.signal == SIGXCPU ||
             (st.signal == SIGKILL && s.limits.cpu_seconds != 0 &&
              st.cpu_time >= std::chrono::seconds(s.limits.cpu_seconds))) {
    st.kind = ExitKind::kLimitCpu;
  } else if (st.signal == SIGXFSZ) {
    // Checked before the memory inference: a worker with a large resident
    // set that wrote past its file-size limit died of the file size.
    st.kind = ExitKind::kLimitFileSize;
  } else if (s.limits.address_space_bytes != 0 &&
             st.peak_rss_bytes * 4 >= s.limits.address_space_bytes * 3) {
    // RLIMIT_AS makes allocation fail; the program then aborts or exits
    // non-zero. A resident set of 75% of the address-space limit at the
    // time is the evidence that memory was the reason.
    st.kind = ExitKind::kLimitMemory;
  }
  return st;
}

}  // namespace detail
}  // namespace capsa::sandbox
