// capsa — the supervisor core's wiring (supervisor.h): the parts and the
// few operations that span them. Not a public header.
//
//   GrantTable    every grant and its record (grant_table.h), each served
//                 port's PortEndpoint (port_endpoint.h);
//   workers       one WorkerRecord per worker of the policy (worker_record.h),
//                 started, watched and reaped in workers.cc;
//   calls         what a service's Call reaches (CallSink, call.cc);
//   bootstrap     capsa.Bootstrap on each worker's fd 3 (bootstrap_service.cc).
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>

#include "capabilities/message.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/channel_hub.h"
#include "supervisor/grant_table.h"
#include "supervisor/pool_waiters.h"
#include "supervisor/port_endpoint.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/supervisor.h"
#include "supervisor/worker_record.h"

namespace capsa::supervisor {

class Supervisor::Impl final : public CallSink, public EndpointOwner {
 public:
  Impl(Supervisor& self, SupervisorOptions options, policy::Policy policy);
  ~Impl() override;

  // Resolves the policy against the registry and the services, opens the
  // audit log, creates the reactor (supervisor.cc).
  Result<void> init();

  // workers.cc
  WorkerRecord* find_worker(std::string_view name);
  Result<void> start(std::string_view name);
  Result<Port> attach(std::string_view name, pid_t pid);
  void kill_worker(WorkerRecord& w, std::string_view reason) override;
  void shutdown(std::string_view reason);
  bool warm_up(std::chrono::milliseconds timeout);
  Result<void> run();
  std::vector<WorkerView> worker_views() const;
  MetricsSnapshot metrics() const;  // metrics_snapshot.cc

  // Grants.
  GrantTable& table() noexcept { return *table_; }
  const GrantTable& table() const noexcept { return *table_; }
  ChannelHub& hub() noexcept { return *hub_; }
  // channels.cc: a policy channel's end for `w` (bootstrap Get; kDenied
  // once taken); both ends of a new mediated channel of `iface` held by `w`
  // (bootstrap NewChannel); the ends `w` never took, when it ends.
  Result<GrantTable::Minted> take_channel_end(WorkerRecord& w, ChannelEnd& end);
  Result<std::pair<GrantTable::Minted, GrantTable::Minted>> new_channel(WorkerRecord& w,
                                                                        const Interface& iface);
  void drop_channel_ends(WorkerRecord& w);
  // What a grant returned by a call on `parent` is: origin returned, the
  // parent's name, mobility and shared limits (kRevoked if it is gone).
  Result<GrantTable::Spec> returned_spec(GrantId parent, const Interface& iface, Rights rights) const;
  // A grant derived from `parent` (origin returned), held by its holder.
  Result<Handle> mint_child(GrantId parent, const Interface& iface, Rights rights,
                            std::unique_ptr<ServiceObject> service);
  // objects.cc: an associated object derived from `parent` (origin
  // returned), on the port `parent`'s call came in on.
  Result<std::uint64_t> mint_object(GrantId parent, const Interface& iface, Rights rights,
                                    std::unique_ptr<ServiceObject> service);
  Result<std::vector<GrantId>> revoke(GrantId id, std::string_view reason);
  Result<void> serve_operator(Port port, const Interface& iface,
                              std::unique_ptr<ServiceObject> service);

  // EndpointOwner.
  void release(GrantId id, std::string_view reason) override;
  bool serving(GrantId id) const override { return table_->find(id) != nullptr; }
  void control_object(GrantId port, GrantId object, Message msg) override;  // objects.cc

  // CallSink (call.cc).
  Result<void> reply(CallState& call, const ReplyBuilder& build,
                     std::vector<Handle> handles) override;
  Result<void> reply_bytes(CallState& call, std::span<const std::uint8_t> payload,
                           std::vector<Handle> handles) override;
  void next(CallState& call) override;
  void fail(CallState& call, Errc code, std::string_view text) override;
  Result<void> charge(CallState& call, std::uint64_t bytes) override;
  // Hands `work` to the pool, or parks the call on its port while the pool
  // is full (backpressure: the port is not read meanwhile).
  void off_loop(Call call, std::move_only_function<Continuation()> work) override;
  std::size_t pool_waiting() const noexcept { return pool_waiters_.size(); }
  ServiceHost& host() override { return self_; }

