// capsa — the supervisor's workers: starting them in their sandbox (or
// attaching one that runs elsewhere), watching their exit, seccomp
// violations and deadlines, killing them, and releasing everything they
// held when they end.
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "capabilities/interfaces/builtin.h"
#include "capabilities/sys.h"
#include "policy/sandbox_spec.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

namespace {

// A worker may be killed but not yet reaped when shutdown() is asked; the
// loop waits for every pidfd, bounded by this (a stuck reap is a kernel
// problem, not a reason to hang the operator's terminal).
constexpr std::chrono::seconds kShutdownGrace{10};

}  // namespace

WorkerRecord* Supervisor::Impl::find_worker(std::string_view name) {
  for (auto& w : workers_) {
    if (w->name == name) return w.get();
  }
  return nullptr;
}

// Host-side preparation of a worker's grants (opening directory roots...)
// and its limits. Runs before its sandbox starts.
Result<void> Supervisor::Impl::prepare_worker(WorkerRecord& w) {
  for (GrantPlan& plan : w.plans) {
    if (plan.factory->prepare) {
      auto prepared = plan.factory->prepare(*plan.grant);
      if (!prepared) {
        return make_error(prepared.error().code, "grant '" + plan.grant->name + "': " +
                                                     prepared.error().message);
      }
      plan.prepared = std::move(*prepared);
    }
    plan.limits = std::make_shared<SharedLimits>();
    plan.limits->grant = plan.grant;
    if (plan.grant->rate > 0) {
      const auto per_second = static_cast<std::uint32_t>(plan.grant->rate);
      CAPSA_ASSIGN_OR_RETURN(auto rl, services::RateLimiter::create(per_second, per_second));
      plan.limits->rate.emplace(std::move(rl));
    }
    if (plan.grant->byte_budget > 0) plan.limits->budget.emplace(plan.grant->byte_budget);
  }
  const auto vps = static_cast<std::uint32_t>(w.profile->limits.violations_per_second);
  CAPSA_ASSIGN_OR_RETURN(auto vr, services::RateLimiter::create(vps, vps));
  w.violation_rate.emplace(std::move(vr));
  const auto mps = static_cast<std::uint32_t>(w.profile->limits.messages_per_second);
  if (mps > 0) {
    CAPSA_ASSIGN_OR_RETURN(auto rl, services::RateLimiter::create(mps, mps));
    w.message_rate.emplace(std::move(rl));
  }
  return {};
}

// The bootstrap grant is recorded (and audited) before the port reaches the
// worker. `running` is set first: minting on Get checks it.
Result<void> Supervisor::Impl::serve_bootstrap(WorkerRecord& w, Port port) {
  w.running = true;
  const Interface& iface = *registry_.find(interfaces::kBootstrap);
  auto boot = table_->serve(&w, std::move(port), iface, kAllRights, GrantOrigin::kPolicy, "",
                            make_bootstrap(*this, w));
  if (!boot) {
    w.running = false;
    return std::unexpected(boot.error());
  }
  w.bootstrap = (*boot)->id;
  (void)audit_->grant_created(w.bootstrap, w.name, interfaces::kBootstrap, GrantOrigin::kPolicy,
                              rights_names(iface, (*boot)->rights), 0);
  return {};
}

Result<void> Supervisor::Impl::start(std::string_view name) {
  WorkerRecord* w = find_worker(name);
  if (w == nullptr) return make_error(Errc::kNotFound, "no worker '" + std::string(name) + "'");
  if (w->started) return make_error(Errc::kInvalidArgument, "worker '" + w->name + "' already started");
  w->started = true;
  auto started = [&]() -> Result<void> {
    CAPSA_TRY(prepare_worker(*w));
    CAPSA_ASSIGN_OR_RETURN(auto spec, policy::sandbox_spec(*w->profile, options_.launcher));
    CAPSA_ASSIGN_OR_RETURN(auto pair, make_channel());
    CAPSA_TRY(serve_bootstrap(*w, std::move(pair.first)));
    // From its warm pool when a sandbox waits there (the same spec: the
    // pool was made from this profile), else cold. The pool ends with this
    // start: the worker starts once, a refill would never serve.
    bool pooled = false;
    auto worker = [&]() -> Result<sandbox::Worker> {
      if (!w->pool) return sandbox::spawn(spec, pair.second.release_fd());
      std::unique_ptr<sandbox::Pool> pool = std::move(w->pool);
      const std::uint64_t handed = pool->stats().handed;
      auto taken = pool->take(pair.second.release_fd(), {}, w->name);
      pooled = pool->stats().handed > handed;
      return taken;
    }();
    if (!worker) {
      w->running = false;
      return std::unexpected(worker.error());
    }
    w->sandbox.emplace(std::move(*worker));
    w->pid = w->sandbox->pid();
    (void)audit_->worker_started(w->name, w->pid, w->profile->program);
    report_cgroup(*w);
    (void)audit_->port_transferred(w->bootstrap, "supervisor", w->name);
    log_->info("worker '{}' started (pid {}{})", w->name, w->pid,
               pooled ? ", from its warm pool" : "");
    watch_output(*w);
    return watch_sandbox(*w);
  }();
  if (started) return {};
  const Error& e = started.error();
  w->start_error = e.message;
  (void)audit_->event("worker_start_failed",
                      AuditFields().str("worker", w->name).str("reason", e.message));
  log_->error("worker '{}' did not start: {}", w->name, e.message);
  worker_ended(*w, "did not start");
  return make_error(e.code, "worker '" + w->name + "' did not start: " + e.message);
}

