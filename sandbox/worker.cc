// The supervisor side of a running worker: violations, kill, deadline, reap.
#include <poll.h>
#include <seccomp.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "capabilities/sys.h"
#include "sandbox/launcher_protocol.h"
#include "sandbox/status_channel.h"
#include "sandbox/worker_state.h"

namespace capsa::sandbox {
namespace {

namespace d = detail;

// SIGKILL to bubblewrap. Its child (the launcher, pid 1 of the sandbox) has
// a parent-death SIGKILL, and when pid 1 dies the kernel kills the whole
// pid namespace: one signal ends the whole tree.
Result<void> kill_sandbox(Worker::State& s) {
  if (s.result || !s.pidfd.valid()) return {};
  // Without a cgroup, what the processes used dies with them: read it now
  // (the first kill only; later ones find the same tree dying).
  if (s.cgroup.kind() == CgroupKind::kNone && !s.cpu_at_kill) {
    s.cpu_at_kill = d::tree_cpu_time(s.pid);
  }
  auto rc = sys("pidfd_send_signal", s.name, [&] {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, s.pidfd.get(), SIGKILL, nullptr, 0));
  });
  // ESRCH: already exited, not yet reaped. Nothing to do.
  if (!rc && rc.error().sys_errno != ESRCH) return std::unexpected(std::move(rc).error());
  return {};
}

