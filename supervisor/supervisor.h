// capsa — the supervisor: workers, grants, services, revocation, audit.
//
// One Supervisor runs one policy on one reactor (one loop thread). It
//   - starts each worker of the policy in its sandbox, with one end of a
//     fresh channel as fd 3 (the bootstrap port), and serves capsa.Bootstrap
//     there: Get(name) mints a grant and returns a new port to it, List names
//     the grants, Attenuate narrows one;
//   - serves every port it handed out with the service of its interface
//     (service.h), enforcing on every message: validation against the
//     interface and the grant's rights, the worker's message size, its
//     messages per second, the grant's rate and byte budget, and the calls
//     in flight per port; every refusal is answered and audited;
//   - creates the channels the policy names and hands one end to each side;
//   - keeps the grant table: every capability handed out, its origin and
//     parent, until it is released (its holder closed the port or died) or
//     revoked (closing our end, and every grant derived from it);
//   - reports seccomp violations, enforces wall-clock deadlines, reaps
//     workers and releases everything they held.
//
// Grants (docs/SUPERVISOR.md, "Grants"): each port handed out is one grant.
// A Get of the same policy grant twice gives two grants (two ports); each is
// released when its port closes. Revoking a grant whose origin is the
// policy also revokes the policy entry for that worker: later Gets of that
// name answer `revoked`, so a worker cannot undo a revocation by asking
// again.
//
// Threading: everything runs on the loop thread. The public methods below
// must be called on the loop thread too (from reactor callbacks, or before
// run()), except where stated.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>

#include "capabilities/error.h"
#include "capabilities/interface_registry.h"
#include "capabilities/port.h"
#include "policy/api_catalog.h"
#include "policy/model.h"
#include "sandbox/sandbox.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/metrics.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/services/service.h"
#include "supervisor/views.h"

namespace capsa::supervisor {

struct SupervisorOptions {
  std::string audit_log_path;  // required: the JSON Lines audit log
  AuditLog::Options audit;
  ReactorOptions reactor;
  std::string launcher;        // capsa-launcher; "" = sandbox's default
  // The supervisor's own operational log (starts, exits, releases,
  // refusals). No global logger: the host wires its own. nullptr: warnings
  // and errors to stderr.
  std::shared_ptr<spdlog::logger> logger;
  // Workers' log.Sink lines: one record each at its level, named after the
  // worker ("[%n] %v" prints "[wordcount] text"), text already sanitized.
  // The level and flush level apply; the sinks are called on the loop
  // thread even for an async logger (sinks shared with other threads: _mt).
  // nullptr: stdout, "[worker] text" ("[worker] warning: text" when the
  // level is not info).
  std::shared_ptr<spdlog::logger> worker_logger;
  // Instead of worker_logger: each line handed to this function, on the
  // loop thread, before the next message is read; so it may call the
  // supervisor (revoke a grant when a worker says "ready"), which a spdlog
  // sink (possibly async, on its own thread) must not. For tests and hosts
  // that route lines themselves.
  std::function<void(std::string_view worker, LogLevel level, std::string_view text)> log_output;
  // APIs an embedding host serves besides the built-in ones: the .bfbs of
  // each interface (capsa_flatbuffers() embeds them) and a service factory
  // per API. Policies using them must be built against api_catalog(options).
  std::vector<std::span<const std::uint8_t>> extra_schemas;
  std::vector<ServiceFactory> extra_services;
  // Limit of ended grants kept for the grant table view (the audit log
  // has them all). Bounded so a long run's memory stays flat.
  std::size_t ended_grants_kept = 256;
  // Overrides every worker profile's "pool" (capsa run --warm N): sandboxes
  // started ahead (docs/SANDBOX.md, "Warm pool"). Unset: the policy's.
  std::optional<std::uint64_t> warm_pool;
};

class Supervisor final : public ServiceHost {
 public:
  // Loads the built-in interfaces and services, opens the audit log,
  // creates the reactor. The policy must have been built against
  // api_catalog() (its APIs and constraints are what this supervisor
  // serves); an API with no service is an error here.
  static Result<std::unique_ptr<Supervisor>> create(policy::Policy policy,
                                                    SupervisorOptions options);
  ~Supervisor() override;

