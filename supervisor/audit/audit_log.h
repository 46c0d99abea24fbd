// capsa — the audit log: append-only JSON Lines.
//
// One event = one line = one write(2) on an fd opened O_WRONLY | O_APPEND |
// O_CREAT | O_CLOEXEC (mode 0600: the log names workers, grants and files,
// which is nobody else's business). Consequences:
//   - there is no user-space buffer: once a call returned success, the line
//     is in the kernel and survives a crash or SIGKILL of the supervisor
//     (not a power loss: that needs fsync, see `Options::sync_each_line`);
//   - O_APPEND makes each write land at the end of the file atomically with
//     respect to other appenders, so lines from two supervisors (or threads)
//     never interleave on a local filesystem;
//   - a line is never half-written by us: if the kernel accepts only part of
//     it (disk full), the rest is retried and the failure reported.
//
// Every line is a JSON object:
//   {"ts":"2024-05-01T12:00:00.123Z","run":"9f3c0a5e1b2d4c67","seq":7,"event":"call_denied",...}
// `ts` is RFC 3339 UTC with milliseconds, `run` names the AuditLog (one
// supervisor run: 64 random bits in hex), `seq` counts from 1 for each
// AuditLog. Grant ids restart at 1 in every run, so (run, grant) is what is
// unique in a log that several runs share; each run starts with an
// "audit_opened" event carrying its pid.
//
// Strings a worker controls (names it asks for, method names, log text) are
// escaped so every line stays valid JSON whatever the bytes: quotes,
// backslashes and control characters are escaped, invalid UTF-8 becomes
// U+FFFD, and each string is cut at `kMaxAuditStringBytes` (marked
// "...[truncated]") so a worker cannot make one line arbitrarily large.
//
// Bounded: repeated refusals from one worker are coalesced into counted
// summary lines (coalescer.h); events that change the security state never
// are. The file is rotated at a size cap, between lines (audit_file.h):
// with rotation on (the default), two supervisors should not share a file.
//
// Thread-safe: the loop thread and pool threads may log; `seq` order is the
// order of lines in the file.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <ctime>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "supervisor/audit/audit_file.h"
#include "supervisor/audit/coalescer.h"

namespace capsa::supervisor {

// Bytes of one string field kept in the log before it is cut.
inline constexpr std::size_t kMaxAuditStringBytes = 1024;

// Appends `s` to `out` as a JSON string literal (with the quotes), escaped
// as described above, cut at `max_bytes` of input.
void append_json_string(std::string& out, std::string_view s,
                        std::size_t max_bytes = kMaxAuditStringBytes);

// The fields of one event, in order. Keys are chosen by our code; values
// may be hostile and are escaped.
class AuditFields {
 public:
  AuditFields& str(std::string_view key, std::string_view value);
  AuditFields& num(std::string_view key, std::int64_t value);
  AuditFields& unum(std::string_view key, std::uint64_t value);
  AuditFields& boolean(std::string_view key, bool value);
  // A JSON array of strings.
  AuditFields& strs(std::string_view key, std::span<const std::string> values);
  // A JSON object of `members`' fields.
  AuditFields& object(std::string_view key, const AuditFields& members);
  // Every field of `more`, after these.
  AuditFields& append(const AuditFields& more);
  // The fields as JSON object members: `"k":v,"k2":v2` (no braces).
  const std::string& json() const noexcept { return json_; }

 private:
  void key(std::string_view k);
  std::string json_;
};

// How a grant came to be (docs/SUPERVISOR.md, "Grants").
enum class GrantOrigin : std::uint8_t { kPolicy, kReturned, kAttenuated, kDelegated };
std::string_view grant_origin_name(GrantOrigin origin) noexcept;

struct WorkerExit {
  // Exactly one of these is meaningful: `signal` != 0 means killed by it.
  int exit_code = 0;
  int signal = 0;
  bool core_dumped = false;
  // From the child's rusage.
  std::uint64_t user_us = 0;
  std::uint64_t system_us = 0;
  std::uint64_t max_rss_kib = 0;
};

struct SeccompViolation {
  std::string_view worker;
  pid_t pid = 0;
  std::string_view syscall;  // name, or "unknown" when libseccomp has none
  int syscall_nr = -1;
  std::array<std::uint64_t, 6> args{};
  std::string_view action;  // "killed", "errno EPERM", ...
};

// What grant_created says of a grant besides its id, holder and rights.
// `name`: the policy grant or channel name ("" for a returned grant);
// `policy_grant` and `constraints`: the policy grant whose authority it
// carries and that grant's constraints, rate, byte budget and
// transferability (empty for the bootstrap port and channel ends).
struct GrantDetail {
  std::string_view name;
  std::string_view policy_grant;
  const AuditFields* constraints = nullptr;
  // A channel end: "server_end" or "direct_end" ("" for a served port, a
  // mediated channel's client end included), and the mediated channel's id
  // (0: none), so a log alone tells which grants are one channel's ends
  // (capsa graph --log).
  std::string_view kind;
  std::uint64_t channel = 0;
  // An associated object ("kind":"object"): the grant whose port serves it
  // and its id there.
  std::uint64_t port_grant = 0;
  std::uint64_t object = 0;
};

class AuditLog {
 public:
  struct Options {
    // fdatasync() after every line: survives power loss, costs a disk flush
    // per event. Off by default (a supervisor crash already loses nothing).
    bool sync_each_line = false;
    // Identical refusals from one worker written in full per second before
    // the rest are counted in one summary line a second (coalescer.h).
    // 0: every refusal is written.
    std::uint32_t coalesce_after = 10;
    // The coalescing windows' clock; tests inject one. Default steady_clock.
    std::function<std::chrono::steady_clock::time_point()> clock;
    // Size cap of the file, with rotation (audit_file.h): 0 for none, else
    // at least kMinAuditMaxBytes. `keep` rotated files (PATH.1 newest).
    std::uint64_t max_bytes = kDefaultAuditMaxBytes;
    std::uint32_t keep = kDefaultAuditKeep;
    // The run id on every line; "" (the default): 16 random hex digits.
    // Tests set one; a caller that does must keep it unique per run.
    std::string run_id;
  };

