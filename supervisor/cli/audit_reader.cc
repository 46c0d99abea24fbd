// capsa — reading audit logs back (audit_reader.h).
#include "supervisor/cli/audit_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>

namespace capsa::cli {
namespace {

// Rotation keeps at most 1000 files (audit_file.h); past a gap we stop.
constexpr int kMaxRotated = 1000;

bool parse_int(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

std::uint64_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

// Splits `chunk` (appended to `partial`) into lines; a line longer than
// kMaxAuditLineBytes is dropped as bad (`skipping` until its end).
class LineSplitter {
 public:
  LineSplitter(std::string& partial, std::uint64_t& line_no, const std::string& file)
      : partial_(partial), line_no_(line_no), file_(file) {}

  // false when `fn` asked to stop.
  bool feed(std::string_view chunk, const std::function<bool(AuditRecord&)>& fn, ReadStats& stats) {
    while (!chunk.empty()) {
      const std::size_t nl = chunk.find('\n');
      const std::string_view piece = chunk.substr(0, nl);
      if (!skipping_) {
        if (partial_.size() + piece.size() > kMaxAuditLineBytes) {
          skipping_ = true;
          partial_.clear();
        } else {
          partial_.append(piece);
        }
      }
      if (nl == std::string_view::npos) return true;
      chunk.remove_prefix(nl + 1);
      if (!line(fn, stats)) return false;
    }
    return true;
  }

 private:
  bool line(const std::function<bool(AuditRecord&)>& fn, ReadStats& stats) {
    ++line_no_;
    ++stats.lines;
    std::optional<AuditRecord> r;
    if (!skipping_ && !partial_.empty()) r = parse_audit_line(partial_);
    const bool blank = !skipping_ && partial_.empty();
    skipping_ = false;
    partial_.clear();
    if (blank) return true;  // an empty line (after a torn one) is nothing
    if (!r) {
      if (stats.bad++ == 0) stats.first_bad = file_ + ":" + std::to_string(line_no_);
      return true;
    }
    ++stats.records;
    r->file = file_;
    r->line_no = line_no_;
    return fn(*r);
  }

  std::string& partial_;
  std::uint64_t& line_no_;
  const std::string& file_;
  bool skipping_ = false;
};

}  // namespace

std::string AuditRecord::str(std::string_view key) const {
  auto it = line.find(key);
  return it != line.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::uint64_t AuditRecord::unum(std::string_view key) const {
  auto it = line.find(key);
  return it != line.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::vector<std::string> AuditRecord::workers() const {
  std::vector<std::string> out;
  for (const std::string_view key : {"worker", "holder", "from", "to"}) {
    std::string w = str(key);
    const bool endpoint = key == "from" || key == "to";
    if (w.empty() || (endpoint && w == "supervisor")) continue;
    if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(std::move(w));
  }
  return out;
}

std::vector<std::uint64_t> AuditRecord::grants() const {
  std::vector<std::uint64_t> out;
  for (const char* key : {"grant", "parent_grant", "parent", "client_grant", "server_grant"}) {
    if (std::uint64_t g = unum(key); g != 0) out.push_back(g);
  }
  return out;
}

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') ||
      t[13] != ':' || t[16] != ':') {
    return std::nullopt;
  }
  int year, mon, day, hour, min, sec;
  if (!parse_int(t.substr(0, 4), year) || !parse_int(t.substr(5, 2), mon) ||
      !parse_int(t.substr(8, 2), day) || !parse_int(t.substr(11, 2), hour) ||
      !parse_int(t.substr(14, 2), min) || !parse_int(t.substr(17, 2), sec)) {
    return std::nullopt;
  }
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) return std::nullopt;
  std::size_t at = 19;
  std::int64_t ms = 0;
  if (at < t.size() && t[at] == '.') {
    ++at;
    int digits = 0;
    while (at < t.size() && t[at] >= '0' && t[at] <= '9') {
      if (digits < 3) ms = ms * 10 + (t[at] - '0');
      ++digits;
      ++at;
    }
    if (digits == 0) return std::nullopt;
    for (; digits < 3; ++digits) ms *= 10;
  }
  std::int64_t offset_s = 0;
  if (at < t.size() && (t[at] == 'Z' || t[at] == 'z')) {
    ++at;
  } else if (at + 6 == t.size() && (t[at] == '+' || t[at] == '-') && t[at + 3] == ':') {
    int oh, om;
    if (!parse_int(t.substr(at + 1, 2), oh) || !parse_int(t.substr(at + 4, 2), om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = (oh * 3600 + om * 60) * (t[at] == '+' ? 1 : -1);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != t.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::time_t secs = ::timegm(&tm);
  return (static_cast<std::int64_t>(secs) - offset_s) * 1000 + ms;
}

Result<std::int64_t> parse_time_arg(std::string_view text, std::int64_t now_ms) {
  if (auto abs = parse_rfc3339_ms(text)) return *abs;
  if (text.size() >= 2) {
    std::int64_t unit = 0;
    switch (text.back()) {
      case 's': unit = 1000; break;
      case 'm': unit = 60'000; break;
      case 'h': unit = 3'600'000; break;
      case 'd': unit = 86'400'000; break;
      default: break;
    }
    std::int64_t n = 0;
    const std::string_view digits = text.substr(0, text.size() - 1);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (unit != 0 && ec == std::errc{} && p == digits.data() + digits.size() && n >= 0 &&
        n <= 100LL * 365 * 86'400'000 / unit) {
      return now_ms - n * unit;
    }
  }
  return make_error(Errc::kInvalidArgument,
                    "\"" + std::string(text) +
                        "\" is not a time: give RFC 3339 (2026-11-29T17:00:00Z) or a duration "
                        "before now (90s, 15m, 1h, 7d)");
}

std::optional<AuditRecord> parse_audit_line(std::string_view text) {
  AuditRecord r;
  r.line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!r.line.is_object()) return std::nullopt;
  r.event = r.str("event");
  const auto ts = parse_rfc3339_ms(r.str("ts"));
  if (r.event.empty() || !ts) return std::nullopt;
  r.ts_ms = *ts;
  r.run = r.str("run");
  r.seq = r.unum("seq");
  r.text = std::string(text);
  return r;
}

std::vector<std::string> audit_files_of(const std::string& path) {
  std::vector<std::string> out;
  struct stat st {};
  int newest_gap = 0;
  // PATH.1 .. PATH.n as long as they exist (rotation renames in sequence).
  for (int i = 1; i <= kMaxRotated; ++i) {
    if (::stat((path + "." + std::to_string(i)).c_str(), &st) != 0) break;
    newest_gap = i;
  }
  for (int i = newest_gap; i >= 1; --i) out.push_back(path + "." + std::to_string(i));
  if (::stat(path.c_str(), &st) == 0) out.push_back(path);
  return out;
}

bool AuditFilter::matches(const AuditRecord& r) const {
  if (since_ms && r.ts_ms < *since_ms) return false;
  if (until_ms && r.ts_ms >= *until_ms) return false;
  if (!run.empty() && !r.run.starts_with(run)) return false;
  if (!events.empty()) {
    const std::string of = r.event == "coalesced" ? r.str("of") : std::string();
    if (std::find(events.begin(), events.end(), r.event) == events.end() &&
        (of.empty() || std::find(events.begin(), events.end(), of) == events.end())) {
      return false;
    }
  }
  if (!workers.empty()) {
    const auto ws = r.workers();
    if (std::none_of(ws.begin(), ws.end(), [&](const std::string& w) {
          return std::find(workers.begin(), workers.end(), w) != workers.end();
        })) {
      return false;
    }
  }
  if (grant) {
    const auto gs = r.grants();
    if (std::find(gs.begin(), gs.end(), *grant) == gs.end()) return false;
  }
  return true;
}

Result<void> read_audit_files(const std::vector<std::string>& files,
                              const std::function<bool(AuditRecord&)>& fn, ReadStats& stats) {
  std::vector<char> buf(1 << 16);
  for (const std::string& file : files) {
    Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) return make_error(Errc::kNotFound, file + ": " + std::strerror(errno));
    std::string partial;
    std::uint64_t line_no = 0;
    LineSplitter split(partial, line_no, file);
    for (;;) {
      const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return make_error(Errc::kFailed, file + ": " + std::strerror(errno));
      if (n == 0) break;
      if (!split.feed({buf.data(), static_cast<std::size_t>(n)}, fn, stats)) return {};
    }
    // A last line without its newline: complete as far as the file goes.
    if (!partial.empty() && !split.feed("\n", fn, stats)) return {};
  }
  return {};
}

Result<AuditFollower> AuditFollower::open(const std::string& path, bool from_start) {
  AuditFollower f;
  f.path_ = path;
  f.fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!f.fd_.valid()) return make_error(Errc::kNotFound, path + ": " + std::strerror(errno));
  f.inode_ = inode_of(f.fd_.get());
  if (!from_start && ::lseek(f.fd_.get(), 0, SEEK_END) < 0) {
    return make_error(Errc::kFailed, path + ": " + std::strerror(errno));
  }
  return f;
}

Result<void> AuditFollower::drain(const std::function<bool(AuditRecord&)>& fn, ReadStats& stats) {
  char buf[1 << 16];
  LineSplitter split(partial_, line_no_, path_);
  for (;;) {
    const ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::kFailed, path_ + ": " + std::strerror(errno));
    if (n == 0) return {};
    if (!split.feed({buf, static_cast<std::size_t>(n)}, fn, stats)) return {};
  }
}

Result<void> AuditFollower::poll(const std::function<bool(AuditRecord&)>& fn, ReadStats& stats) {
  CAPSA_TRY(drain(fn, stats));
  // Rotated: PATH is a new file. The old one is complete (rotation happens
  // between lines), so what is left of it was just read; start the new one.
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_ino) == inode_) return {};
  Fd next(::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!next.valid()) return {};  // between the rename and the create: next poll
  // Lines appended to the old file after the drain above and before the
  // rename would be lost if we switched now: read it to its (final) end.
  CAPSA_TRY(drain(fn, stats));
  fd_ = std::move(next);
  inode_ = inode_of(fd_.get());
  partial_.clear();
  line_no_ = 0;
  return drain(fn, stats);
}

}  // namespace capsa::cli
