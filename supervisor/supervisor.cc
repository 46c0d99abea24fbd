// capsa — the supervisor: creating it, starting and reaping workers.
// (Grants: grant_table.cc. Serving ports: endpoint.cc. Bootstrap:
// bootstrap_service.cc.)
#include "supervisor/supervisor.h"

#include <signal.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "capabilities/interfaces/builtin.h"
#include "capabilities/sys.h"
#include "supervisor/services/builtin_services.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

namespace {

// A worker may be killed but not yet reaped when shutdown() is asked; the
// loop waits for every pidfd, bounded by this (a stuck reap is a kernel
// problem, not a reason to hang the operator's terminal).
constexpr std::chrono::seconds kShutdownGrace{10};

std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}

// A supervisor holds one fd per live grant; the default soft limit (often
// 1024) would cap a busy supervisor far below what the hard limit allows.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

Result<sandbox::Spec> spec_for(const policy::WorkerProfile& p, const std::string& launcher) {
  sandbox::SpecBuilder b;
  b.name(p.name).program(p.program);
  std::vector<std::string> argv{sandbox::default_argv0(p.program)};
  argv.insert(argv.end(), p.args.begin(), p.args.end());
  b.args(std::move(argv));
  for (const auto& [k, v] : p.env) b.env(k, v);
  for (const std::string& dir : p.sandbox.ro_binds) b.ro_bind(dir);
  b.tmpfs_bytes(p.sandbox.tmpfs_bytes);
  sandbox::Limits l;
  l.address_space_bytes = p.limits.memory;
  l.cpu_seconds = p.limits.cpu_seconds;
  l.wall_seconds = p.limits.wall_seconds;
  l.max_processes = p.limits.processes;
  l.max_open_files = p.limits.open_files;
  b.limits(l);
  for (const std::string& s : p.sandbox.extra_syscalls()) b.allow_syscall(s);
  if (!launcher.empty()) b.launcher(launcher);
  return b.build();
}

}  // namespace

const GrantPlan* WorkerRecord::find_plan(std::string_view grant_name) const {
  for (const GrantPlan& p : plans) {
    if (p.grant->name == grant_name) return &p;
  }
  return nullptr;
}

ChannelEnd* WorkerRecord::find_channel_end(std::string_view channel_name) {
  for (ChannelEnd& e : channel_ends) {
    if (e.channel->name == channel_name) return &e;
  }
  return nullptr;
}

Supervisor::Supervisor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->self = this;
}

Supervisor::~Supervisor() {
  Impl& impl = *impl_;
  impl.destroying = true;
  // Grants first (closing every port we serve), then the workers (a
  // sandbox::Worker kills and reaps its sandbox when destroyed), then the
  // reactor (joins its pool; queued answers are dropped as no-ops).
  for (auto& [id, g] : impl.grants) {
    if (g->watch != 0) impl.reactor->unwatch(g->watch);
  }
  impl.grants.clear();
  for (auto& w : impl.workers) {
    if (w->pid_watch != 0) impl.reactor->unwatch(w->pid_watch);
    if (w->notify_watch != 0) impl.reactor->unwatch(w->notify_watch);
    if (w->deadline_timer != 0) impl.reactor->unwatch(w->deadline_timer);
  }
  impl.workers.clear();
  impl.reactor.reset();
}

namespace {

// The built-in interfaces and services plus the options' extra ones.
Result<void> load_apis(const SupervisorOptions& options, InterfaceRegistry& registry,
                       std::vector<ServiceFactory>& factories) {
  if (auto r = interfaces::register_builtin(registry); !r) return r;
  for (std::span<const std::uint8_t> bfbs : options.extra_schemas) {
    if (auto r = registry.load(bfbs); !r) return r;
  }
  factories = services::builtin_service_factories();
  factories.insert(factories.end(), options.extra_services.begin(), options.extra_services.end());
  return {};
}

}  // namespace

policy::ApiCatalog Supervisor::api_catalog() { return api_catalog(SupervisorOptions{}); }