  void worker_log(std::string_view worker, LogLevel level, std::string_view text);

  Reactor& reactor() noexcept { return *reactor_; }
  AuditLog& audit() noexcept { return *audit_; }
  spdlog::logger& log() noexcept { return *log_; }
  const InterfaceRegistry& registry() const noexcept { return registry_; }
  const policy::Policy& policy() const noexcept { return policy_; }
  const SupervisorOptions& options() const noexcept { return options_; }
  std::vector<ServiceFactory>& factories() noexcept { return factories_; }

 private:
  Result<void> plan_workers();
  void start_pools();
  // The policy's channels: a socketpair per direct one, a hub channel per
  // mediated one (supervisor.cc).
  Result<void> open_channels();
  // workers.cc
  Result<void> prepare_worker(WorkerRecord& w);
  Result<void> serve_bootstrap(WorkerRecord& w, Port port);
  Result<void> watch_sandbox(WorkerRecord& w);
  void watch_output(WorkerRecord& w);
  void report_cgroup(const WorkerRecord& w);
  void on_violation(WorkerRecord& w);
  void violation_flood(WorkerRecord& w);
  void worker_ended(WorkerRecord& w, std::string_view how);
  void stop_if_idle();

  // call.cc. The grant `call` answers on, or nullptr (marked answered) when
  // it is gone or the supervisor is being destroyed; one lookup per answer.
  GrantRecord* answerable(CallState& call);
  // Charges the reply to the grant's budget, then answer().
  Result<void> send_reply(CallState& call, GrantRecord& g, std::span<const std::uint8_t> payload,
                          std::vector<Handle> handles);
  // Sends an answer on `g`'s port; true if sent.
  bool answer(CallState& call, GrantRecord& g, const Header& header,
              std::span<const std::uint8_t> payload, std::vector<Handle> handles);
  // objects.cc: sends the reply to control message `msg` on `port`.
  void answer_control(GrantRecord& port, const Message& msg, const ReplyBuilder& build,
                      std::vector<Handle> handles);
  // Whether the supervisor's share of the pool has room for one more job.
  bool pool_room() const noexcept;
  // True if the pool took `job` (then moved from); false leaves it intact.
  bool submit_to_pool(PoolJob& job);
  // Hands parked jobs to the pool while it has room, workers in turn.
  void drain_pool();

  Supervisor& self_;
  SupervisorOptions options_;
  policy::Policy policy_;
  InterfaceRegistry registry_;
  std::vector<ServiceFactory> factories_;
  std::shared_ptr<spdlog::logger> log_;  // never null after init()
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<Reactor> reactor_;
  Encoder encoder_;  // answers; loop thread only
  PoolWaiters pool_waiters_;  // outlives the table: endpoints leave it when destroyed
  std::size_t pool_jobs_ = 0;  // handed to the pool, continuation not yet run
  std::unique_ptr<EndpointContext> endpoints_;
  std::unique_ptr<ChannelHub> hub_;  // outlives the table: ends report to it
  std::unique_ptr<GrantTable> table_;
  std::vector<std::unique_ptr<WorkerRecord>> workers_;  // policy order, stable addresses
  bool stopping_when_idle_ = false;
  bool shutting_down_ = false;
  bool destroying_ = false;  // set first in ~Impl: answering becomes a no-op
};

// capsa.Bootstrap for one worker (bootstrap_service.cc).
std::unique_ptr<ServiceObject> make_bootstrap(Supervisor::Impl& core, WorkerRecord& worker);
// Its method table against the loaded interface (dispatch.h), for tests.
Result<void> check_bootstrap_methods(const Interface& iface);

}  // namespace capsa::supervisor
