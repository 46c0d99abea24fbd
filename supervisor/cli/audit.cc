#include "supervisor/cli/audit.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <span>
#include <vector>

#include "supervisor/audit/audit_log.h"
#include "supervisor/control/client.h"

namespace capsa::cli {
namespace {

namespace ctl = capsa::control;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

std::string_view str(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : s->string_view();
}

std::string_view origin_name(ctl::GrantOrigin o) {
  switch (o) {
    case ctl::GrantOrigin::Policy: return "policy";
    case ctl::GrantOrigin::Returned: return "returned";
    case ctl::GrantOrigin::Attenuated: return "attenuated";
    case ctl::GrantOrigin::Delegated: return "delegated";
  }
  return "unknown";  // a newer supervisor's value
}

std::string_view state_name(ctl::GrantState s) {
  switch (s) {
    case ctl::GrantState::Live: return "live";
    case ctl::GrantState::Revoked: return "revoked";
    case ctl::GrantState::Released: return "released";
  }
  return "unknown";
}

std::string_view verdict_name(ctl::KernelVerdict v) {
  switch (v) {
    case ctl::KernelVerdict::Held: return "held";
    case ctl::KernelVerdict::NotHeld: return "not held";
    case ctl::KernelVerdict::HeldByOther: return "held by other";
    case ctl::KernelVerdict::Unknown: break;
  }
  return "unknown";
}

// The kernel column: "held", "held by w2", "unknown: why", "-" for a grant
// that is not live.
std::string kernel_text(const ctl::GrantEntry& g) {
  if (g.state() != ctl::GrantState::Live) return "-";
  std::string_view detail = str(g.kernel_detail());
  switch (g.kernel()) {
    case ctl::KernelVerdict::Held:
      return detail.empty() ? std::string("held") : "held (also by " + std::string(detail) + ")";
    case ctl::KernelVerdict::NotHeld: return "not held";
    case ctl::KernelVerdict::HeldByOther: return "held by " + std::string(detail);
    case ctl::KernelVerdict::Unknown: break;
  }
  return detail.empty() ? std::string("unknown") : "unknown: " + std::string(detail);
}

// Makes report text safe for a terminal: C0 controls, DEL and the C1
// controls (U+0080..U+009F, which some terminals obey) are shown as \xNN.
// A worker's exit text or a path in an error could carry escape sequences.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  char buf[8];
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i + 1]));
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// "12s", "5m02s", "3h04m", "2d03h".
std::string age_text(std::int64_t ns) {
  if (ns < 0) ns = 0;
  std::int64_t s = ns / 1'000'000'000;
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf;
}

std::string rights_text(const ctl::GrantEntry& g) {
  std::string out;
  if (const auto* rights = g.rights()) {
    for (const auto* r : *rights) {
      if (!out.empty()) out += ',';
      out += str(r);
    }
  }
  return out.empty() ? "-" : out;
}

std::string worker_state(const ctl::WorkerEntry& w) {
  if (w.running()) return "running";
  if (!str(w.start_error()).empty()) return "not started: " + std::string(str(w.start_error()));
  if (!str(w.exit()).empty()) return std::string(str(w.exit()));
  return "ended";
}