policy::ApiCatalog Supervisor::api_catalog(const SupervisorOptions& options) {
  InterfaceRegistry registry;
  policy::ApiCatalog catalog;
  std::vector<ServiceFactory> factories;
  if (!load_apis(options, registry, factories)) return catalog;  // create() reports it
  for (const Interface* iface : registry.all()) {
    policy::ApiSpec api;
    api.name = std::string(iface->name());
    for (const Method& m : iface->methods()) api.methods.push_back(m.name);
    api.served = false;
    for (const ServiceFactory& f : factories) {
      if (f.api == api.name) {
        api.constraints = f.constraints;
        api.served = true;
      }
    }
    api.grantable = api.name != interfaces::kBootstrap;
    if (!api.served) {
      api.served_note = api.name == interfaces::kFile ? "a File comes from fs.Directory.Open"
                                                      : "a worker serves it";
    }
    catalog.add(std::move(api));
  }
  return catalog;
}

Result<std::unique_ptr<Supervisor>> Supervisor::create(policy::Policy policy,
                                                       SupervisorOptions options) {
  if (options.audit_log_path.empty()) {
    return make_error(Errc::kInvalidArgument, "an audit log path is required");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->policy = std::move(policy);
  if (auto r = load_apis(impl->options, impl->registry, impl->factories); !r) {
    return std::unexpected(r.error());
  }

  // Resolve every grant against the registry and the services now, so a
  // policy this supervisor cannot serve fails before anything starts.
  std::string errors;
  for (const policy::WorkerProfile& p : impl->policy.workers) {
    auto w = std::make_unique<WorkerRecord>();
    w->profile = &p;
    w->name = p.name;
    for (const policy::Grant& g : p.grants) {
      GrantPlan plan;
      plan.grant = &g;
      plan.iface = impl->registry.find(g.api);
      for (const ServiceFactory& f : impl->factories) {
        if (f.api == g.api) plan.factory = &f;
      }
      if (plan.iface == nullptr || plan.factory == nullptr) {
        errors += "worker '" + p.name + "' grant '" + g.name + "': the supervisor serves no " +
                  g.api + (plan.iface != nullptr ? " (it is usable through a channel only)" : "") +
                  "\n";
        continue;
      }
      for (const std::string& m : g.rights) {
        const Method* method = plan.iface->method(m);
        if (method == nullptr) {
          errors += "worker '" + p.name + "' grant '" + g.name + "': no method " + m + "\n";
        } else {
          plan.rights |= right_of(method->ordinal);
        }
      }
      w->plans.push_back(std::move(plan));
    }
    impl->workers.push_back(std::move(w));
  }
  for (const policy::Channel& c : impl->policy.channels) {
    const Interface* iface = impl->registry.find(c.interface);
    if (iface == nullptr) {
      errors += "channel '" + c.name + "': unknown interface " + c.interface + "\n";
      continue;
    }
    for (const std::string& side : {c.client, c.server}) {
      WorkerRecord* w = impl->find_worker(side);
      if (w == nullptr) {
        errors += "channel '" + c.name + "': unknown worker " + side + "\n";
        continue;
      }
      ChannelEnd end;
      end.channel = &c;
      end.iface = iface;
      w->channel_ends.push_back(std::move(end));
    }
  }
  if (!errors.empty()) {
    errors.pop_back();
    return make_error(Errc::kInvalidArgument, errors);
  }
  // The channel pairs: made now, each end waiting for its worker's Get.
  for (const policy::Channel& c : impl->policy.channels) {
    auto pair = make_channel();
    if (!pair) return std::unexpected(pair.error());
    impl->find_worker(c.client)->find_channel_end(c.name)->port = std::move(pair->first);
    impl->find_worker(c.server)->find_channel_end(c.name)->port = std::move(pair->second);
  }

  raise_fd_limit();
  auto audit = AuditLog::open(impl->options.audit_log_path, impl->options.audit);
  if (!audit) return std::unexpected(audit.error());
  impl->audit = std::move(*audit);
  auto reactor = Reactor::create(impl->options.reactor);
  if (!reactor) return std::unexpected(reactor.error());
  impl->reactor = std::move(*reactor);
  return std::unique_ptr<Supervisor>(new Supervisor(std::move(impl)));
}

WorkerRecord* Supervisor::Impl::find_worker(std::string_view name) {
  for (auto& w : workers) {
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
    if (plan.grant->rate > 0) {
      const auto per_second = static_cast<std::uint32_t>(plan.grant->rate);
      auto rl = services::RateLimiter::create(per_second, per_second);
      if (!rl) return std::unexpected(rl.error());
      plan.limits->rate.emplace(std::move(*rl));
    }
    if (plan.grant->byte_budget > 0) plan.limits->budget.emplace(plan.grant->byte_budget);
  }
  const auto mps = static_cast<std::uint32_t>(w.profile->limits.messages_per_second);
  if (mps > 0) {
    auto rl = services::RateLimiter::create(mps, mps);
    if (!rl) return std::unexpected(rl.error());
    w.message_rate.emplace(std::move(*rl));
  }
  return {};
}

Result<void> Supervisor::start_all() {
  std::string failed;
  for (auto& w : impl_->workers) {
    if (w->started) continue;
    if (auto r = start(w->name); !r) failed += r.error().message + "\n";
  }
  if (!failed.empty()) {
    failed.pop_back();
    return make_error(Errc::kFailed, failed);
  }
  return {};
}

Result<void> Supervisor::start(std::string_view name) {
  Impl& impl = *impl_;
  WorkerRecord* w = impl.find_worker(name);
  if (w == nullptr) return make_error(Errc::kNotFound, "no worker '" + std::string(name) + "'");
  if (w->started) return make_error(Errc::kInvalidArgument, "worker '" + w->name + "' already started");
  w->started = true;
  auto fail = [&](const Error& e) -> Result<void> {
    w->start_error = e.message;
    (void)impl.audit->event("worker_start_failed",
                            AuditFields().str("worker", w->name).str("reason", e.message));
    impl.worker_ended(*w, "did not start");
    return make_error(e.code, "worker '" + w->name + "' did not start: " + e.message);
  };
  if (auto r = impl.prepare_worker(*w); !r) return fail(r.error());
  auto spec = spec_for(*w->profile, impl.options.launcher);
  if (!spec) return fail(spec.error());
  auto pair = make_channel();
  if (!pair) return fail(pair.error());
  // The bootstrap grant is recorded (and audited) before the port reaches
  // the sandbox. running = true first: mint-on-Get checks it.
  w->running = true;
  auto boot = impl.serve(w, std::move(pair->first), *impl.registry.find(interfaces::kBootstrap),
                         kAllRights, GrantOrigin::kPolicy, "", impl.make_bootstrap(*w));
  if (!boot) {
    w->running = false;
    return fail(boot.error());
  }
  w->bootstrap = (*boot)->id;
  (void)impl.audit->grant_created(w->bootstrap, w->name, interfaces::kBootstrap,
                                  GrantOrigin::kPolicy,
                                  impl.rights_names(*(*boot)->iface, (*boot)->rights), 0);
  auto worker = sandbox::spawn(*spec, pair->second.release_fd());
  if (!worker) {
    w->running = false;
    return fail(worker.error());
  }
  w->sandbox.emplace(std::move(*worker));
  w->pid = w->sandbox->pid();
  (void)impl.audit->worker_started(w->name, w->pid, w->profile->program);
  (void)impl.audit->port_transferred(w->bootstrap, "supervisor", w->name);

  WorkerRecord* wp = w;
  auto pw = impl.reactor->watch(w->sandbox->pidfd(), Interest::kReadable, [&impl, wp](Events) {
    auto status = wp->sandbox->try_reap();
    if (!status) {
      impl.worker_ended(*wp, "reap failed: " + status.error().message);
    } else if (status->has_value()) {
      wp->exit = **status;
      impl.worker_ended(*wp, (*status)->to_string());
    }
  });
  if (!pw) {
    impl.kill_worker(*w, "cannot watch its pidfd");
    return fail(pw.error());
  }
  w->pid_watch = *pw;
  if (w->sandbox->notify_fd().valid()) {
    auto nw = impl.reactor->watch(w->sandbox->notify_fd(), Interest::kReadable, [&impl, wp](Events) {
      auto v = wp->sandbox->handle_violation();
      if (v && v->has_value()) {
        const sandbox::Violation& viol = **v;
        ++wp->violations;
        SeccompViolation sv;
        sv.worker = wp->name;
        sv.pid = viol.pid;
        sv.syscall = viol.syscall;
        sv.syscall_nr = viol.nr;
        std::copy(std::begin(viol.args), std::end(viol.args), sv.args.begin());
        sv.action = viol.action == sandbox::ViolationAction::kKill ? "killed" : "errno EPERM";
        (void)impl.audit->seccomp_violation(sv);
      }
      // handle_violation() closes the fd once no task can use the filter;
      // the watch must go with it.
      if (!wp->sandbox->notify_fd().valid() && wp->notify_watch != 0) {
        impl.reactor->unwatch(wp->notify_watch);
        wp->notify_watch = 0;
      }
    });
    if (nw) w->notify_watch = *nw;
  }
  if (auto deadline = w->sandbox->deadline()) {
    auto delay = *deadline - std::chrono::steady_clock::now();
    auto t = impl.reactor->add_timer(std::max(delay, std::chrono::steady_clock::duration::zero()),
                                     [&impl, wp] {
                                       wp->deadline_timer = 0;
                                       (void)impl.audit->event(
                                           "worker_deadline",
                                           AuditFields().str("worker", wp->name).unum(
                                               "wall_seconds", wp->profile->limits.wall_seconds));
                                       if (wp->sandbox) (void)wp->sandbox->expire();
                                     });
    if (t) w->deadline_timer = *t;
  }
  return {};
}

Result<Port> Supervisor::attach(std::string_view name, pid_t pid) {
  Impl& impl = *impl_;
  WorkerRecord* w = impl.find_worker(name);
  if (w == nullptr) return make_error(Errc::kNotFound, "no worker '" + std::string(name) + "'");
  if (w->started) return make_error(Errc::kInvalidArgument, "worker '" + w->name + "' already started");
  if (auto r = impl.prepare_worker(*w); !r) return std::unexpected(r.error());
  auto pair = make_channel();
  if (!pair) return std::unexpected(pair.error());
  w->started = true;
  w->attached = true;
  w->running = true;
  w->pid = pid;
  auto boot = impl.serve(w, std::move(pair->first), *impl.registry.find(interfaces::kBootstrap),
                         kAllRights, GrantOrigin::kPolicy, "", impl.make_bootstrap(*w));
  if (!boot) {
    w->running = false;
    return std::unexpected(boot.error());
  }
  w->bootstrap = (*boot)->id;
  (void)impl.audit->grant_created(w->bootstrap, w->name, interfaces::kBootstrap,
                                  GrantOrigin::kPolicy,
                                  impl.rights_names(*(*boot)->iface, (*boot)->rights), 0);
  (void)impl.audit->event("worker_attached", AuditFields().str("worker", w->name).num("pid", pid));
  WorkerRecord* wp = w;
  if (pid > 0) {
    auto fd = sys_fd("pidfd_open", std::to_string(pid),
                     [&] { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); });
    // On failure the worker ends here, releasing its bootstrap grant:
    // otherwise it would stay "running" with nothing to end it.
    if (!fd) {
      impl.worker_ended(*w, "cannot watch its process: " + fd.error().message);
      return std::unexpected(fd.error());
    }
    w->attached_pidfd = std::move(*fd);
    auto pw = impl.reactor->watch(w->attached_pidfd, Interest::kReadable,
                                  [&impl, wp](Events) { impl.worker_ended(*wp, "process exited"); });
    if (!pw) {
      impl.worker_ended(*w, "cannot watch its process: " + pw.error().message);
      return std::unexpected(pw.error());
    }
    w->pid_watch = *pw;
  }
  return std::move(pair->second);
}

