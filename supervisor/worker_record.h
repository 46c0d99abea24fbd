// capsa — what the supervisor core keeps per worker of the policy: its
// plans for each policy grant, its channel ends, its sandbox and watches,
// its counters. Not a public header (supervisor.h is).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/fd.h"
#include "capabilities/interface_registry.h"
#include "capabilities/port.h"
#include "policy/model.h"
#include "sandbox/pool.h"
#include "sandbox/sandbox.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/services/rate_limit.h"
#include "supervisor/services/service.h"
#include "supervisor/views.h"
#include "supervisor/worker_output.h"

namespace capsa::supervisor {

// Limits shared by every grant derived from one policy grant of one worker
// (each Get, what a call on it returned, what was attenuated from it): a
// worker cannot reset a budget by asking again or opening another file.
struct SharedLimits {
  // The policy grant they come from: named with its constraints on every
  // grant_created line of what derives from it (audit_log.h).
  const policy::Grant* grant = nullptr;
  std::optional<services::RateLimiter> rate;
  std::optional<services::ByteBudget> budget;
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
  bool server = false;     // the server's end (else the client's)
  ChannelId mediated = 0;  // a mediated channel: the hub's id (channel_hub.h)
  Port port;               // a direct channel: this end, until handed out (or closed)
  GrantId grant = 0;       // once handed out
  bool taken = false;
};

struct WorkerRecord {
  const policy::WorkerProfile* profile = nullptr;
  std::string name;
  std::optional<sandbox::Worker> sandbox;
  // Its warm pool (profile "pool" or SupervisorOptions::warm_pool), from
  // the supervisor's creation until the worker's start, which ends it: the
  // worker starts once.
  std::unique_ptr<sandbox::Pool> pool;
  pid_t pid = 0;
  Fd attached_pidfd;  // attach(worker, pid): watched for the exit
  bool started = false;
  bool running = false;
  bool attached = false;
  bool killing = false;  // a kill was sent: its ports are no longer served
  WatchId pid_watch = 0;
  WatchId notify_watch = 0;
  WatchId deadline_timer = 0;
  std::unique_ptr<WorkerOutput> output;  // output: supervisor, once started
  std::uint64_t bootstrap = 0;  // its bootstrap grant
  std::optional<services::RateLimiter> message_rate;
  std::optional<services::RateLimiter> violation_rate;  // limits.violations_per_second
  bool violation_flood = false;                         // on_violation_flood ran
  std::vector<GrantPlan> plans;          // policy order
  std::vector<ChannelEnd> channel_ends;  // channels naming this worker
  std::set<std::string, std::less<>> revoked_names;
  std::optional<sandbox::ExitStatus> exit;
  std::string start_error;
  std::uint64_t calls = 0;
  std::uint64_t denials = 0;
  std::uint64_t bad_messages = 0;
  std::uint64_t violations = 0;
  std::uint64_t grants = 0;
  std::uint64_t live = 0;  // ports it holds now (grants other than objects)
  std::uint64_t objects = 0;  // associated objects it holds now (limits.objects)
  std::uint64_t ended_bytes = 0;  // payload bytes of its grants that ended (GrantTable::bytes_of)

  // The most grants it may hold at once: it cannot hold more ports than
  // its fd limit, so more live grants mean ports parked in flight (in a
  // socket buffer), which would cost the supervisor fds and memory without
  // bound. Beyond this, mint answers `overloaded`.
  std::uint64_t max_live() const { return profile->limits.open_files + kLiveGrantSlack; }
  static constexpr std::uint64_t kLiveGrantSlack = 16;

  const GrantPlan* find_plan(std::string_view grant_name) const {
    for (const GrantPlan& p : plans) {
      if (p.grant->name == grant_name) return &p;
    }
    return nullptr;
  }
  ChannelEnd* find_channel_end(std::string_view channel_name) {
    for (ChannelEnd& e : channel_ends) {
      if (e.channel->name == channel_name) return &e;
    }
    return nullptr;
  }
};

}  // namespace capsa::supervisor