// A table whose columns are as wide as their widest cell (the last column
// is not padded).
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) {
    for (auto& cell : row) cell = printable(cell);
    rows_.push_back(std::move(row));
  }
  std::string render() const {
    std::vector<std::size_t> width(rows_[0].size(), 0);
    for (const auto& row : rows_) {
      for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
      }
      out += line;
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string rfc3339(std::int64_t unix_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(unix_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(unix_ns % 1'000'000'000);
  return supervisor::rfc3339_utc_ms(ts);
}

// JSON helpers. Strings from the report are escaped whatever they hold; no
// length cut (the audit log's default): this output is the whole picture.
void jstr(std::string& out, std::string_view key, std::string_view value) {
  supervisor::append_json_string(out, key);
  out += ':';
  supervisor::append_json_string(out, value, SIZE_MAX);
}
void jnum(std::string& out, std::string_view key, std::int64_t v) {
  supervisor::append_json_string(out, key);
  out += ':';
  out += std::to_string(v);
}
void junum(std::string& out, std::string_view key, std::uint64_t v) {
  supervisor::append_json_string(out, key);
  out += ':';
  out += std::to_string(v);
}
void jbool(std::string& out, std::string_view key, bool v) {
  supervisor::append_json_string(out, key);
  out += v ? ":true" : ":false";
}

}  // namespace

std::string format_audit_table(const ctl::AuditReport& report, bool all) {
  std::string out;
  std::size_t live = 0, nworkers = report.workers() ? report.workers()->size() : 0;
  if (report.grants()) {
    for (const auto* g : *report.grants()) live += g->state() == ctl::GrantState::Live;
  }
  out += "supervisor pid " + std::to_string(report.supervisor_pid()) + ": " +
         std::to_string(nworkers) + (nworkers == 1 ? " worker, " : " workers, ") +
         std::to_string(live) + (live == 1 ? " live grant\n\n" : " live grants\n\n");

  Table workers({"WORKER", "PID", "CALLS", "DENIALS", "BAD", "VIOLATIONS", "GRANTS", "STATE"});
  if (report.workers()) {
    for (const auto* w : *report.workers()) {
      workers.add({std::string(str(w->name())), w->pid() > 0 ? std::to_string(w->pid()) : "-",
                   std::to_string(w->calls()), std::to_string(w->denials()),
                   std::to_string(w->bad_messages()), std::to_string(w->violations()),
                   std::to_string(w->grants()), worker_state(*w)});
    }
  }
  out += workers.render();
  out += '\n';

  std::vector<std::string> header{"ID"};
  if (all) header.emplace_back("STATE");
  for (const char* h : {"WORKER", "NAME", "INTERFACE", "RIGHTS", "ORIGIN", "PARENT", "AGE",
                        "CALLS", "BYTES", "KERNEL"}) {
    header.emplace_back(h);
  }
  Table grants(std::move(header));
  if (report.grants()) {
    for (const auto* g : *report.grants()) {
      if (!all && g->state() != ctl::GrantState::Live) continue;
      std::vector<std::string> row{std::to_string(g->id())};
      if (all) row.emplace_back(state_name(g->state()));
      std::string name(str(g->name()));
      row.insert(row.end(),
                 {std::string(str(g->worker())), name.empty() ? "-" : name,
                  std::string(str(g->interface())), rights_text(*g),
                  g->channel() ? std::string("channel") : std::string(origin_name(g->origin())),
                  g->parent() != 0 ? std::to_string(g->parent()) : "-",
                  age_text(report.now_ns() - g->created_ns()), std::to_string(g->calls()),
                  std::to_string(g->bytes()), kernel_text(*g)});
      grants.add(std::move(row));
    }
  }
  out += grants.render();
  return out;
}

std::string format_audit_json(const ctl::AuditReport& report) {
  std::string out = "{";
  jnum(out, "supervisor_pid", report.supervisor_pid());
  out += ',';
  jstr(out, "time", rfc3339(report.now_ns()));
  out += ",\"workers\":[";
  bool first = true;
  if (report.workers()) {
    for (const auto* w : *report.workers()) {
      out += first ? "\n  {" : ",\n  {";
      first = false;
      jstr(out, "name", str(w->name()));
      out += ',';
      jnum(out, "pid", w->pid());
      out += ',';
      jbool(out, "running", w->running());
      out += ',';
      jstr(out, "exit", str(w->exit()));
      out += ',';
      jstr(out, "start_error", str(w->start_error()));
      out += ',';
      junum(out, "calls", w->calls());
      out += ',';
      junum(out, "denials", w->denials());
      out += ',';
      junum(out, "bad_messages", w->bad_messages());
      out += ',';
      junum(out, "violations", w->violations());
      out += ',';
      junum(out, "grants", w->grants());
      out += '}';
    }
  }
  out += first ? "]" : "\n]";
  out += ",\"grants\":[";
  first = true;
  if (report.grants()) {
    for (const auto* g : *report.grants()) {
      out += first ? "\n  {" : ",\n  {";
      first = false;
      junum(out, "id", g->id());
      out += ',';
      junum(out, "parent", g->parent());
      out += ',';
      jstr(out, "worker", str(g->worker()));
      out += ',';
      jnum(out, "holder_pid", g->holder_pid());
      out += ',';
      jstr(out, "name", str(g->name()));
      out += ',';
      jstr(out, "interface", str(g->interface()));
      out += ",\"rights\":[";
      if (const auto* rights = g->rights()) {
        for (flatbuffers::uoffset_t i = 0; i < rights->size(); ++i) {
          if (i != 0) out += ',';
          supervisor::append_json_string(out, str(rights->Get(i)), SIZE_MAX);
        }
      }
      out += "],";
      jstr(out, "origin", origin_name(g->origin()));
      out += ',';
      jstr(out, "state", state_name(g->state()));
      out += ',';
      jbool(out, "channel", g->channel());
      out += ',';
      jstr(out, "created", rfc3339(g->created_ns()));
      out += ',';
      jnum(out, "age_ms", (report.now_ns() - g->created_ns()) / 1'000'000);
      if (g->state() != ctl::GrantState::Live) {
        out += ',';
        jstr(out, "ended", rfc3339(g->ended_ns()));
      }
      out += ',';
      junum(out, "calls", g->calls());
      out += ',';
      junum(out, "bytes", g->bytes());
      out += ',';
      junum(out, "denials", g->denials());
      out += ',';
      junum(out, "port_inode", g->port_inode());
      if (g->state() == ctl::GrantState::Live) {
        out += ',';
        jstr(out, "kernel", verdict_name(g->kernel()));
        out += ',';
        jstr(out, "kernel_detail", str(g->kernel_detail()));
      }
      out += '}';
    }
  }
  out += first ? "]" : "\n]";
  out += "}\n";
  return out;
}

ControlTarget connect_control(const std::string& option, std::string_view command,
                              std::ostream& err) {
  ControlTarget t;
  std::string path = option;
  Result<std::unique_ptr<supervisor::ControlClient>> client;
  if (!option.empty()) {
    client = supervisor::ControlClient::connect(option);
  } else {
    std::string dir = supervisor::default_control_dir();
    auto live = supervisor::live_control_sockets(dir);
    if (!live || live->empty()) {
      err << "capsa " << command << ": no running supervisor found in " << dir
          << (live ? "" : " (" + live.error().message + ")")
          << "; start one with `capsa run`, or name its socket with --control SOCKET\n";
      t.exit_status = kExitError;
      return t;
    }
    if (live->size() > 1) {
      err << "capsa " << command << ": several supervisors are running; choose one with --control:\n";
      for (const auto& s : *live) err << "  " << s.path << "\n";
      t.exit_status = kExitUsage;
      return t;
    }
    path = live->front().path;
    client = supervisor::ControlClient::adopt(std::move(live->front().connection), path);
  }
  if (!client) {
    err << "capsa " << command << ": cannot reach the supervisor at " << path << ": "
        << client.error().to_string() << "\n";
    t.exit_status = kExitError;
    return t;
  }
  t.client = std::move(*client);
  return t;
}

CLI::App* add_audit_command(CLI::App& app, AuditOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "audit", "Show a running supervisor's live grants, their holders, and what the kernel says");
  cmd->add_option("--control", options.control,
                  "the supervisor's control socket (default: the only one running)")
      ->type_name("SOCKET");
  cmd->add_flag("--json", options.json, "print one JSON object for tools");
  cmd->add_flag("--all", options.all, "also show the ended (revoked, released) grants still kept");
  return cmd;
}

int run_audit(const AuditOptions& options, std::ostream& out, std::ostream& err) {
  ControlTarget target = connect_control(options.control, "audit", err);
  if (!target.client) return target.exit_status;
  auto snapshot = target.client->audit(options.all);
  if (!snapshot) {
    err << "capsa audit: " << target.client->path() << ": " << snapshot.error().to_string() << "\n";
    return kExitError;
  }
  out << (options.json ? format_audit_json(snapshot->report())
                       : format_audit_table(snapshot->report(), options.all));
  return kExitOk;
}

}  // namespace capsa::cli