void Supervisor::Impl::kill_worker(WorkerRecord& w, std::string_view reason) {
  if (!w.running || w.killing) return;
  w.killing = true;
  (void)audit->event("worker_killed", AuditFields().str("worker", w.name).str("reason", reason));
  if (w.sandbox) {
    (void)w.sandbox->kill();  // reaped through its pidfd
  } else {
    worker_ended(w, "killed (attached: its ports are closed)");
  }
}

void Supervisor::Impl::worker_ended(WorkerRecord& w, std::string_view how) {
  const bool was_running = w.running;
  w.running = false;
  if (w.pid_watch != 0) reactor->unwatch(std::exchange(w.pid_watch, 0));
  if (w.notify_watch != 0) reactor->unwatch(std::exchange(w.notify_watch, 0));
  if (w.deadline_timer != 0) reactor->unwatch(std::exchange(w.deadline_timer, 0));
  w.attached_pidfd.reset();
  if (was_running) {
    if (w.exit) {
      const sandbox::ExitStatus& e = *w.exit;
      (void)audit->event("worker_exited",
                         AuditFields()
                             .str("worker", w.name)
                             .num("pid", w.pid)
                             .str("status", sandbox::exit_kind_name(e.kind))
                             .num("exit_code", e.code)
                             .num("signal", e.signal)
                             .unum("cpu_us", static_cast<std::uint64_t>(e.cpu_time.count()))
                             .unum("peak_rss_bytes", e.peak_rss_bytes)
                             .unum("wall_us", static_cast<std::uint64_t>(e.wall_time.count()))
                             .unum("calls", w.calls)
                             .unum("denials", w.denials)
                             .unum("violations", w.violations));
    } else {
      (void)audit->event("worker_exited", AuditFields()
                                              .str("worker", w.name)
                                              .num("pid", w.pid)
                                              .str("status", how)
                                              .unum("calls", w.calls)
                                              .unum("denials", w.denials));
    }
  }
  // Nothing kept for a worker outlives it: every grant it holds is released
  // (which closes our ends: a File it had open, a directory it listed).
  std::vector<GrantId> held;
  for (const auto& [id, g] : grants) {
    if (g->holder == &w) held.push_back(id);
  }
  std::sort(held.begin(), held.end());
  for (GrantId id : held) release(id, "holder exited");
  // Channel ends it never took: closing them tells the other side at once.
  for (ChannelEnd& e : w.channel_ends) e.port = Port();
  stop_if_idle();
}

