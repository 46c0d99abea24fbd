// capsa — the supervisor's internal state (supervisor.h), shared by its
// implementation files: supervisor.cc (workers), grant_table.cc (grants,
// revocation), endpoint.cc (serving ports), call.cc (answering calls),
// bootstrap_service.cc (capsa.Bootstrap). Not a public header.
//
// Memory per live grant is a design target (issue 5: at most 2 KiB at
// 10,000 grants; docs/PERFORMANCE.md): a GrantRecord holds no strings of
// its own (names point into the policy, which outlives it), limits shared
// by every grant of one policy entry are shared_ptrs, and the queue of
// waiting calls allocates only while a port has calls waiting. Ports share
// one receive buffer per thread (capabilities/port.cc).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capabilities/message.h"
#include "capabilities/validator.h"
#include "capabilities/port.h"
#include "supervisor/services/rate_limit.h"
#include "supervisor/supervisor.h"

namespace capsa::supervisor {

struct WorkerRecord;

// Limits shared by every grant derived from one policy grant of one worker
// (each Get, what a call on it returned, what was attenuated from it): a
// worker cannot reset a budget by asking again or opening another file.
struct SharedLimits {
  std::optional<services::RateLimiter> rate;
  std::optional<services::ByteBudget> budget;
};

struct GrantRecord {
  GrantId id = 0;
  GrantId parent = 0;
  std::vector<GrantId> children;  // live grants derived from this one
  WorkerRecord* holder = nullptr;  // nullptr: an operator session (not a grant)
  const Interface* iface = nullptr;
  Rights rights = 0;
  GrantOrigin origin = GrantOrigin::kPolicy;
  std::string_view name;  // policy grant or channel name (points into the policy)
  bool channel = false;
  std::chrono::system_clock::time_point created;
  std::uint64_t calls = 0;
  std::uint64_t bytes = 0;
  std::uint64_t denials = 0;
  std::uint64_t port_inode = 0;  // the holder's end
  std::shared_ptr<SharedLimits> limits;

  // Serving (not for channel ends).
  Port port;
  WatchId watch = 0;
  std::unique_ptr<ServiceObject> service;
  bool busy = false;     // a call is with the service
  bool pumping = false;  // pump() is on the stack
  std::vector<Message> queue;  // validated calls waiting, at most calls_in_flight
};

// A policy grant as one worker's bootstrap serves it.
struct GrantPlan {
  const policy::Grant* grant = nullptr;
  const Interface* iface = nullptr;
  Rights rights = 0;
  const ServiceFactory* factory = nullptr;
  std::shared_ptr<const void> prepared;
  std::shared_ptr<SharedLimits> limits;
};

// One end of a policy channel, waiting for its worker to Get it.
struct ChannelEnd {
  const policy::Channel* channel = nullptr;
  const Interface* iface = nullptr;
  Port port;           // invalid once handed out (or closed)
  bool taken = false;
};

struct WorkerRecord {
  const policy::WorkerProfile* profile = nullptr;
  std::string name;
  std::optional<sandbox::Worker> sandbox;
  pid_t pid = 0;
  Fd attached_pidfd;  // attach(worker, pid): watched for the exit
  bool started = false;
  bool running = false;
  bool attached = false;
  bool killing = false;  // a kill was sent: its ports are no longer served
  WatchId pid_watch = 0;
  WatchId notify_watch = 0;
  WatchId deadline_timer = 0;
  GrantId bootstrap = 0;
  std::optional<services::RateLimiter> message_rate;
  std::vector<GrantPlan> plans;           // policy order
  std::vector<ChannelEnd> channel_ends;   // channels naming this worker
  std::set<std::string, std::less<>> revoked_names;
  std::optional<sandbox::ExitStatus> exit;
  std::string start_error;
  std::uint64_t calls = 0;
  std::uint64_t denials = 0;
  std::uint64_t bad_messages = 0;
  std::uint64_t violations = 0;
  std::uint64_t grants = 0;
  std::uint64_t live = 0;  // grants it holds now

  // The most grants it may hold at once: it cannot hold more ports than
  // its fd limit, so more live grants mean ports parked in flight (in a
  // socket buffer), which would cost the supervisor fds and memory without
  // bound. Beyond this, mint answers `overloaded`.
  std::uint64_t max_live() const { return profile->limits.open_files + kLiveGrantSlack; }
  static constexpr std::uint64_t kLiveGrantSlack = 16;

