#include "supervisor/audit/audit_log.h"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "capabilities/sys.h"

namespace capsa::supervisor {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_u_escape(std::string& out, unsigned code) {
  out += "\\u";
  out += kHex[(code >> 12) & 0xf];
  out += kHex[(code >> 8) & 0xf];
  out += kHex[(code >> 4) & 0xf];
  out += kHex[code & 0xf];
}

bool is_cont(unsigned char c) { return (c & 0xc0) == 0x80; }

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not one
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  std::size_t left = s.size() - i;
  if (c >= 0xc2 && c <= 0xdf) return left >= 2 && is_cont(at(i + 1)) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (left < 3 || !is_cont(at(i + 1)) || !is_cont(at(i + 2))) return 0;
    if (c == 0xe0 && at(i + 1) < 0xa0) return 0;   // overlong
    if (c == 0xed && at(i + 1) >= 0xa0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (left < 4 || !is_cont(at(i + 1)) || !is_cont(at(i + 2)) || !is_cont(at(i + 3))) return 0;
    if (c == 0xf0 && at(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && at(i + 1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s, std::size_t max_bytes) {
  bool truncated = s.size() > max_bytes;
  if (truncated) s = s.substr(0, max_bytes);
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          // Other control characters, and DEL, which terminals act on.
          if (c < 0x20 || c == 0x7f) append_u_escape(out, c);
          else out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\\ufffd";  // one replacement per invalid byte
      ++i;
      continue;
    }
    // U+2028 / U+2029 are valid JSON but end lines in JavaScript and some
    // log viewers; escaping them keeps "one event per line" true everywhere.
    if (n == 3 && static_cast<unsigned char>(s[i]) == 0xe2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(s[i + 2]) == 0xa8 || static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
      append_u_escape(out, static_cast<unsigned char>(s[i + 2]) == 0xa8 ? 0x2028 : 0x2029);
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  if (truncated) out += "...[truncated]";
  out += '"';
}

void AuditFields::key(std::string_view k) {
  if (!json_.empty()) json_ += ',';
  append_json_string(json_, k);
  json_ += ':';
}

AuditFields& AuditFields::str(std::string_view k, std::string_view value) {
  key(k);
  append_json_string(json_, value);
  return *this;
}

AuditFields& AuditFields::num(std::string_view k, std::int64_t value) {
  key(k);
  json_ += std::to_string(value);
  return *this;
}

AuditFields& AuditFields::unum(std::string_view k, std::uint64_t value) {
  key(k);
  json_ += std::to_string(value);
  return *this;
}

AuditFields& AuditFields::append(const AuditFields& more) {
  if (!more.json_.empty()) {
    if (!json_.empty()) json_ += ',';
    json_ += more.json_;
  }
  return *this;
}

AuditFields& AuditFields::boolean(std::string_view k, bool value) {
  key(k);
  json_ += value ? "true" : "false";
  return *this;
}

AuditFields& AuditFields::strs(std::string_view k, std::span<const std::string> values) {
  key(k);
  json_ += '[';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) json_ += ',';
    append_json_string(json_, values[i]);
  }
  json_ += ']';
  return *this;
}

AuditFields& AuditFields::object(std::string_view k, const AuditFields& members) {
  key(k);
  json_ += '{';
  json_ += members.json_;
  json_ += '}';
  return *this;
}

std::string_view grant_origin_name(GrantOrigin origin) noexcept {
  switch (origin) {
    case GrantOrigin::kPolicy: return "policy";
    case GrantOrigin::kReturned: return "returned";
    case GrantOrigin::kAttenuated: return "attenuated";
    case GrantOrigin::kDelegated: return "delegated";
  }
  return "unknown";
}

std::string rfc3339_utc_ms(const timespec& ts) {
  std::tm tm{};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[128];  // room for any int fields: the compiler checks the worst case
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1'000'000);
  return buf;
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path, Options options) {
  CAPSA_ASSIGN_OR_RETURN(AuditFile file, AuditFile::open(path, options.max_bytes, options.keep));
  if (options.run_id.empty()) {
    // 64 random bits: two runs sharing a file collide with probability
    // about n^2 / 2^65. getrandom without GRND_NONBLOCK waits only until the
    // kernel's pool is first initialised, long past boot here.
    std::uint64_t r = 0;
    if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
      return make_error(Errc::kFailed, std::string("audit log: getrandom: ") + std::strerror(errno));
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(r));
    options.run_id = hex;
  }
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(file), std::move(options)));
  log->run_field_ = "\"run\":";
  append_json_string(log->run_field_, log->options_.run_id);
  log->run_field_ += ',';
  CAPSA_TRY(log->event("audit_opened", AuditFields().num("pid", ::getpid())));
  return log;
}

