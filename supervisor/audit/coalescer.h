// capsa — coalescing repeated refusals in the audit log (AuditLog's part
// that decides; AuditLog writes).
//
// A worker can make a refused syscall or call as fast as the kernel lets
// it: one line each made the log grow by tens of MB a second. Refusals that
// change nothing (seccomp_violation, call_denied, grant_refused, a
// bad_message answered with an error) are therefore coalesced per
// (worker, event type, identity), where the identity is what makes two
// lines "the same" (the syscall and action of a violation; the grant,
// interface, method and reason of a denial; never the varying details such
// as syscall arguments or the pid):
//   - in a window of one second that starts at the first such event, the
//     first `after` are written in full; the rest are counted;
//   - when the window closes (at the next such event after it, at the
//     supervisor's once-a-second tick, when the worker ends, or when the
//     log closes), one "coalesced" summary line is written with the event
//     type, worker, identity, count, and the times of the first and last
//     event it stands for;
//   - a key that had a summary stays coalesced: while the flood lasts, one
//     summary a second is all it writes; a second with none of its events
//     ends it.
// Events that change the security state (grants, transfers, revocations,
// releases, kills, worker start and exit, and any event not listed above)
// never pass through here: they are always written.
//
// Memory is bounded: at most kMaxCoalesceKeysPerWorker identities are
// tracked per worker; events with a further identity share one key per
// (worker, type) whose summary says "various": true (identities are chosen
// in part by the worker: a name it asks for is in a denial's reason).
// Lines: per worker and second, at most
// (kMaxCoalesceKeysPerWorker + 4) * (after + 1) refusal lines.
//
// Not thread-safe: AuditLog calls it under its lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace capsa::supervisor {

inline constexpr std::size_t kMaxCoalesceKeysPerWorker = 64;

class Coalescer {
 public:
  using Clock = std::chrono::steady_clock;

  // A closed window that suppressed events: one "coalesced" line.
  struct Summary {
    std::string type;
    std::string worker;
    std::string identity;  // JSON members ("k":v,...), or "" for "various"
    std::uint64_t count = 0;
    std::string first;  // ts of the first event counted
    std::string last;   // ts of the last
  };

  // `after`: identical events written in full per window; 0 disables
  // coalescing (everything is written).
  explicit Coalescer(std::uint32_t after) : after_(after) {}

  // One refusal at `now` (`ts` its time as written in the log). True: write
  // it. False: counted. Summaries of windows that closed are appended to
  // `due` (to be written first).
  bool admit(std::string_view worker, std::string_view type, std::string_view identity,
             Clock::time_point now, std::string_view ts, std::vector<Summary>& due);
  // Every window older than a second: closed, summaries appended.
  void tick(Clock::time_point now, std::vector<Summary>& due);
  // Every window of `worker` (all workers if empty): closed and forgotten.
  void flush(std::string_view worker, std::vector<Summary>& due);

  std::size_t keys() const noexcept { return windows_.size(); }

 private:
  struct Window {
    std::string worker;
    std::string type;
    std::string identity;
    Clock::time_point start;
    std::uint32_t written = 0;
    std::uint64_t suppressed = 0;
    bool flooding = false;  // the last window had a summary
    std::string first;
    std::string last;
  };
  // Ends the window, appending its summary if it suppressed anything.
  static void close(Window& w, Clock::time_point now, std::vector<Summary>& due);

  std::uint32_t after_;
  std::map<std::string, Window, std::less<>> windows_;  // worker \0 type \0 identity
  std::map<std::string, std::size_t, std::less<>> per_worker_;  // tracked identities
};

}  // namespace capsa::supervisor