  const GrantPlan* find_plan(std::string_view grant_name) const;
  ChannelEnd* find_channel_end(std::string_view channel_name);
};

struct Supervisor::Impl final : CallSink {
  Supervisor* self = nullptr;
  SupervisorOptions options;
  policy::Policy policy;
  InterfaceRegistry registry;
  std::vector<ServiceFactory> factories;
  std::unique_ptr<AuditLog> audit;
  std::shared_ptr<spdlog::logger> log;  // never null after create()
  std::unique_ptr<Reactor> reactor;
  Encoder encoder;  // replies; loop thread only

  std::vector<std::unique_ptr<WorkerRecord>> workers;  // policy order, stable addresses
  std::unordered_map<GrantId, std::unique_ptr<GrantRecord>> grants;
  std::unordered_map<std::uint64_t, GrantId> by_inode;  // holder's end inode -> grant
  std::deque<GrantView> ended;                          // bounded, newest last
  GrantId next_grant = 1;
  std::size_t live_count = 0;  // grants held by workers (sessions excluded)
  bool stopping_when_idle = false;
  bool shutting_down = false;
  bool destroying = false;  // set first in ~Supervisor: answering becomes a no-op

  // supervisor.cc
  WorkerRecord* find_worker(std::string_view name);
  Result<void> prepare_worker(WorkerRecord& w);
  void worker_ended(WorkerRecord& w, std::string_view how);
  void stop_if_idle();
  void kill_worker(WorkerRecord& w, std::string_view reason);

  // grant_table.cc
  GrantRecord* find_grant(GrantId id);
  // Makes a served grant: a new channel, our end watched and served by
  // `service`; audits grant_created. Returns the holder's end.
  struct Minted {
    GrantId id = 0;
    Handle handle;
  };
  Result<Minted> mint(WorkerRecord& holder, GrantId parent, const Interface& iface,
                      Rights rights, GrantOrigin origin, std::string_view name,
                      std::shared_ptr<SharedLimits> limits,
                      std::unique_ptr<ServiceObject> service);
  // Registers a served grant on an existing port (bootstrap, sessions).
  Result<GrantRecord*> serve(WorkerRecord* holder, Port port, const Interface& iface,
                             Rights rights, GrantOrigin origin, std::string_view name,
                             std::unique_ptr<ServiceObject> service);
  GrantRecord& record_channel_end(WorkerRecord& holder, const ChannelEnd& end,
                                  std::uint64_t inode);
  // Ends one grant: closes our end, audits, re-parents its children (a
  // release) or revokes them (a revocation), keeps a bounded history.
  void release(GrantId id, std::string_view reason);
  void revoke_tree(GrantId id, std::string_view reason, std::vector<GrantId>& out);
  GrantView view(const GrantRecord& g, GrantState state) const;
  std::vector<std::string> rights_names(const Interface& iface, Rights rights) const;

  // endpoint.cc
  void on_port_event(GrantId id, Events events);
  void pump(GrantId id);
  void dispatch(GrantRecord& g, Message msg);
  void deny(GrantRecord& g, std::uint64_t call_id, const Method* method, Errc code,
            std::string_view reason);
  void bad_message(GrantRecord& g, const Error& error, const EnvelopeInfo& info);
  std::size_t calls_in_flight_limit(const GrantRecord& g) const;

  // call.cc: CallSink, what a service's Call reaches.
  Result<void> reply(CallState& call, const ReplyBuilder& build,
                     std::vector<Handle> handles) override;
  void fail(CallState& call, Errc code, std::string_view text) override;
  Result<void> charge(CallState& call, std::uint64_t bytes) override;
  void off_loop(Call call, std::move_only_function<Continuation()> work) override;
  ServiceHost& host() override;
  bool answer(CallState& call, const Header& header, std::span<const std::uint8_t> payload,
              std::vector<Handle> handles);
  void call_done(GrantId id);

  // bootstrap_service.cc
  std::unique_ptr<ServiceObject> make_bootstrap(WorkerRecord& w);
};

}  // namespace capsa::supervisor