Result<void> AuditLog::write_line(const std::string& line) {
  // A line cut short by an earlier failure (disk full) is ended first, so
  // that this event gets a line of its own and stays parseable.
  if (torn_) {
    bool torn = false;
    if (!file_.append("\n", torn)) return make_error(Errc::kFailed, "audit log: cannot end a torn line");
    torn_ = false;
  }
  CAPSA_TRY(file_.append(line, torn_));
  if (options_.sync_each_line) CAPSA_TRY(file_.sync());
  return {};
}

std::string AuditLog::make_line(std::uint64_t seq, std::string_view type, std::string_view fields,
                                const timespec& now) const {
  std::string line = "{\"ts\":\"" + rfc3339_utc_ms(now) + "\"," + run_field_ + "\"seq\":" +
                     std::to_string(seq) + ",\"event\":";
  append_json_string(line, type);
  if (!fields.empty()) {
    line += ',';
    line += fields;
  }
  line += "}\n";
  return line;
}

// Before a line that would take the file past its cap: the next file
// starts with "audit_rotated" (seq continues), which names the file the
// previous lines are now in. A failed rotation is written where the lines
// keep going, once per max_bytes (audit_file.h).
Result<void> AuditLog::rotate_for(std::size_t bytes, const timespec& now) {
  if (!file_.full_for(bytes)) return {};
  if (torn_) CAPSA_TRY(write_line(""));  // a torn line ends in its own file
  AuditFields f;
  if (auto rotated = file_.rotate(); !rotated) {
    f.str("reason", rotated.error().message).unum("max_bytes", file_.max_bytes());
    std::string line = make_line(seq_ + 1, "audit_rotate_failed", f.json(), now);
    CAPSA_TRY(write_line(line));
    ++seq_;
    return {};
  }
  f.str("previous", file_.path() + ".1").unum("max_bytes", file_.max_bytes()).unum("keep", file_.keep());
  std::string line = make_line(seq_ + 1, "audit_rotated", f.json(), now);
  CAPSA_TRY(write_line(line));
  ++seq_;
  return {};
}

Result<std::uint64_t> AuditLog::write_event(std::string_view type, std::string_view fields,
                                            const timespec& now) {
  std::string line = make_line(seq_ + 1, type, fields, now);
  if (file_.full_for(line.size())) {
    CAPSA_TRY(rotate_for(line.size(), now));
    line = make_line(seq_ + 1, type, fields, now);  // its seq moved past the rotation's line
  }
  CAPSA_TRY(write_line(line));
  return ++seq_;
}

// The time is read under the lock so that ts, like seq, never goes
// backwards from one line to the next (unless the wall clock is set back).
Result<std::uint64_t> AuditLog::event(std::string_view type, const AuditFields& fields) {
  std::lock_guard lock(mu_);
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return write_event(type, fields.json(), now);
}

std::chrono::steady_clock::time_point AuditLog::steady_now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

// Every summary is attempted; the first error is returned.
Result<void> AuditLog::write_summaries(std::vector<Coalescer::Summary>& due, const timespec& now) {
  Result<void> result;
  for (const Coalescer::Summary& s : due) {
    AuditFields f;
    f.str("of", s.type).str("worker", s.worker);
    std::string fields = f.json();
    fields += s.identity.empty() ? ",\"various\":true" : "," + s.identity;
    fields += ",";
    fields += AuditFields().unum("count", s.count).str("first", s.first).str("last", s.last).json();
    if (auto w = write_event("coalesced", fields, now); !w && result) result = std::unexpected(w.error());
  }
  due.clear();
  return result;
}

Result<std::uint64_t> AuditLog::refusal(std::string_view type, std::string_view worker,
                                        const AuditFields& identity, const AuditFields& fields) {
  std::lock_guard lock(mu_);
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  std::vector<Coalescer::Summary> due;
  const bool write = coalescer_.admit(worker, type, identity.json(), steady_now(), rfc3339_utc_ms(now), due);
  CAPSA_TRY(write_summaries(due, now));
  if (!write) return 0;
  return write_event(type, fields.json(), now);
}

Result<void> AuditLog::flush_due() {
  std::lock_guard lock(mu_);
  std::vector<Coalescer::Summary> due;
  coalescer_.tick(steady_now(), due);
  if (due.empty()) return {};
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return write_summaries(due, now);
}

Result<void> AuditLog::flush_coalesced(std::string_view worker) {
  std::lock_guard lock(mu_);
  std::vector<Coalescer::Summary> due;
  coalescer_.flush(worker, due);
  if (due.empty()) return {};
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return write_summaries(due, now);
}

