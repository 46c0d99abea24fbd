// capsa policy — the in-memory policy the supervisor reads.
//
// Plain data, produced only by PolicyBuilder::try_build() (policy/builder.h),
// so every Policy a supervisor holds has passed all checks: names unique,
// programs absolute, APIs and methods known, limits in range. Nothing here
// owns an fd or a process.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "capabilities/refusal.h"
#include "policy/limits.h"

namespace capsa::policy {

// What the supervisor does when a worker sends a message that fails
// validation: the port layer's enum (capabilities/refusal.h), one type for
// both. Default kKill: like Chromium with a renderer that sends a bad IPC,
// a worker that sends garbage is assumed compromised.
using BadMessageAction = capsa::BadMessageAction;
using capsa::to_string;  // to_string(BadMessageAction): "reply_error", ...

// What the supervisor does when a worker makes more seccomp violations in
// one second than limits.violations_per_second. Default kKill: a worker
// looping on a refused syscall is broken or probing the kernel, and each
// violation costs the supervisor a notification round trip.
enum class ViolationFloodAction : std::uint8_t { kKill, kReport };
std::string_view to_string(ViolationFloodAction a) noexcept;  // "kill", "report"

// Where the worker's stdout and stderr go (docs/POLICY.md, "output").
// Default kSupervisor: a pipe the supervisor reads, sanitizes and logs under
// the worker's name, within limits.output_bytes. kInherit hands the worker
// the supervisor's own fd 1 and 2: it shares those open files and can
// truncate or overwrite the operator's log file, set O_NONBLOCK on it, or
// drive the operator's terminal with escape sequences.
enum class OutputMode : std::uint8_t { kSupervisor, kInherit, kDiscard };
std::string_view to_string(OutputMode m) noexcept;  // "supervisor", "inherit", "discard"

using ConstraintValue = std::variant<bool, std::uint64_t, std::string>;

std::string to_string(const ConstraintValue& v);  // true, 42, /srv/texts

struct SandboxSettings {
  std::vector<std::string> ro_binds;           // absolute host paths, bound read-only
  std::uint64_t tmpfs_bytes = kDefaultTmpfsBytes;
  std::vector<std::string> allowed_syscalls;   // listed in the policy
  std::string seccomp_profile;                 // OCI profile path, "" if none
  std::vector<std::string> imported_syscalls;  // allowed by that profile
  // Refuse to start the worker without a cgroup (docs/SANDBOX.md, "The
  // worker's cgroup"): memfds, /tmp's pages and kernel memory are then
  // bounded for the sandbox as a whole, or the worker does not run.
  bool require_cgroup = false;

  // allowed_syscalls ∪ imported_syscalls, sorted, without duplicates.
  std::vector<std::string> extra_syscalls() const;
};

struct Grant {
  std::string name;  // what the worker asks its bootstrap port for
  std::string api;   // interface name in the ApiCatalog
  // Methods the worker may call. `all_rights` expands to every method of
  // the API at build time, so `rights` is always the explicit list.
  std::vector<std::string> rights;
  bool all_rights = false;
  // API-specific constraints, with the API's defaults filled in.
  std::map<std::string, ConstraintValue, std::less<>> constraints;
  std::uint64_t rate = 0;         // calls per second; 0 = no per-grant limit
  std::uint64_t byte_budget = 0;  // total payload bytes; 0 = no budget
  bool transferable = false;      // may the worker send the port on

  const ConstraintValue* constraint(std::string_view key) const;
};

struct WorkerProfile {
  std::string name;
  std::string program;  // absolute
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // the whole environment
  SandboxSettings sandbox;
  Limits limits;
  BadMessageAction on_bad_message = BadMessageAction::kKill;
  ViolationFloodAction on_violation_flood = ViolationFloodAction::kKill;
  OutputMode output = OutputMode::kSupervisor;
  // Sandboxes kept started ahead for this worker (docs/SANDBOX.md, "Warm
  // pool"); 0 = none, at most kMaxPool.
  std::uint64_t pool = 0;
  std::vector<Grant> grants;
  // Interfaces it may make mediated channels of (Bootstrap.NewChannel).
  std::vector<std::string> new_channels;

  const Grant* find_grant(std::string_view grant_name) const;
};

// Values are the schema's (policy.fbs, ChannelMode).
enum class ChannelMode : std::uint8_t { kMediated = 0, kDirect = 1 };
std::string_view to_string(ChannelMode m) noexcept;

// A channel between two workers, handed to `client` and `server` under
// `name`. Mediated: the supervisor relays (and checks) every message;
// direct: one socketpair, the supervisor not on its path.
struct Channel {
  std::string name;
  std::string interface;
  std::string client;
  std::string server;
  ChannelMode mode = ChannelMode::kMediated;
};

struct Policy {
  std::vector<WorkerProfile> workers;
  std::vector<Channel> channels;

  const WorkerProfile* find_worker(std::string_view worker_name) const;
};

}  // namespace capsa::policy