// Each worker whose profile asks for a warm pool (or every worker, with
// SupervisorOptions::warm_pool) gets one sandbox started ahead, filled on
// the pool's own thread (docs/SANDBOX.md, "Warm pool"). One, whatever N: a
// worker of the policy starts once, so a second sandbox could never serve.
// A pool that cannot be made is a warning: the start is then cold and
// reports the error itself.
void Supervisor::Impl::start_pools() {
  for (auto& w : workers_) {
    const std::uint64_t n = options_.warm_pool.value_or(w->profile->pool);
    if (n == 0) continue;
    auto spec = policy::sandbox_spec(*w->profile, options_.launcher);
    auto pool = spec ? sandbox::Pool::create(std::move(*spec), 1)
                     : Result<std::unique_ptr<sandbox::Pool>>(std::unexpected(spec.error()));
    if (!pool) {
      log_->warn("worker '{}': no warm pool ({}); it will start cold", w->name,
                 pool.error().message);
      continue;
    }
    w->pool = std::move(*pool);
  }
}

bool Supervisor::Impl::warm_up(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  bool all = true;
  for (auto& w : workers_) {
    if (!w->pool) continue;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (!w->pool->wait_full(std::max(left, std::chrono::milliseconds(0)))) {
      all = false;
      log_->warn("worker '{}': its warm pool is not ready{}", w->name,
                 w->pool->stats().last_fill_error.empty()
                     ? std::string()
                     : ": " + w->pool->stats().last_fill_error);
    }
  }
  return all;
}

// A worker without a cgroup is said at its start, on the operator's log and
// in the audit log: what bounds it is then weaker (docs/SANDBOX.md, "The
// worker's cgroup"). A policy that will not accept that sets
// sandbox.require_cgroup, and the worker does not start.
void Supervisor::Impl::report_cgroup(const WorkerRecord& w) {
  if (w.sandbox->cgroup() != sandbox::CgroupKind::kNone) return;
  const std::string& why = w.sandbox->cgroup_note();
  (void)audit_->event("worker_without_cgroup",
                      AuditFields().str("worker", w.name).str("reason", why));
  log_->warn("worker '{}' runs without a cgroup ({}): its memfds and the kernel memory of its "
             "files are bounded per file and per process only, the memory of its processes "
             "together not at all",
             w.name, why);
}

// The sandbox's exit (pidfd), its seccomp notifications and its wall-clock
// deadline, all on the loop.
Result<void> Supervisor::Impl::watch_sandbox(WorkerRecord& w) {
  WorkerRecord* wp = &w;
  auto pw = reactor_->watch(w.sandbox->pidfd(), Interest::kReadable, [this, wp](Events) {
    auto status = wp->sandbox->try_reap();
    if (!status) {
      worker_ended(*wp, "reap failed: " + status.error().message);
    } else if (status->has_value()) {
      wp->exit = **status;
      worker_ended(*wp, (*status)->to_string());
    }
  });
  if (!pw) {
    kill_worker(w, "cannot watch its pidfd");
    return std::unexpected(pw.error());
  }
  w.pid_watch = *pw;
  if (w.sandbox->notify_fd().valid()) {
    auto nw = reactor_->watch(w.sandbox->notify_fd(), Interest::kReadable,
                              [this, wp](Events) { on_violation(*wp); });
    if (nw) w.notify_watch = *nw;
  }
  if (auto deadline = w.sandbox->deadline()) {
    auto delay = *deadline - std::chrono::steady_clock::now();
    auto t = reactor_->add_timer(
        std::max(delay, std::chrono::steady_clock::duration::zero()), [this, wp] {
          wp->deadline_timer = 0;
          (void)audit_->event("worker_deadline",
                              AuditFields().str("worker", wp->name).unum(
                                  "wall_seconds", wp->profile->limits.wall_seconds));
          if (wp->sandbox) (void)wp->sandbox->expire();
        });
    if (t) w.deadline_timer = *t;
  }
  return {};
}

