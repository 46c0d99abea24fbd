// capsa — reading audit logs back: the one parser behind `capsa log`,
// `capsa graph --log` and `capsa report` (docs/AUDITING.md).
//
// The log is JSON Lines written by supervisor/audit/audit_log.h: every line
// an object with ts (RFC 3339 UTC, milliseconds), run, seq and event. A
// file rotated at its size cap continues in PATH.1 ... PATH.keep (PATH.1 the
// newest); audit_files_of() lists them oldest first so one pass reads a
// run's lines in the order they were written.
//
// The log may have been written by a supervisor that crashed mid-line (a
// full disk) or by an older capsa without `run`: such lines are not fatal.
// A line that is not a JSON object with a valid `ts` and `event` is counted
// in ReadStats::bad (with the first one's file:line) and skipped, so one
// torn line never hides the rest of a log. A line is at most
// kMaxAuditLineBytes; longer ones are skipped as bad without being held
// whole in memory.
//
// Memory: records are handed to a callback one at a time, never collected
// here; a 64 MiB log is read in constant memory (plus what the caller keeps).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa::cli {

// Longer lines are not ours (the writer cuts every string at 1 KiB).
inline constexpr std::size_t kMaxAuditLineBytes = 1 << 20;

struct AuditRecord {
  nlohmann::json line;  // the whole object
  std::string text;     // the line as written, without its newline
  std::int64_t ts_ms = 0;  // `ts` as Unix time in milliseconds
  std::string run;         // "" for a line written before run ids existed
  std::uint64_t seq = 0;
  std::string event;
  std::string file;        // where it was read
  std::uint64_t line_no = 0;

  // A string field, "" when absent or not a string.
  std::string str(std::string_view key) const;
  // An unsigned field, 0 when absent or not one.
  std::uint64_t unum(std::string_view key) const;
  // Every worker the line is about: worker, holder, from, to (deduplicated,
  // in that order; "supervisor" in from/to is not a worker and is left out).
  std::vector<std::string> workers() const;
  // Every grant id the line names: grant, parent_grant, parent,
  // client_grant, server_grant (0s left out).
  std::vector<std::uint64_t> grants() const;
};

// One line parsed; nullopt when it is not an audit record (see above).
std::optional<AuditRecord> parse_audit_line(std::string_view text);

// "2024-05-01T12:00:00.123Z" (or without the fraction, or with an offset
// such as +02:00) as Unix milliseconds; nullopt when it is not one.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);

// A --since/--until argument: RFC 3339, or a duration before `now_ms`:
// a number with s, m, h or d ("90s", "15m", "1h", "7d").
Result<std::int64_t> parse_time_arg(std::string_view text, std::int64_t now_ms);

// PATH's rotated files that exist, oldest first (PATH.keep ... PATH.1),
// then PATH itself when it exists. A path that names no file gives
// nothing; the caller says so.
std::vector<std::string> audit_files_of(const std::string& path);

// Which records a query keeps. Empty fields keep everything.
struct AuditFilter {
  std::optional<std::int64_t> since_ms;  // ts >= since
  std::optional<std::int64_t> until_ms;  // ts < until
  std::vector<std::string> workers;      // any of AuditRecord::workers()
  std::vector<std::string> events;       // event, or a coalesced line's `of`
  std::optional<std::uint64_t> grant;    // any of AuditRecord::grants()
  std::string run;                       // exactly, or a unique prefix of one
  bool matches(const AuditRecord& r) const;
};

struct ReadStats {
  std::uint64_t lines = 0;    // read, bad ones included
  std::uint64_t records = 0;  // parsed (before filtering)
  std::uint64_t bad = 0;
  std::string first_bad;      // "FILE:LINE" of the first bad line
};

// Reads `files` in order, calling `fn` with each parsed record; `fn`
// returns false to stop. An unreadable file is an error (nothing read
// after it); bad lines are counted in `stats`.
Result<void> read_audit_files(const std::vector<std::string>& files,
                              const std::function<bool(AuditRecord&)>& fn, ReadStats& stats);

// Follows one file as it grows: each call to poll() reads what was
// appended since, hands out complete lines and keeps a partial last line
// for the next call. When the file was rotated (PATH now names another
// inode), the rest of the old file is read first, then the new one from
// its start, so no line is lost across a rotation.
class AuditFollower {
 public:
  // Starts at the end of `path` (what is there was read already) or, with
  // `from_start`, at its beginning.
  static Result<AuditFollower> open(const std::string& path, bool from_start);
  Result<void> poll(const std::function<bool(AuditRecord&)>& fn, ReadStats& stats);
  // The inode of the file being read (to tell it from the rotated files).
  std::uint64_t inode() const { return inode_; }

 private:
  Result<void> drain(const std::function<bool(AuditRecord&)>& fn, ReadStats& stats);
  std::string path_;
  Fd fd_;
  std::uint64_t inode_ = 0;
  std::uint64_t line_no_ = 0;
  std::string partial_;
};

}  // namespace capsa::cli
