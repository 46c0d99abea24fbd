// capsa — the `capsa log` subcommand: query audit logs after the fact.
//
//   capsa log [--since T] [--until T] [--worker W]... [--event E]...
//             [--grant N] [--run R] [-f] [--json | --summary] [FILE...]
//
// FILE defaults to the log `capsa run` writes when --audit-log is not given
// (audit_path.h); each FILE is read with its rotated PATH.N files, oldest
// first (audit_reader.h, the one parser of audit logs). Filters combine
// with AND; a repeated --worker or --event is an OR within that filter.
// --since/--until take RFC 3339 or a duration before now (90s, 15m, 1h,
// 7d); --until is exclusive. --event takes the names listed in
// docs/SUPERVISOR.md "Audit log" (kAuditEvents); a coalesced line matches
// the event it counts (`of`). --run is a prefix of the run id `capsa run`
// prints. --grant matches every grant id a line names (grant, parent,
// parent_grant, client_grant, server_grant): ids restart in every run, so
// pair it with --run in a shared log.
//
// Output: a table, one line per record, streamed with fixed-width columns
// (TIME, RUN (its first 8 hex digits), EVENT, WORKER, GRANT, then the
// other fields as key=value), so a 64 MiB log is shown in constant memory;
// --json prints the matching lines exactly as they are in the file (JSON
// Lines); --summary counts the matching lines per event and per worker and
// event (a coalesced line counts as its `count`, under the event it
// stands for) and gives each run's first and last line, as tables or, with
// --json, one object.
//
// Security: every string in a log may come from a worker (its method
// names, a denial's reason, a file name). The table shows each cell through
// printable() (format.h): control characters, DEL and C1 are shown as
// \xNN, so nothing in a log can drive the operator's terminal. --json
// passes lines through unchanged: the writer already escaped every control
// character (docs/SUPERVISOR.md "Audit log"), and lines that are not a JSON
// object with ts and event are never printed.
//
// -f/--follow prints what matches, then keeps printing matching lines as
// they are appended to each FILE, across rotations, until SIGINT or SIGTERM
// (exit 0). It polls every 200 ms (kFollowInterval). Each FILE must exist
// when it starts (a log not yet created is an error, exit 1).
//
// Exit status: 0 (also when nothing matched), 1 when a FILE (or one of its
// rotated files) cannot be read (the others are still read), 2 usage error
// (a bad time, an unknown event, --follow with --summary). Lines that are
// not audit records are counted and reported on stderr with the first
// one's FILE:LINE; they are never fatal.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "supervisor/cli/audit_reader.h"

namespace capsa::cli {

// The event names documented in docs/SUPERVISOR.md "Audit log", which
// --event accepts (an unknown one is a usage error with a suggestion).
extern const std::vector<std::string> kAuditEvents;

inline constexpr std::chrono::milliseconds kFollowInterval{200};

struct LogOptions {
  std::vector<std::string> files;  // empty: the default audit log
  std::string since, until;
  std::vector<std::string> workers;
  std::vector<std::string> events;
  std::optional<std::uint64_t> grant;
  std::string run;
  bool follow = false;
  bool json = false;
  bool summary = false;
};

CLI::App* add_log_command(CLI::App& app, LogOptions& options);
int run_log(const LogOptions& options, std::ostream& out, std::ostream& err);

// One table line for `r` (without its newline), every cell printable().
std::string format_log_row(const AuditRecord& r);

}  // namespace capsa::cli
