#include "supervisor/cli/audit.h"

#include <chrono>
#include <vector>

#include <nlohmann/json.hpp>

#include "supervisor/cli/format.h"
#include "supervisor/control/client.h"
#include "supervisor/control/wire.h"

namespace capsa::cli {
namespace {

namespace ctl = capsa::control;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

std::string_view str(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : s->string_view();
}

// The KERNEL column: "held", "held by w2", "unknown: why"; "-" for a grant
// that is not live.
std::string kernel_text(const ctl::GrantEntry& g) {
  if (g.state() != ctl::GrantState::Live) return "-";
  return supervisor::wire_kernel_text(g.kernel(), str(g.kernel_detail()));
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

// The ORIGIN column: how the grant came to be, and what kind of channel end
// it is ("policy direct end": the supervisor is not on its path; "delegated
// via ch 3": it travelled through mediated channel 3).
std::string origin_text(const ctl::GrantEntry& g) {
  std::string out(supervisor::wire_name(g.origin()));
  if (g.kind() == ctl::GrantKind::DirectEnd) out += " direct end";
  if (g.kind() == ctl::GrantKind::ServerEnd) out += " server end";
  if (g.kind() == ctl::GrantKind::Served && g.channel() != 0) out += " client end";
  if (g.kind() == ctl::GrantKind::Object) {
    out += " object " + std::to_string(g.object()) + " on " + std::to_string(g.port_grant());
  }
  if (g.via() != 0) out += " via ch " + std::to_string(g.via());
  return out;
}

std::string worker_state(const ctl::WorkerEntry& w) {
  if (w.running()) return "running";
  if (!str(w.start_error()).empty()) return "not started: " + std::string(str(w.start_error()));
  if (!str(w.exit()).empty()) return std::string(str(w.exit()));
  return "ended";
}

}  // namespace

std::string format_audit_table(const ctl::AuditReport& report, bool all) {
  std::string out;
  std::size_t live = 0, nworkers = report.workers() ? report.workers()->size() : 0;
  if (report.grants()) {
    for (const auto* g : *report.grants()) live += g->state() == ctl::GrantState::Live;
  }
  out += "supervisor pid " + std::to_string(report.supervisor_pid()) + ": " +
         count_of(nworkers, "worker") + ", " + count_of(live, "live grant") + "\n\n";

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
      if (all) row.emplace_back(supervisor::wire_name(g->state()));
      std::string name(str(g->name()));
      row.insert(row.end(),
                 {std::string(str(g->worker())), name.empty() ? "-" : name,
                  std::string(str(g->interface())), rights_text(*g),
                  origin_text(*g),
                  g->parent() != 0 ? std::to_string(g->parent()) : "-",
                  age(std::chrono::nanoseconds(report.now_ns() - g->created_ns())), std::to_string(g->calls()),
                  std::to_string(g->bytes()), kernel_text(*g)});
      grants.add(std::move(row));
    }
  }
  out += grants.render();
  return out;
}

std::string format_audit_json(const ctl::AuditReport& report) {
  // Strings from the report are the workers' as much as ours: nlohmann
  // escapes them, and `replace` turns invalid UTF-8 into U+FFFD instead of
  // failing. No length cut (unlike the audit log): this is the whole picture.
  nlohmann::ordered_json doc;
  doc["supervisor_pid"] = report.supervisor_pid();
  doc["time"] = rfc3339(report.now_ns());
  doc["workers"] = nlohmann::ordered_json::array();
  if (report.workers()) {
    for (const auto* w : *report.workers()) {
      doc["workers"].push_back({{"name", str(w->name())},
                                {"pid", w->pid()},
                                {"running", w->running()},
                                {"exit", str(w->exit())},
                                {"start_error", str(w->start_error())},
                                {"calls", w->calls()},
                                {"denials", w->denials()},
                                {"bad_messages", w->bad_messages()},
                                {"violations", w->violations()},
                                {"grants", w->grants()}});
    }
  }
  doc["grants"] = nlohmann::ordered_json::array();
  if (report.grants()) {
    for (const auto* g : *report.grants()) {
      nlohmann::ordered_json j{{"id", g->id()},
                               {"parent", g->parent()},
                               {"worker", str(g->worker())},
                               {"holder_pid", g->holder_pid()},
                               {"name", str(g->name())},
                               {"interface", str(g->interface())},
                               {"rights", nlohmann::ordered_json::array()},
                               {"origin", supervisor::wire_name(g->origin())},
                               {"state", supervisor::wire_name(g->state())},
                               {"kind", supervisor::wire_name(g->kind())},
                               {"channel", g->channel()},
                               {"via", g->via()},
                               {"transferable", g->transferable()},
                               {"created", rfc3339(g->created_ns())},
                               {"age_ms", (report.now_ns() - g->created_ns()) / 1'000'000}};
      if (const auto* rights = g->rights()) {
        for (const auto* r : *rights) j["rights"].push_back(str(r));
      }
      if (g->state() != ctl::GrantState::Live) j["ended"] = rfc3339(g->ended_ns());
      j["calls"] = g->calls();
      j["bytes"] = g->bytes();
      j["denials"] = g->denials();
      j["port_inode"] = g->port_inode();
      if (g->state() == ctl::GrantState::Live) {
        j["kernel"] = supervisor::wire_name(g->kernel());
        j["kernel_detail"] = str(g->kernel_detail());
      }
      doc["grants"].push_back(std::move(j));
    }
  }
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
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

FetchedAudit fetch_audit(const std::string& control, bool include_ended, std::string_view command,
                         std::ostream& err) {
  FetchedAudit f;
  ControlTarget target = connect_control(control, command, err);
  if (!target.client) {
    f.exit_status = target.exit_status;
    return f;
  }
  auto snapshot = target.client->audit(include_ended);
  if (!snapshot) {
    err << "capsa " << command << ": " << target.client->path() << ": " << snapshot.error().to_string()
        << "\n";
    f.exit_status = kExitError;
    return f;
  }
  f.snapshot.emplace(std::move(*snapshot));
  return f;
}

int run_audit(const AuditOptions& options, std::ostream& out, std::ostream& err) {
  FetchedAudit fetched = fetch_audit(options.control, options.all, "audit", err);
  if (!fetched.snapshot) return fetched.exit_status;
  const control::AuditReport& report = fetched.snapshot->report();
  out << (options.json ? format_audit_json(report) : format_audit_table(report, options.all));
  return kExitOk;
}

}  // namespace capsa::cli
