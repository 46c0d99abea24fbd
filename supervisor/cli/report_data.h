// capsa — what `capsa report` shows, gathered from an audit log (report.h):
// the runs the log holds, one run's timeline, its workers, and each
// worker's denials and violations counted by kind.
//
// Read through audit_reader.h (the one parser), in two passes: the first
// lists the runs (to pick the last one, or resolve --run's prefix), the
// second gathers the chosen run.
//
// Bounded whatever the log: the timeline keeps its first and last
// kTimelineHead/kTimelineTail rows (a flood in the middle does not hide how
// the run ended) and says how many were left out; each shown string is cut
// (kMaxShownBytes); the breakdown of refusals keeps at most
// kMaxBreakdownRows distinct (worker, kind, what) rows, folding the rest
// into one "(others)" row per worker and kind. Counts are never bounded:
// every line of the run is counted, and a coalesced line adds its `count`
// to the event it summarises, so totals equal what the supervisor refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/error.h"
#include "supervisor/cli/audit_reader.h"

namespace capsa::cli {

inline constexpr std::size_t kTimelineHead = 2500;
inline constexpr std::size_t kTimelineTail = 2500;
inline constexpr std::size_t kMaxShownBytes = 240;
inline constexpr std::size_t kMaxBreakdownRows = 2000;

// What a timeline row is about (its colour and filterable class on the page).
enum class EventCategory : std::uint8_t {
  kRun,         // audit_opened, shutdown, audit_rotated, ...
  kWorker,      // worker_started, worker_exited, worker_killed, ...
  kGrant,       // grant_created, channel_created
  kTransfer,    // port_transferred, handle_passed
  kDelegation,  // port_delegated
  kRevocation,  // revoked
  kRelease,     // released
  kDenial,      // call_denied, transfer_denied, grant_refused, control_refused
  kBadMessage,  // bad_message
  kViolation,   // seccomp_violation, violation_flood
  kOther,
};
std::string_view category_name(EventCategory c);
// The category of `event` (for a coalesced line, pass its `of`).
EventCategory category_of(std::string_view event);

// The refusals counted per worker, in the table's column order.
inline constexpr std::string_view kRefusalKinds[] = {
    "call_denied", "transfer_denied", "grant_refused", "bad_message", "seccomp_violation",
    "violation_flood"};
// True for the events above.
bool is_refusal_kind(std::string_view event);

struct RunInfo {
  std::string id;  // "" for lines written before run ids existed
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
  std::uint64_t lines = 0;
};

struct TimelineRow {
  std::int64_t ts_ms = 0;
  std::uint64_t seq = 0;
  std::string event;    // as written: a coalesced line is "coalesced"
  std::string of;       // a coalesced line's event, else ""
  std::uint64_t count = 1;  // a coalesced line's count, else 1
  EventCategory category = EventCategory::kOther;
  std::string workers;  // AuditRecord::workers(), ", "-joined, cut
  std::string details;  // the other fields, "key=value ...", cut
};

struct ReportWorker {
  std::string name;
  std::string pid;          // from worker_started, "" if not seen
  std::int64_t started_ms = 0;  // 0: not seen
  std::int64_t ended_ms = 0;    // 0: no worker_exited in the run
  std::string status;       // worker_exited's status (+ exit code or signal)
  // worker_exited's own counters, as the supervisor kept them (exact, not
  // bounded by coalescing); -1 when the line does not carry one.
  std::int64_t calls = -1;
  std::int64_t denials = -1;
  std::int64_t violations = -1;
  // Refusals counted from the log, by kind (kRefusalKinds).
  std::map<std::string, std::uint64_t, std::less<>> refusals;
};

// One row of the refusal breakdown: what was refused, how often.
struct RefusalRow {
  std::string worker;
  std::string kind;  // one of kRefusalKinds
  std::string what;  // a denial's interface.method and reason, a violation's syscall, ...
  std::uint64_t count = 0;
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
};

struct ReportData {
  std::string log;                  // the path given
  std::vector<std::string> files;   // read, oldest first
  ReadStats stats;                  // over the whole log (first pass)
  std::vector<RunInfo> runs;        // every run in the log, in order of first line
  std::string run;                  // the run reported
  bool run_defaulted = false;       // true: no --run, the last one was taken
  RunInfo run_info;
  std::vector<ReportWorker> workers;  // in order of first appearance
  std::vector<TimelineRow> timeline;  // head rows, then tail rows
  std::size_t timeline_head = 0;      // how many of `timeline` are head rows
  std::uint64_t timeline_total = 0;   // lines of the run (all rows, shown or not)
  std::uint64_t timeline_omitted = 0; // rows between head and tail not shown
  std::map<std::string, std::uint64_t, std::less<>> events;  // lines per event
  std::vector<RefusalRow> breakdown;  // by worker, kind, then count descending
  bool breakdown_folded = false;      // some rows went into "(others)"

  const ReportWorker* worker(std::string_view name) const;
};

// Reads `files` (audit_files_of order; `log` is the path named) and
// gathers run `run`: exactly its id or a unique prefix of one; "" = the
// last run to begin in the files. kNotFound when the files hold no record,
// no such run, or the prefix names several (all listed).
Result<ReportData> gather_report(const std::string& log, const std::vector<std::string>& files,
                                 std::string_view run);

// `s` cut to at most `max` bytes at a UTF-8 character boundary, with "..."
// appended when cut.
std::string cut_utf8(std::string_view s, std::size_t max);

}  // namespace capsa::cli