// Output: supervisor (worker_output.h): the sandbox's pipes, read on the
// loop. A worker whose output cannot be read is killed (its writes would
// block on a full pipe); it is then reaped through its pidfd as usual.
void Supervisor::Impl::watch_output(WorkerRecord& w) {
  Fd out = w.sandbox->take_stdout_pipe(), err = w.sandbox->take_stderr_pipe();
  if (!out.valid() && !err.valid()) return;
  w.output = std::make_unique<WorkerOutput>(
      *reactor_, *audit_, *log_, w.name, w.profile->limits.output_bytes,
      [this, wp = &w](LogLevel level, std::string_view text) { worker_log(wp->name, level, text); });
  if (auto watched = w.output->watch(std::move(out), std::move(err)); !watched) {
    kill_worker(w, "cannot watch its output: " + watched.error().message);
  }
}

void Supervisor::Impl::on_violation(WorkerRecord& w) {
  auto v = w.sandbox->handle_violation();
  if (v && v->has_value()) {
    const sandbox::Violation& viol = **v;
    ++w.violations;
    SeccompViolation sv;
    sv.worker = w.name;
    sv.pid = viol.pid;
    sv.syscall = viol.syscall;
    sv.syscall_nr = viol.nr;
    std::copy(std::begin(viol.args), std::end(viol.args), sv.args.begin());
    sv.action = viol.action == sandbox::ViolationAction::kKill ? "killed" : "errno EPERM";
    (void)audit_->seccomp_violation(sv);
    if (!w.violation_rate->try_acquire()) violation_flood(w);
  }
  // handle_violation() closes the fd once no task can use the filter; the
  // watch must go with it.
  if (!w.sandbox->notify_fd().valid() && w.notify_watch != 0) {
    reactor_->unwatch(std::exchange(w.notify_watch, 0));
  }
}

// More violations in a second than limits.violations_per_second: the
// policy's on_violation_flood, once per worker.
void Supervisor::Impl::violation_flood(WorkerRecord& w) {
  if (w.violation_flood) return;
  w.violation_flood = true;
  const std::uint64_t rate = w.profile->limits.violations_per_second;
  if (w.profile->on_violation_flood == policy::ViolationFloodAction::kKill) {
    kill_worker(w, "violation flood: more than " + std::to_string(rate) +
                       " seccomp violations in a second");
    return;
  }
  (void)audit_->event("violation_flood", AuditFields()
                                             .str("worker", w.name)
                                             .unum("violations_per_second", rate)
                                             .str("action", "report"));
  log_->warn("worker '{}': more than {} seccomp violations in a second (reported, not killed)",
             w.name, rate);
}

Result<Port> Supervisor::Impl::attach(std::string_view name, pid_t pid) {
  WorkerRecord* w = find_worker(name);
  if (w == nullptr) return make_error(Errc::kNotFound, "no worker '" + std::string(name) + "'");
  if (w->started) return make_error(Errc::kInvalidArgument, "worker '" + w->name + "' already started");
  CAPSA_TRY(prepare_worker(*w));
  CAPSA_ASSIGN_OR_RETURN(auto pair, make_channel());
  w->pool.reset();  // it runs outside any sandbox: its waiting one goes
  w->started = true;
  w->attached = true;
  w->pid = pid;
  CAPSA_TRY(serve_bootstrap(*w, std::move(pair.first)));
  (void)audit_->event("worker_attached", AuditFields().str("worker", w->name).num("pid", pid));
  if (pid > 0) {
    // On failure the worker ends here, releasing its bootstrap grant:
    // otherwise it would stay "running" with nothing to end it.
    auto watched = [&]() -> Result<void> {
      CAPSA_ASSIGN_OR_RETURN(w->attached_pidfd,
                             sys_fd("pidfd_open", std::to_string(pid), [&] {
                               return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
                             }));
      WorkerRecord* wp = w;
      CAPSA_ASSIGN_OR_RETURN(w->pid_watch,
                             reactor_->watch(w->attached_pidfd, Interest::kReadable,
                                             [this, wp](Events) {
                                               worker_ended(*wp, "process exited");
                                             }));
      return {};
    }();
    if (!watched) {
      worker_ended(*w, "cannot watch its process: " + watched.error().message);
      return std::unexpected(watched.error());
    }
  }
  return std::move(pair.second);
}