  // The catalog of APIs this supervisor serves, for the policy loader:
  // method names from the interface registry, constraints from the services.
  static policy::ApiCatalog api_catalog();
  // The same, with the options' extra APIs.
  static policy::ApiCatalog api_catalog(const SupervisorOptions& options);

  // Starts every worker of the policy (in policy order). A worker that
  // cannot start is recorded (WorkerView::start_error, audit
  // "worker_start_failed") and the others still start; the error returned
  // names every one that failed.
  Result<void> start_all();
  // Starts one worker of the policy by name. A worker with a warm pool
  // (its profile's "pool", or SupervisorOptions::warm_pool) starts in the
  // sandbox that waited for it when one is ready, else cold.
  Result<void> start(std::string_view worker);
  // Blocks until every worker's warm pool holds its sandbox (or a fill
  // failed, or `timeout` passed): what `capsa run --warm` does before
  // start_all(), so that every start is a hand-over. True when all are full.
  bool warm_up(std::chrono::milliseconds timeout);
  // Serves a worker of the policy that runs OUTSIDE any sandbox: returns the
  // other end of its bootstrap port. For embedding hosts that confine
  // workers another way, and for tests and benchmarks of the supervisor
  // itself. The worker "exits" when that port is closed.
  // `pid`, if the caller knows it, is the process that holds the port: the
  // grant table then checks its /proc/PID/fd like a sandboxed worker's.
  Result<Port> attach(std::string_view worker, pid_t pid = 0);

  // Runs the loop until every started worker has ended (or stop()).
  Result<void> run();
  // Kills every running worker; run() returns once they are reaped.
  // Safe from a signal callback on the loop thread.
  void shutdown(std::string_view reason);

  // Revokes grant `id` and every live grant derived from it (returned by a
  // call on it, attenuated from it). Returns the ids revoked, `id` first.
  // kNotFound if `id` is not live. A channel end cannot be revoked (the
  // supervisor is not on a direct channel's path): kInvalidArgument.
  Result<std::vector<GrantId>> revoke(GrantId id, std::string_view reason);

  std::vector<GrantView> grants(bool include_ended = false) const;
  std::vector<WorkerView> workers() const;
  std::size_t live_grants() const noexcept;
  // The counters, gauges and call latency histograms (metrics.h), copied
  // out; render_metrics() makes the Prometheus text of them. Loop thread.
  MetricsSnapshot metrics() const;
  // Calls parked until the service pool has room (their ports unread
  // meanwhile; docs/SUPERVISOR.md, "Backpressure").
  std::size_t pool_waiting() const noexcept;

  // Serves `port` with `service` as an operator session (the control
  // socket): all rights, not a grant, not counted against any worker.
  Result<void> serve_operator(Port port, const Interface& iface,
                              std::unique_ptr<ServiceObject> service);

  Reactor& reactor() noexcept;
  AuditLog& audit() noexcept;
  // The supervisor's own operational log (SupervisorOptions::logger), for
  // the parts of the supervisor that live outside the core (control socket).
  spdlog::logger& logger() noexcept;
  const InterfaceRegistry& registry() const noexcept;
  const policy::Policy& policy() const noexcept;

  // ServiceHost.
  Result<Handle> mint(GrantId parent, const Interface& iface, Rights rights,
                      std::unique_ptr<ServiceObject> service) override;
  Result<std::uint64_t> mint_object(GrantId parent, const Interface& iface, Rights rights,
                                    std::unique_ptr<ServiceObject> service) override;
  void worker_log(std::string_view worker, LogLevel level, std::string_view text) override;
  const Interface* find_interface(std::string_view name) const override;

  class Impl;

 private:
  Supervisor();
  std::unique_ptr<Impl> impl_;
};

}  // namespace capsa::supervisor
