// capsa — the supervisor: creating it and its public interface
// (supervisor.h). The parts: grant_table.h, port_endpoint.h, workers.cc,
// call.cc, bootstrap_service.cc; supervisor_impl.h wires them.
#include "supervisor/supervisor.h"

#include <sys/resource.h>

#include <utility>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "capabilities/interfaces/builtin.h"
#include "supervisor/services/builtin_services.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

namespace {

// "%*" in the default worker pattern: "warning: " (the level's name) before
// a line that is not at info, nothing before an info line.
class LevelUnlessInfo final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    if (msg.level == spdlog::level::info) return;
    auto name = spdlog::level::to_string_view(msg.level);
    dest.append(name.data(), name.data() + name.size());
    dest.append(std::string_view(": "));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelUnlessInfo>();
  }
};

// Workers' lines when the host wires no logger: stdout, every level,
// "[worker] text", flushed at once (a line is seen when it is logged).
std::shared_ptr<spdlog::logger> default_worker_logger() {
  auto out = std::make_shared<spdlog::logger>("worker",
                                              std::make_shared<spdlog::sinks::stdout_sink_mt>());
  auto text = std::make_unique<spdlog::pattern_formatter>();
  text->add_flag<LevelUnlessInfo>('*').set_pattern("[%n] %*%v");
  out->set_formatter(std::move(text));
  out->set_level(spdlog::level::trace);
  out->flush_on(spdlog::level::trace);
  return out;
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

Supervisor::Impl::Impl(Supervisor& self, SupervisorOptions options, policy::Policy policy)
    : self_(self), options_(std::move(options)), policy_(std::move(policy)) {}

Supervisor::Impl::~Impl() {
  destroying_ = true;
  // Grants first (each endpoint unwatches and closes its port; the hub
  // no longer relays or settles what they report), then the
  // workers (a sandbox::Worker kills and reaps its sandbox when destroyed),
  // then the reactor (joins its pool; queued answers are dropped as no-ops).
  if (hub_) hub_->shut();
  if (table_) table_->clear();
  hub_.reset();  // calls still waiting in it are dropped while `this` is whole
  for (auto& w : workers_) {
    for (WatchId id : {w->pid_watch, w->notify_watch, w->deadline_timer}) {
      if (id != 0) reactor_->unwatch(id);
    }
  }
  workers_.clear();
  reactor_.reset();
}

// Resolves every grant against the registry and the services now, so a
// policy this supervisor cannot serve fails before anything starts.
Result<void> Supervisor::Impl::plan_workers() {
  std::string errors;
  for (const policy::WorkerProfile& p : policy_.workers) {
    auto w = std::make_unique<WorkerRecord>();
    w->profile = &p;
    w->name = p.name;
    for (const policy::Grant& g : p.grants) {
      GrantPlan plan;
      plan.grant = &g;
      plan.iface = registry_.find(g.api);
      for (const ServiceFactory& f : factories_) {
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
    workers_.push_back(std::move(w));
  }
  for (const policy::Channel& c : policy_.channels) {
    const Interface* iface = registry_.find(c.interface);
    if (iface == nullptr) {
      errors += "channel '" + c.name + "': unknown interface " + c.interface + "\n";
      continue;
    }
    for (const std::string& side : {c.client, c.server}) {
      WorkerRecord* w = find_worker(side);
      if (w == nullptr) {
        errors += "channel '" + c.name + "': unknown worker " + side + "\n";
        continue;
      }
      ChannelEnd end;
      end.channel = &c;
      end.iface = iface;
      end.server = side == c.server;
      w->channel_ends.push_back(std::move(end));
    }
  }
  for (const policy::WorkerProfile& p : policy_.workers) {
    for (const std::string& api : p.new_channels) {
      if (registry_.find(api) == nullptr) {
        errors += "worker '" + p.name + "' new_channels: unknown interface " + api + "\n";
      }
    }
  }
  if (!errors.empty()) {
    errors.pop_back();
    return make_error(Errc::kInvalidArgument, errors);
  }
  return {};
}

Result<void> Supervisor::Impl::init() {
  CAPSA_TRY(load_apis(options_, registry_, factories_));
  CAPSA_TRY(plan_workers());
  log_ = options_.logger;
  if (!log_) {
    log_ = std::make_shared<spdlog::logger>("capsa",
                                            std::make_shared<spdlog::sinks::stderr_sink_mt>());
    log_->set_level(spdlog::level::warn);
  }
  if (!options_.worker_logger) options_.worker_logger = default_worker_logger();
  raise_fd_limit();
  CAPSA_ASSIGN_OR_RETURN(audit_, AuditLog::open(options_.audit_log_path, options_.audit));
  CAPSA_ASSIGN_OR_RETURN(reactor_, Reactor::create(options_.reactor));
  // Coalesced refusals are summarised once a second, also after a flood
  // stopped (audit/coalescer.h).
  CAPSA_TRY(reactor_->add_periodic_timer(std::chrono::seconds(1), [this] { (void)audit_->flush_due(); }));
  endpoints_.reset(new EndpointContext{*reactor_, *audit_, encoder_, *this, *this, pool_waiters_,
                                       registry_.find(interfaces::kObject)});
  table_ = std::make_unique<GrantTable>(*audit_, *endpoints_, options_.ended_grants_kept);
  hub_ = std::make_unique<ChannelHub>(*table_, *endpoints_);
  CAPSA_TRY(open_channels());
  start_pools();
  return {};
}

Result<std::unique_ptr<Supervisor>> Supervisor::create(policy::Policy policy,
                                                       SupervisorOptions options) {
  if (options.audit_log_path.empty()) {
    return make_error(Errc::kInvalidArgument, "an audit log path is required");
  }
  std::unique_ptr<Supervisor> s(new Supervisor());
  s->impl_ = std::make_unique<Impl>(*s, std::move(options), std::move(policy));
  CAPSA_TRY(s->impl_->init());
  return s;
}

Supervisor::Supervisor() = default;
Supervisor::~Supervisor() = default;

Result<void> Supervisor::start_all() {
  std::string failed;
  for (const policy::WorkerProfile& p : impl_->policy().workers) {
    WorkerRecord* w = impl_->find_worker(p.name);
    if (w == nullptr || w->started) continue;
    if (auto r = impl_->start(p.name); !r) failed += r.error().message + "\n";
  }
  if (!failed.empty()) {
    failed.pop_back();
    return make_error(Errc::kFailed, failed);
  }
  return {};
}

Result<void> Supervisor::start(std::string_view worker) { return impl_->start(worker); }
bool Supervisor::warm_up(std::chrono::milliseconds timeout) { return impl_->warm_up(timeout); }
Result<Port> Supervisor::attach(std::string_view worker, pid_t pid) {
  return impl_->attach(worker, pid);
}
Result<void> Supervisor::run() { return impl_->run(); }
void Supervisor::shutdown(std::string_view reason) { impl_->shutdown(reason); }

Result<std::vector<GrantId>> Supervisor::revoke(GrantId id, std::string_view reason) {
  return impl_->revoke(id, reason);
}
std::vector<GrantView> Supervisor::grants(bool include_ended) const {
  return impl_->table().views(include_ended);
}
std::vector<WorkerView> Supervisor::workers() const { return impl_->worker_views(); }
std::size_t Supervisor::live_grants() const noexcept { return impl_->table().live(); }
std::size_t Supervisor::pool_waiting() const noexcept { return impl_->pool_waiting(); }

Result<void> Supervisor::serve_operator(Port port, const Interface& iface,
                                        std::unique_ptr<ServiceObject> service) {
  return impl_->serve_operator(std::move(port), iface, std::move(service));
}

Result<Handle> Supervisor::mint(GrantId parent, const Interface& iface, Rights rights,
                                std::unique_ptr<ServiceObject> service) {
  return impl_->mint_child(parent, iface, rights, std::move(service));
}
Result<std::uint64_t> Supervisor::mint_object(GrantId parent, const Interface& iface, Rights rights,
                                              std::unique_ptr<ServiceObject> service) {
  return impl_->mint_object(parent, iface, rights, std::move(service));
}
void Supervisor::worker_log(std::string_view worker, LogLevel level, std::string_view text) {
  impl_->worker_log(worker, level, text);
}
const Interface* Supervisor::find_interface(std::string_view name) const {
  return impl_->registry().find(name);
}

namespace {

spdlog::level::level_enum spdlog_level(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarning: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::err;
}

}  // namespace

void Supervisor::Impl::worker_log(std::string_view worker, LogLevel level, std::string_view text) {
  if (options_.log_output) {
    options_.log_output(worker, level, text);
    return;
  }
  spdlog::logger& out = *options_.worker_logger;  // never null after init()
  const auto lvl = spdlog_level(level);
  if (!out.should_log(lvl)) return;
  // spdlog names a record after its logger; this record is named after the
  // worker (the supervisor's attribution, never the worker's own claim), so
  // it goes to the logger's sinks directly.
  const spdlog::details::log_msg msg(spdlog::string_view_t(worker.data(), worker.size()), lvl,
                                     spdlog::string_view_t(text.data(), text.size()));
  try {
    for (const auto& sink : out.sinks()) {
      if (sink->should_log(lvl)) sink->log(msg);
    }
    if (lvl >= out.flush_level()) out.flush();
  } catch (const std::exception&) {
    // A sink that fails (a full disk, a closed pipe) loses the line, as
    // spdlog's own error handler would: a worker's log must not stop the loop.
  }
}

// Grants, as the core's parts ask for them.

void Supervisor::Impl::release(GrantId id, std::string_view reason) {
  const GrantRecord* g = table_->find(id);
  if (g == nullptr) return;
  // An attached worker without a pid lives as long as its bootstrap port.
  WorkerRecord* holder = g->holder;
  const bool ends_worker = holder != nullptr && holder->attached && holder->pid == 0 &&
                           holder->running && holder->bootstrap == id;
  table_->release(id, reason);
  if (ends_worker) worker_ended(*holder, "bootstrap port closed (attached worker)");
}

Result<std::vector<GrantId>> Supervisor::Impl::revoke(GrantId id, std::string_view reason) {
  const GrantRecord* g = table_->find(id);
  if (g == nullptr || g->holder == nullptr) {
    return make_error(Errc::kNotFound, "no live grant " + std::to_string(id));
  }
  const std::string why = reason.empty() ? "revoked by the operator" : std::string(reason);
  std::vector<GrantId> roots{id};
  if (g->kind == GrantKind::kDirectEnd && g->peer != 0) {
    // One socketpair: cutting one end cuts both.
    roots.push_back(g->peer);
  } else if (g->channel != 0 && g->parent == 0) {
    // An original end of a mediated channel is the channel: every end, and
    // every port that travelled through it, wherever it went after.
    roots = table_->of_channel(g->channel);
  }
  std::vector<GrantId> out;
  {
    ChannelHub::Batch batch(*hub_);
    for (GrantId r : roots) {
      const std::string r_why = r == id ? why : why + " (with grant " + std::to_string(id) + ")";
      std::vector<GrantId> cut = table_->revoke_tree(r, r_why);
      out.insert(out.end(), cut.begin(), cut.end());
    }
  }
  log_->info("grant {} revoked ({} in all): {}", id, out.size(), why);
  return out;
}

Result<void> Supervisor::Impl::serve_operator(Port port, const Interface& iface,
                                              std::unique_ptr<ServiceObject> service) {
  CAPSA_TRY(table_->serve(nullptr, std::move(port), iface, kAllRights, GrantOrigin::kPolicy, "",
                          std::move(service)));
  return {};
}

Result<GrantTable::Spec> Supervisor::Impl::returned_spec(GrantId parent, const Interface& iface,
                                                         Rights rights) const {
  const GrantRecord* p = table_->find(parent);
  if (p == nullptr || p->holder == nullptr) {
    return make_error(Errc::kRevoked, "grant " + std::to_string(parent) + " is gone");
  }
  GrantTable::Spec spec;
  spec.parent = parent;
  spec.iface = &iface;
  spec.rights = rights;
  spec.origin = GrantOrigin::kReturned;
  spec.name = p->name;
  spec.transferable = p->transferable;  // a File opened from a Directory is as mobile as it
  spec.limits = p->limits;
  return spec;
}

Result<Handle> Supervisor::Impl::mint_child(GrantId parent, const Interface& iface, Rights rights,
                                            std::unique_ptr<ServiceObject> service) {
  CAPSA_ASSIGN_OR_RETURN(const GrantTable::Spec spec, returned_spec(parent, iface, rights));
  WorkerRecord& holder = *table_->find(parent)->holder;
  CAPSA_ASSIGN_OR_RETURN(auto minted, table_->mint(holder, spec, std::move(service)));
  return std::move(minted.handle);
}

Reactor& Supervisor::reactor() noexcept { return impl_->reactor(); }
AuditLog& Supervisor::audit() noexcept { return impl_->audit(); }
spdlog::logger& Supervisor::logger() noexcept { return impl_->log(); }
const InterfaceRegistry& Supervisor::registry() const noexcept { return impl_->registry(); }
const policy::Policy& Supervisor::policy() const noexcept { return impl_->policy(); }

}  // namespace capsa::supervisor