AuditLog::~AuditLog() {
  // Counted refusals are not lost when the supervisor stops: "" is every worker.
  std::vector<Coalescer::Summary> due;
  coalescer_.flush("", due);
  if (due.empty()) return;
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  (void)write_summaries(due, now);
}

std::uint64_t AuditLog::last_seq() const {
  std::lock_guard lock(mu_);
  return seq_;
}

Result<std::uint64_t> AuditLog::worker_started(std::string_view worker, pid_t pid, std::string_view program) {
  return event("worker_started", AuditFields().str("worker", worker).num("pid", pid).str("program", program));
}

Result<std::uint64_t> AuditLog::worker_exited(std::string_view worker, pid_t pid, const WorkerExit& exit) {
  AuditFields f;
  f.str("worker", worker).num("pid", pid);
  if (exit.signal != 0) f.num("signal", exit.signal).boolean("core_dumped", exit.core_dumped);
  else f.num("exit_code", exit.exit_code);
  f.unum("user_us", exit.user_us).unum("system_us", exit.system_us).unum("max_rss_kib", exit.max_rss_kib);
  return event("worker_exited", f);
}

Result<std::uint64_t> AuditLog::grant_created(std::uint64_t grant, std::string_view worker,
                                              std::string_view interface, GrantOrigin origin,
                                              std::span<const std::string> rights, std::uint64_t parent_grant,
                                              const GrantDetail& detail) {
  AuditFields f;
  f.unum("grant", grant).str("worker", worker).str("interface", interface);
  f.str("origin", grant_origin_name(origin)).strs("rights", rights);
  if (parent_grant != 0) f.unum("parent_grant", parent_grant);
  if (!detail.name.empty()) f.str("name", detail.name);
  if (!detail.policy_grant.empty()) f.str("policy_grant", detail.policy_grant);
  if (detail.constraints != nullptr) f.object("constraints", *detail.constraints);
  if (!detail.kind.empty()) f.str("kind", detail.kind);
  if (detail.channel != 0) f.unum("channel", detail.channel);
  if (detail.object != 0) f.unum("port_grant", detail.port_grant).unum("object", detail.object);
  return event("grant_created", f);
}

Result<std::uint64_t> AuditLog::port_transferred(std::uint64_t grant, std::string_view from_worker,
                                                 std::string_view to_worker) {
  return event("port_transferred", AuditFields().unum("grant", grant).str("from", from_worker).str("to", to_worker));
}

Result<std::uint64_t> AuditLog::call_denied(std::string_view worker, std::uint64_t grant,
                                            std::string_view interface, std::string_view method,
                                            std::string_view reason) {
  AuditFields id;
  id.unum("grant", grant).str("interface", interface).str("method", method).str("reason", reason);
  AuditFields f;
  f.str("worker", worker);
  return refusal("call_denied", worker, id, f.append(id));
}

Result<std::uint64_t> AuditLog::bad_message(std::string_view worker, std::uint64_t grant, std::string_view reason,
                                            std::string_view action) {
  AuditFields id;
  id.unum("grant", grant).str("reason", reason).str("action", action);
  AuditFields f;
  f.str("worker", worker).append(id);
  // Closing the port or killing the worker changes the security state: only
  // a bad message that was merely answered is a refusal.
  if (action != "reply_error") return event("bad_message", f);
  return refusal("bad_message", worker, id, f);
}

Result<std::uint64_t> AuditLog::seccomp_violation(const SeccompViolation& v) {
  AuditFields f;
  f.str("worker", v.worker).num("pid", v.pid).str("syscall", v.syscall).num("syscall_nr", v.syscall_nr);
  // Arguments are raw register values; hex strings keep 64-bit values exact
  // for readers whose JSON numbers are doubles.
  std::string args[6];
  for (std::size_t i = 0; i < 6; ++i) {
    char buf[24];
    std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v.args[i]));
    args[i] = buf;
  }
  f.strs("args", args).str("action", v.action);
  // The same syscall refused the same way is the same violation, whatever
  // its arguments and thread.
  AuditFields id;
  id.str("syscall", v.syscall).num("syscall_nr", v.syscall_nr).str("action", v.action);
  return refusal("seccomp_violation", v.worker, id, f);
}

Result<std::uint64_t> AuditLog::revoked(std::uint64_t grant, std::string_view holder, std::string_view reason) {
  return event("revoked", AuditFields().unum("grant", grant).str("holder", holder).str("reason", reason));
}

Result<std::uint64_t> AuditLog::released(std::uint64_t grant, std::string_view holder, std::string_view reason) {
  return event("released", AuditFields().unum("grant", grant).str("holder", holder).str("reason", reason));
}

}  // namespace capsa::supervisor