  // Opens (creating if needed, mode 0600) and writes the "audit_opened" line.
  static Result<std::unique_ptr<AuditLog>> open(const std::string& path, Options options);
  static Result<std::unique_ptr<AuditLog>> open(const std::string& path) { return open(path, Options{}); }

  // The generic event: `type` plus fields. Returns the line's seq.
  Result<std::uint64_t> event(std::string_view type, const AuditFields& fields);

  // A refusal that may be coalesced (coalescer.h): `fields` are the whole
  // line's, `identity` what makes two of them the same (besides `worker`
  // and `type`). Returns the line's seq, or 0 when it was only counted.
  Result<std::uint64_t> refusal(std::string_view type, std::string_view worker,
                                const AuditFields& identity, const AuditFields& fields);
  // Writes the summaries of coalescing windows older than a second. The
  // supervisor calls it once a second, so a flood that stopped is reported.
  Result<void> flush_due();
  // Closes every coalescing window of `worker` now (before its exit line).
  Result<void> flush_coalesced(std::string_view worker);

  // Typed events (docs/SUPERVISOR.md, "Audit log"). call_denied,
  // seccomp_violation and a bad_message answered "reply_error" are refusals.
  Result<std::uint64_t> worker_started(std::string_view worker, pid_t pid, std::string_view program);
  Result<std::uint64_t> worker_exited(std::string_view worker, pid_t pid, const WorkerExit& exit);
  Result<std::uint64_t> grant_created(std::uint64_t grant, std::string_view worker,
                                      std::string_view interface, GrantOrigin origin,
                                      std::span<const std::string> rights,
                                      std::uint64_t parent_grant = 0,
                                      const GrantDetail& detail = GrantDetail{});
  Result<std::uint64_t> port_transferred(std::uint64_t grant, std::string_view from_worker,
                                         std::string_view to_worker);
  Result<std::uint64_t> call_denied(std::string_view worker, std::uint64_t grant,
                                    std::string_view interface, std::string_view method,
                                    std::string_view reason);
  Result<std::uint64_t> bad_message(std::string_view worker, std::uint64_t grant,
                                    std::string_view reason, std::string_view action);
  Result<std::uint64_t> seccomp_violation(const SeccompViolation& v);
  Result<std::uint64_t> revoked(std::uint64_t grant, std::string_view holder, std::string_view reason);
  Result<std::uint64_t> released(std::uint64_t grant, std::string_view holder, std::string_view reason);

  // Last seq written (0 if none).
  std::uint64_t last_seq() const;
  // This run's id, as on every line.
  const std::string& run_id() const noexcept { return options_.run_id; }

  // Writes the summaries of every coalescing window still open.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

 private:
  AuditLog(AuditFile file, Options options)
      : file_(std::move(file)), options_(std::move(options)), coalescer_(options_.coalesce_after) {}
  // `"run":"<id>",` escaped once, for make_line.
  std::string run_field_;
  std::string make_line(std::uint64_t seq, std::string_view type, std::string_view fields,
                        const timespec& now) const;
  Result<void> write_line(const std::string& line);
  Result<void> rotate_for(std::size_t bytes, const timespec& now);
  // The line for `type` and `fields` at `now`, written: mu_ held.
  Result<std::uint64_t> write_event(std::string_view type, std::string_view fields,
                                    const timespec& now);
  Result<void> write_summaries(std::vector<Coalescer::Summary>& due, const timespec& now);
  std::chrono::steady_clock::time_point steady_now() const;

  AuditFile file_;
  bool torn_ = false;  // the last line was cut short by a failed write
  Options options_;
  mutable std::mutex mu_;
  std::uint64_t seq_ = 0;
  Coalescer coalescer_;
};

// "2024-05-01T12:00:00.123Z" for a CLOCK_REALTIME time.
std::string rfc3339_utc_ms(const timespec& ts);

}  // namespace capsa::supervisor
