// capsa — the `capsa log` subcommand (log_query.h).
#include "supervisor/cli/log_query.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "capabilities/fd.h"
#include "policy/suggest.h"
#include "supervisor/cli/audit_path.h"
#include "supervisor/cli/format.h"

namespace capsa::cli {

// Keep in step with docs/SUPERVISOR.md "Audit log" (the Events bullet and
// the coalesced line).
const std::vector<std::string> kAuditEvents = {
    "audit_opened",       "worker_started",   "worker_without_cgroup", "worker_exited",
    "worker_start_failed", "worker_attached", "worker_deadline",       "worker_killed",
    "shutdown",           "grant_refused",    "control_connected",     "control_refused",
    "control_accept_failed", "grant_created", "port_transferred",      "port_delegated",
    "transfer_denied",    "handle_passed",    "channel_created",       "event_dropped",
    "call_denied",        "bad_message",      "seccomp_violation",     "revoked",
    "released",           "coalesced",        "violation_flood",       "output_dropped",
    "audit_rotated",      "audit_rotate_failed",
};

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

// Column widths of the table: an RFC 3339 time with milliseconds, a run's
// first 8 hex digits, the longest event name. Wider cells push the rest
// right rather than being cut (nothing in a log is hidden).
constexpr std::size_t kTimeWidth = 24, kRunWidth = 8, kEventWidth = 21, kWorkerWidth = 12,
                      kGrantWidth = 5;

// Shown in their own columns, so not again among the details.
bool in_columns(std::string_view key) {
  for (std::string_view k : {"ts", "run", "seq", "event", "worker", "holder", "from", "to"}) {
    if (key == k) return true;
  }
  return false;
}

// A string detail: as is when it is one word, else quoted with `"` and `\`
// escaped, so "reason=not granted" cannot pass for two fields.
std::string detail_string(std::string_view s) {
  const bool word = !s.empty() && s.find_first_of(" \"\\=") == std::string_view::npos;
  if (word) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

void pad_cell(std::string& out, std::string_view cell, std::size_t width) {
  const std::string p = printable(cell);
  out += p;
  if (p.size() < width) out.append(width - p.size(), ' ');
  out += "  ";
}

std::string header_row() {
  return fmt::format("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {:<{}}  DETAILS", "TIME", kTimeWidth, "RUN",
                     kRunWidth, "EVENT", kEventWidth, "WORKER", kWorkerWidth, "GRANT", kGrantWidth);
}

// The summary's counters. A line about two workers (a transfer from one to
// the other) counts under each of them.
struct Summary {
  struct Run {
    std::string id;
    std::string start, end;  // the run's first and last line in the files read
    std::uint64_t lines = 0;  // matching
  };
  std::uint64_t lines = 0;    // matching lines
  std::uint64_t events = 0;   // what they stand for (coalesced lines as their count)
  std::uint64_t coalesced_lines = 0;
  std::map<std::string, std::uint64_t> per_event;
  std::map<std::string, std::map<std::string, std::uint64_t>> per_worker;
  std::vector<Run> runs;  // in order of first appearance
  std::map<std::string, std::size_t> run_index;

  Run& run_of(const AuditRecord& r) {
    auto [it, fresh] = run_index.try_emplace(r.run, runs.size());
    if (fresh) runs.push_back({r.run, r.str("ts"), r.str("ts"), 0});
    return runs[it->second];
  }

  void add(const AuditRecord& r) {
    ++lines;
    ++run_of(r).lines;
    std::string event = r.event;
    std::uint64_t n = 1;
    if (r.event == "coalesced" && !r.str("of").empty()) {
      ++coalesced_lines;
      event = r.str("of");
      n = r.unum("count");
    }
    events += n;
    per_event[event] += n;
    auto ws = r.workers();
    if (ws.empty()) ws.push_back("-");
    for (const auto& w : ws) per_worker[w][event] += n;
  }

  nlohmann::json to_json(const ReadStats& stats) const {
    nlohmann::json j;
    j["lines"] = lines;
    j["events"] = events;
    j["coalesced_lines"] = coalesced_lines;
    j["bad_lines"] = stats.bad;
    j["per_event"] = per_event;
    j["per_worker"] = per_worker;
    j["runs"] = nlohmann::json::array();
    for (const auto& run : runs) {
      if (run.lines == 0) continue;
      j["runs"].push_back({{"run", run.id}, {"start", run.start}, {"end", run.end}, {"lines", run.lines}});
    }
    return j;
  }

  std::string to_table() const {
    std::size_t nruns = 0;
    for (const auto& run : runs) nruns += run.lines != 0;
    std::string out = count_of(lines, "line") + " in " + count_of(nruns, "run");
    if (coalesced_lines != 0) {
      out += ", " + std::to_string(events) + " events (" + count_of(coalesced_lines, "coalesced line") +
             " counted as their count)";
    }
    out += "\n";
    if (lines == 0) return out;
    Table rt({"RUN", "START", "END", "LINES"});
    for (const auto& run : runs) {
      if (run.lines != 0) rt.add({run.id.empty() ? "-" : run.id, run.start, run.end, std::to_string(run.lines)});
    }
    Table et({"EVENT", "COUNT"});
    for (const auto& [e, n] : per_event) et.add({e, std::to_string(n)});
    Table wt({"WORKER", "EVENT", "COUNT"});
    for (const auto& [w, evs] : per_worker) {
      for (const auto& [e, n] : evs) wt.add({w, e, std::to_string(n)});
    }
    return out + "\n" + rt.render() + "\n" + et.render() + "\n" + wt.render();
  }
};

// What every matching record goes to: the table, --json or the summary.
class Sink {
 public:
  Sink(const LogOptions& options, const AuditFilter& filter, std::ostream& out)
      : options_(options), filter_(filter), out_(out) {}

  bool operator()(AuditRecord& r) {
    if (options_.summary) {
      // Every line of a run sets its end, matching or not.
      summary_.run_of(r).end = r.str("ts");
    }
    if (!filter_.matches(r)) return true;
    if (!options_.run.empty()) runs_matched_.insert(r.run);
    if (options_.summary) {
      summary_.add(r);
    } else if (options_.json) {
      out_ << r.text << '\n';
    } else {
      if (!header_done_) out_ << header_row() << '\n';
      header_done_ = true;
      out_ << format_log_row(r) << '\n';
    }
    return true;
  }

  void finish(const ReadStats& stats) {
    if (!options_.summary) return;
    if (options_.json) {
      out_ << summary_.to_json(stats).dump() << '\n';
    } else {
      out_ << summary_.to_table();
    }
  }

  std::size_t runs_matched() const { return runs_matched_.size(); }

 private:
  const LogOptions& options_;
  const AuditFilter& filter_;
  std::ostream& out_;
  bool header_done_ = false;
  Summary summary_;
  std::set<std::string> runs_matched_;
};

void report_bad_lines(const ReadStats& stats, std::ostream& err) {
  if (stats.bad == 0) return;
  err << "capsa log: skipped " << count_of(stats.bad, "line") << " that are not audit records (the first at "
      << printable(stats.first_bad) << ")\n";
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

// -f: the history, then what is appended, until SIGINT or SIGTERM. Each
// follower is opened before the rotated files are read, at the start of
// the live file, so a line written meanwhile is read once: by the follower.
int follow(const std::vector<std::string>& paths, Sink& sink, std::ostream& out, std::ostream& err) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Fd sfd(::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd.valid()) {
    err << "capsa log: signalfd: " << std::strerror(errno) << "\n";
    return kExitError;
  }
  ReadStats stats;
  std::vector<AuditFollower> followers;
  for (const auto& path : paths) {
    auto f = AuditFollower::open(path, /*from_start=*/true);
    if (!f) {
      err << "capsa log: " << f.error().message << "\n";
      return kExitError;
    }
    followers.push_back(std::move(*f));
  }
  auto emit = [&](AuditRecord& r) { return sink(r); };
  for (std::size_t i = 0; i < paths.size(); ++i) {
    std::vector<std::string> rotated;
    for (auto& file : audit_files_of(paths[i])) {
      // PATH itself, or a PATH.1 that was rotated since the follower opened
      // it: the follower reads those.
      if (file != paths[i] && inode_of(file) != followers[i].inode()) rotated.push_back(file);
    }
    if (auto r = read_audit_files(rotated, emit, stats); !r) {
      err << "capsa log: " << r.error().message << "\n";
      return kExitError;
    }
  }
  for (;;) {
    for (auto& f : followers) {
      if (auto r = f.poll(emit, stats); !r) {
        out.flush();
        err << "capsa log: " << r.error().message << "\n";
        return kExitError;
      }
    }
    out.flush();
    pollfd p{sfd.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(kFollowInterval.count()));
    if (n > 0) break;  // SIGINT or SIGTERM: a normal end
  }
  report_bad_lines(stats, err);
  return kExitOk;
}

}  // namespace

std::string format_log_row(const AuditRecord& r) {
  // Re-read in the file's key order, so details read as the writer wrote them.
  auto ordered = nlohmann::ordered_json::parse(r.text, nullptr, /*allow_exceptions=*/false);
  if (!ordered.is_object()) ordered = nlohmann::ordered_json::parse(r.line.dump());

  std::string who;
  const std::string worker = r.str("worker"), holder = r.str("holder"), from = r.str("from"),
                    to = r.str("to");
  if (!worker.empty()) who = worker;
  if (!holder.empty() && holder != worker) who += (who.empty() ? "" : ",") + holder;
  if (!from.empty() || !to.empty()) {
    who += (who.empty() ? "" : ",") + (from.empty() ? "?" : from) + "->" + (to.empty() ? "?" : to);
  }
  auto g = ordered.find("grant");
  const bool grant_column = g != ordered.end() && g->is_number_unsigned();

  std::string details;
  for (auto it = ordered.begin(); it != ordered.end(); ++it) {
    if (in_columns(it.key()) || (it.key() == "grant" && grant_column)) continue;
    if (!details.empty()) details += ' ';
    details += detail_string(it.key()) + "=" +
               (it->is_string() ? detail_string(it->get<std::string>()) : it->dump());
  }

  std::string out;
  pad_cell(out, r.str("ts"), kTimeWidth);
  pad_cell(out, r.run.empty() ? "-" : r.run.substr(0, kRunWidth), kRunWidth);
  pad_cell(out, r.event, kEventWidth);
  pad_cell(out, who.empty() ? "-" : who, kWorkerWidth);
  pad_cell(out, grant_column ? std::to_string(g->get<std::uint64_t>()) : "-", kGrantWidth);
  out += printable(details);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

CLI::App* add_log_command(CLI::App& app, LogOptions& options) {
  CLI::App* cmd = app.add_subcommand("log", "Query audit logs (rotated files included): a table, JSON Lines or a summary");
  cmd->add_option("FILE", options.files,
                  "audit logs, each with its rotated FILE.N files (default: the log `capsa run` "
                  "writes without --audit-log)");
  cmd->add_option("--since", options.since, "lines at or after T: RFC 3339, or a duration before now (90s, 15m, 1h, 7d)")
      ->type_name("T");
  cmd->add_option("--until", options.until, "lines before T (same forms as --since)")->type_name("T");
  cmd->add_option("--worker", options.workers, "lines about worker W (repeatable)")
      ->type_name("W")
      ->allow_extra_args(false);
  cmd->add_option("--event", options.events, "lines of event E, or coalesced lines counting E (repeatable)")
      ->type_name("E")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_option_function<std::uint64_t>(
         "--grant", [&options](const std::uint64_t& g) { options.grant = g; },
         "lines naming grant N (ids restart in every run: pair with --run)")
      ->type_name("N");
  cmd->add_option("--run", options.run, "lines of the run(s) whose id starts with R")->type_name("R");
  cmd->add_flag("-f,--follow", options.follow,
                "then keep printing matching lines as they are appended, until SIGINT or SIGTERM");
  cmd->add_flag("--json", options.json, "the matching lines as they are in the file (JSON Lines); with --summary, one object");
  cmd->add_flag("--summary", options.summary, "counts per event and per worker and event, and each run's first and last line");
  return cmd;
}

int run_log(const LogOptions& options, std::ostream& out, std::ostream& err) {
  AuditFilter filter;
  const std::int64_t now = now_ms();
  for (auto [text, field] : {std::pair{&options.since, &filter.since_ms}, std::pair{&options.until, &filter.until_ms}}) {
    if (text->empty()) continue;
    auto t = parse_time_arg(*text, now);
    if (!t) {
      err << "capsa log: " << t.error().message << "\n";
      return kExitUsage;
    }
    *field = *t;
  }
  for (const auto& e : options.events) {
    if (std::find(kAuditEvents.begin(), kAuditEvents.end(), e) != kAuditEvents.end()) continue;
    err << "capsa log: unknown event \"" << printable(e) << "\"" << policy::did_you_mean(e, kAuditEvents)
        << " (the events: docs/SUPERVISOR.md \"Audit log\")\n";
    return kExitUsage;
  }
  if (options.follow && options.summary) {
    err << "capsa log: --summary counts a finished log; it does not go with --follow\n";
    return kExitUsage;
  }
  filter.workers = options.workers;
  filter.events = options.events;
  filter.grant = options.grant;
  filter.run = options.run;

  std::vector<std::string> paths = options.files;
  if (paths.empty()) {
    auto def = default_audit_log_path(::geteuid(), std::getenv("XDG_STATE_HOME"), std::getenv("HOME"));
    if (!def) {
      err << "capsa log: " << def.error().message << "; name the log as FILE\n";
      return kExitError;
    }
    paths.push_back(*def);
  }

  Sink sink(options, filter, out);
  if (options.follow) return follow(paths, sink, out, err);

  int status = kExitOk;
  ReadStats stats;
  for (const auto& path : paths) {
    const auto files = audit_files_of(path);
    if (files.empty()) {
      err << "capsa log: " << path << ": no such file (nor rotated " << path << ".N files)\n";
      status = kExitError;
      continue;
    }
    // Each file on its own, so one unreadable file does not hide the rest.
    for (const auto& file : files) {
      if (auto r = read_audit_files({file}, [&](AuditRecord& rec) { return sink(rec); }, stats); !r) {
        err << "capsa log: " << r.error().message << "\n";
        status = kExitError;
      }
    }
  }
  sink.finish(stats);
  out.flush();
  report_bad_lines(stats, err);
  if (!options.run.empty() && sink.runs_matched() > 1) {
    err << "capsa log: note: --run " << printable(options.run) << " matched " << sink.runs_matched()
        << " runs\n";
  }
  return status;
}

}  // namespace capsa::cli
