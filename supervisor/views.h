// capsa — what the supervisor shows of its grants and workers: rows copied
// out for `capsa audit`, the control socket and tests.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sandbox.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/services/service.h"

namespace capsa::supervisor {

using ChannelId = std::uint64_t;  // a mediated channel (channel_hub.h); 0: none

// How the supervisor stands to a grant's port.
enum class GrantKind : std::uint8_t {
  // The supervisor serves it: a built-in service, a bootstrap port, or the
  // client end of a mediated channel (its ServiceObject relays).
  kServed,
  // The server end of a mediated channel: the supervisor sends the calls of
  // the channel's clients on it and reads the answers (channel_hub.h).
  kServerEnd,
  // An end of a direct channel: a socketpair between two workers, the
  // supervisor not on its path. It keeps a duplicate of the socket so that
  // revoking shuts it down for every holder (shutdown(2) acts on the
  // socket, not on one fd).
  kDirectEnd,
  // An associated capability (docs/PROTOCOL.md section 8): no port of its
  // own, served on the port of another grant (GrantRecord::port_grant) under
  // an id that means something only there.
  kObject,
};

// "served", "server_end", "direct_end", "object"
std::string_view grant_kind_name(GrantKind k) noexcept;

enum class GrantState : std::uint8_t { kLive, kRevoked, kReleased };
std::string_view grant_state_name(GrantState s) noexcept;

// One row of the grant table, copied out (for `capsa audit`, tests).
struct GrantView {
  GrantId id = 0;
  GrantId parent = 0;             // 0: none (a policy grant)
  std::string worker;             // the holder
  pid_t holder_pid = 0;           // the holder's sandbox (bwrap) pid; 0 if attached
  std::string name;               // the policy grant or channel name; "" if returned
  std::string interface;          // "fs.Directory"
  std::vector<std::string> rights;  // method names
  GrantOrigin origin = GrantOrigin::kPolicy;
  GrantState state = GrantState::kLive;
  GrantKind kind = GrantKind::kServed;
  ChannelId channel = 0;          // a mediated channel's end: the channel
  ChannelId via = 0;              // the mediated channel it travelled through last
  bool transferable = false;
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point ended;  // when not live
  std::uint64_t calls = 0;        // calls served
  std::uint64_t bytes = 0;        // payload bytes in and out
  std::uint64_t denials = 0;      // calls refused (rights, rate, budget, in flight)
  std::uint64_t port_inode = 0;   // inode of the holder's end of the port
  GrantId port_grant = 0;         // an object: the grant whose port serves it
  std::uint64_t object = 0;       // an object: its id on that port
};

struct WorkerView {
  std::string name;
  pid_t pid = 0;       // bwrap's pid (our child); 0 if attached
  bool running = false;
  std::optional<sandbox::ExitStatus> exit;
  std::string start_error;  // why it did not start, if it did not
  std::uint64_t calls = 0;
  std::uint64_t denials = 0;     // calls refused + ungranted names asked
  std::uint64_t bad_messages = 0;
  std::uint64_t violations = 0;  // seccomp
  std::uint64_t grants = 0;      // grants created for it
};

}  // namespace capsa::supervisor