void Supervisor::Impl::kill_worker(WorkerRecord& w, std::string_view reason) {
  if (!w.running || w.killing) return;
  w.killing = true;
  (void)audit_->event("worker_killed", AuditFields().str("worker", w.name).str("reason", reason));
  log_->warn("worker '{}' killed: {}", w.name, reason);
  if (w.sandbox) {
    (void)w.sandbox->kill();  // reaped through its pidfd
  } else {
    worker_ended(w, "killed (attached: its ports are closed)");
  }
}

void Supervisor::Impl::worker_ended(WorkerRecord& w, std::string_view how) {
  const bool was_running = w.running;
  w.running = false;
  for (WatchId* id : {&w.pid_watch, &w.notify_watch, &w.deadline_timer}) {
    if (*id != 0) reactor_->unwatch(std::exchange(*id, 0));
  }
  w.attached_pidfd.reset();
  if (w.output) w.output->finish();  // its last lines and output_dropped before worker_exited
  (void)audit_->flush_coalesced(w.name);  // its refusals' summaries, too
  if (was_running) {
    AuditFields f;
    f.str("worker", w.name).num("pid", w.pid);
    if (w.exit) {
      const sandbox::ExitStatus& e = *w.exit;
      f.str("status", sandbox::exit_kind_name(e.kind))
          .num("exit_code", e.code)
          .num("signal", e.signal)
          .unum("cpu_us", static_cast<std::uint64_t>(e.cpu_time.count()))
          .unum("peak_rss_bytes", e.peak_rss_bytes)
          .str("cgroup", sandbox::cgroup_kind_name(e.cgroup))
          .unum("peak_memory_bytes", e.peak_memory_bytes)
          .unum("wall_us", static_cast<std::uint64_t>(e.wall_time.count()))
          .unum("calls", w.calls)
          .unum("denials", w.denials)
          .unum("violations", w.violations);
    } else {
      f.str("status", how).unum("calls", w.calls).unum("denials", w.denials);
    }
    (void)audit_->event("worker_exited", f);
    // The refusals, summarised once per worker (each is in the audit log).
    log_->info("worker '{}' ended: {} ({} calls, {} refused, {} bad messages, {} violations)",
               w.name, how, w.calls, w.denials, w.bad_messages, w.violations);
  }
  // Nothing kept for a worker outlives it: every grant it holds is released
  // (which closes our ends: a File it had open, a directory it listed).
  const std::vector<GrantId> held = table_->held_by(w);
  for (GrantId id : held) table_->release(id, "holder exited");
  if (!held.empty()) log_->debug("worker '{}': {} grants released", w.name, held.size());
  // Channel ends it never took: the other side learns at once.
  drop_channel_ends(w);
  stop_if_idle();
}

void Supervisor::Impl::stop_if_idle() {
  if (!stopping_when_idle_) return;
  for (const auto& w : workers_) {
    if (w->running) return;
  }
  reactor_->stop();
}

Result<void> Supervisor::Impl::run() {
  stopping_when_idle_ = true;
  stop_if_idle();
  return reactor_->run();
}

void Supervisor::Impl::shutdown(std::string_view reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  (void)audit_->event("shutdown", AuditFields().str("reason", reason));
  log_->info("shutting down: {}", reason);
  // Idle pooled sandboxes are killed, reaped and their cgroups removed now.
  for (auto& w : workers_) w->pool.reset();
  for (auto& w : workers_) kill_worker(*w, reason);
  stopping_when_idle_ = true;
  stop_if_idle();
  (void)reactor_->add_timer(kShutdownGrace, [this] { reactor_->stop(); });
}

std::vector<WorkerView> Supervisor::Impl::worker_views() const {
  std::vector<WorkerView> out;
  for (const auto& w : workers_) {
    WorkerView v;
    v.name = w->name;
    v.pid = w->pid;
    v.running = w->running;
    v.exit = w->exit;
    v.start_error = w->start_error;
    v.calls = w->calls;
    v.denials = w->denials;
    v.bad_messages = w->bad_messages;
    v.violations = w->violations;
    v.grants = w->grants;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace capsa::supervisor