void Supervisor::Impl::stop_if_idle() {
  if (!stopping_when_idle) return;
  for (const auto& w : workers) {
    if (w->running) return;
  }
  reactor->stop();
}

Result<void> Supervisor::run() {
  impl_->stopping_when_idle = true;
  impl_->stop_if_idle();
  return impl_->reactor->run();
}

void Supervisor::shutdown(std::string_view reason) {
  Impl& impl = *impl_;
  if (impl.shutting_down) return;
  impl.shutting_down = true;
  (void)impl.audit->event("shutdown", AuditFields().str("reason", reason));
  for (auto& w : impl.workers) impl.kill_worker(*w, reason);
  impl.stopping_when_idle = true;
  impl.stop_if_idle();
  (void)impl.reactor->add_timer(kShutdownGrace, [&impl] { impl.reactor->stop(); });
}

std::vector<WorkerView> Supervisor::workers() const {
  std::vector<WorkerView> out;
  for (const auto& w : impl_->workers) {
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

Result<Handle> Supervisor::mint(GrantId parent, const Interface& iface, Rights rights,
                                std::unique_ptr<ServiceObject> service) {
  GrantRecord* p = impl_->find_grant(parent);
  if (p == nullptr || p->holder == nullptr) {
    return make_error(Errc::kRevoked, "grant " + std::to_string(parent) + " is gone");
  }
  auto m = impl_->mint(*p->holder, parent, iface, rights, GrantOrigin::kReturned, p->name,
                       p->limits, std::move(service));
  if (!m) return std::unexpected(m.error());
  return std::move(m->handle);
}

void Supervisor::worker_log(std::string_view worker, LogLevel level, std::string_view text) {
  if (impl_->options.log_output) {
    impl_->options.log_output(worker, level, text);
    return;
  }
  std::string line;
  line.reserve(worker.size() + text.size() + 16);
  line += '[';
  line += worker;
  line += "] ";
  if (level != LogLevel::kInfo) {
    line += level_name(level);
    line += ": ";
  }
  line += text;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

const Interface* Supervisor::find_interface(std::string_view name) const {
  return impl_->registry.find(name);
}

Reactor& Supervisor::reactor() noexcept { return *impl_->reactor; }
AuditLog& Supervisor::audit() noexcept { return *impl_->audit; }
const InterfaceRegistry& Supervisor::registry() const noexcept { return impl_->registry; }
const policy::Policy& Supervisor::policy() const noexcept { return impl_->policy; }

}  // namespace capsa::supervisor