std::chrono::microseconds to_us(const timeval& tv) {
  return std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace

Worker::Worker(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
Worker::Worker(Worker&&) noexcept = default;
Worker& Worker::operator=(Worker&& other) noexcept {
  if (this != &other) {
    Worker dying(std::move(*this));
    state_ = std::move(other.state_);
  }
  return *this;
}

Worker::~Worker() {
  if (!state_ || state_->pid <= 0) return;
  if (!state_->result) {
    if (state_->cause == KillCause::kNone) state_->cause = KillCause::kRequested;
    (void)kill_sandbox(*state_);
    // bubblewrap exits promptly after SIGKILL; a blocking reap is bounded.
    while (::waitpid(state_->pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

const std::string& Worker::name() const noexcept { return state_->name; }
int Worker::pid() const noexcept { return state_->pid; }
const Fd& Worker::pidfd() const noexcept { return state_->pidfd; }
const Fd& Worker::notify_fd() const noexcept { return state_->notify; }
CgroupKind Worker::cgroup() const noexcept { return state_->cgroup.kind(); }
const std::string& Worker::cgroup_note() const noexcept { return state_->cgroup.reason(); }
const Fd& Worker::stdout_pipe() const noexcept { return state_->stdout_pipe; }
const Fd& Worker::stderr_pipe() const noexcept { return state_->stderr_pipe; }
Fd Worker::take_stdout_pipe() noexcept { return std::move(state_->stdout_pipe); }
Fd Worker::take_stderr_pipe() noexcept { return std::move(state_->stderr_pipe); }

std::optional<std::chrono::steady_clock::time_point> Worker::deadline() const noexcept {
  return state_->deadline;
}

Result<void> Worker::kill() {
  if (state_->cause == KillCause::kNone) state_->cause = KillCause::kRequested;
  return kill_sandbox(*state_);
}

Result<void> Worker::expire() {
  if (state_->cause == KillCause::kNone) state_->cause = KillCause::kWall;
  return kill_sandbox(*state_);
}

Result<std::optional<Violation>> Worker::handle_violation() {
  State& s = *state_;
  if (!s.notify.valid()) return std::nullopt;
  pollfd p{s.notify.get(), POLLIN, 0};
  CAPSA_TRY(sys("poll", s.name, [&] { return ::poll(&p, 1, 0); }));
  if ((p.revents & POLLIN) == 0) {
    // No task uses the filter any more: the fd would report POLLHUP to
    // every poll from now on, so an event loop would spin on it. Close it
    // (epoll forgets a closed fd); notify_fd() is invalid from here on.
    if ((p.revents & (POLLHUP | POLLERR)) != 0) s.notify.reset();
    return std::nullopt;
  }

  seccomp_notif* req = nullptr;
  seccomp_notif_resp* resp = nullptr;
  if (int rc = seccomp_notify_alloc(&req, &resp); rc < 0) {
    return make_error(Errc::kFailed, "seccomp_notify_alloc failed", -rc);
  }
  struct Free {
    seccomp_notif* q;
    seccomp_notif_resp* r;
    ~Free() { seccomp_notify_free(q, r); }
  } guard{req, resp};
  if (int rc = seccomp_notify_receive(s.notify.get(), req); rc < 0) {
    // ENOENT: the caller was killed between poll and receive.
    if (rc == -ENOENT) return std::nullopt;
    return make_error(Errc::kFailed, "seccomp notify receive for " + s.name + " failed", -rc);
  }
  Violation v;
  v.worker = s.name;
  v.nr = req->data.nr;
  v.pid = static_cast<int>(req->pid);
  v.action = s.action;
  for (int i = 0; i < 6; ++i) v.args[i] = req->data.args[i];
  // Only x86_64 calls reach us (other ABIs are killed by the filter), but
  // the record is decoded with the arch the kernel reported.
  if (char* name = seccomp_syscall_resolve_num_arch(req->data.arch, req->data.nr)) {
    v.syscall = name;
    std::free(name);
  } else {
    v.syscall = "unknown(" + std::to_string(req->data.nr) + ")";
  }
  if (s.action == ViolationAction::kKill) {
    if (s.cause == KillCause::kNone) s.cause = KillCause::kViolation;
    // Kill the calling thread's process at once (it is blocked in the call
    // and must never return from it), then the whole sandbox. The pidfd is
    // checked against the notification id so a recycled pid is never hit.
    int task = static_cast<int>(::syscall(SYS_pidfd_open, req->pid, 0));
    if (task >= 0) {
      Fd task_fd(task);
      if (seccomp_notify_id_valid(s.notify.get(), req->id) == 0) {
        ::syscall(SYS_pidfd_send_signal, task_fd.get(), SIGKILL, nullptr, 0);
      }
    }
    CAPSA_TRY(kill_sandbox(s));
    return v;
  }
  resp->id = req->id;
  resp->val = 0;
  resp->error = -EPERM;
  resp->flags = 0;
  if (int rc = seccomp_notify_respond(s.notify.get(), resp); rc < 0 && rc != -ENOENT) {
    return make_error(Errc::kFailed, "seccomp notify respond for " + s.name + " failed", -rc);
  }
  return v;
}

Result<std::optional<ExitStatus>> Worker::try_reap() {
  State& s = *state_;
  if (s.result) return s.result;
  int status = 0;
  rusage ru{};
  CAPSA_ASSIGN_OR_RETURN(const pid_t reaped,
                         sys("wait4", s.name, [&] { return ::wait4(s.pid, &status, WNOHANG, &ru); }));
  if (reaped == 0) return std::nullopt;
  s.pid = -1;
  auto wall = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - s.started);
  // The launcher sent its kExit record before it exited, and it exited
  // before bubblewrap did: if it is not queued now, it never will be.
  std::optional<d::StatusRecord> exact;
  for (int i = 0; i < 8 && !exact; ++i) {
    auto rec = d::read_status_record(s.status);
    if (!rec || !rec->has_value()) break;
    if (static_cast<d::StatusType>((*rec)->record.type) == d::StatusType::kExit) {
      exact = (*rec)->record;
    }
  }
  // bubblewrap is gone, so is pid 1: whatever is left in the cgroup is
  // being killed. Its counters are final once it is empty.
  std::optional<d::CgroupUsage> usage;
  if (s.cgroup.kind() != CgroupKind::kNone) {
    auto drained = s.cgroup.drain();
    if (drained) usage = *drained;
    s.cgroup.remove();
  }
  s.result = d::classify_exit(s, exact ? &*exact : nullptr, status,
                              to_us(ru.ru_utime) + to_us(ru.ru_stime),
                              static_cast<std::uint64_t>(ru.ru_maxrss), wall,
                              usage ? &*usage : nullptr);
  s.status = Port();
  s.notify.reset();
  return s.result;
}

Result<ExitStatus> Worker::wait() { return wait(nullptr); }

Result<ExitStatus> Worker::wait(const std::function<void(const Violation&)>& on_violation) {
  State& s = *state_;
  for (;;) {
    CAPSA_ASSIGN_OR_RETURN(const std::optional<ExitStatus> done, try_reap());
    if (done) return *done;
    int timeout = -1;
    if (s.deadline && s.cause == KillCause::kNone) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*s.deadline -
                                                              std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        CAPSA_TRY(expire());
        continue;
      }
      timeout = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
    }
    pollfd p[2] = {{s.pidfd.get(), POLLIN, 0}, {s.notify.get(), POLLIN, 0}};
    CAPSA_TRY(sys("poll", s.name, [&] { return ::poll(p, s.notify.valid() ? 2 : 1, timeout); }));
    if (p[1].revents != 0) {  // a violation, or the filter's last user is gone
      CAPSA_ASSIGN_OR_RETURN(const std::optional<Violation> v, handle_violation());
      if (v && on_violation) on_violation(*v);
    }
  }
}

}  // namespace capsa::sandbox
