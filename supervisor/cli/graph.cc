#include "supervisor/cli/graph.h"

#include <chrono>
#include <fstream>

#include "supervisor/cli/audit.h"
#include "supervisor/cli/audit_reader.h"
#include "supervisor/cli/cap_graph.h"
#include "supervisor/cli/check.h"
#include "supervisor/cli/format.h"

namespace capsa::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

CLI::App* add_graph_command(CLI::App& app, GraphOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "graph", "Draw the capability graph (workers, services, grants, where each came from) as DOT, SVG or PNG");
  cmd->add_option("--control", options.control,
                  "a running supervisor's control socket (default: the only one running)")
      ->type_name("SOCKET");
  cmd->add_option("--log", options.log, "rebuild the graph from this audit log (and its rotated files)")
      ->type_name("FILE");
  cmd->add_option("--run", options.run, "with --log: the run (its id or a unique prefix; default: the last)")
      ->type_name("RUN");
  cmd->add_option("--at", options.at,
                  "with --log: the moment to show (RFC 3339, or a duration before now: 90s, 15m, 1h, 7d)")
      ->type_name("TIME");
  cmd->add_option("--format", options.format, "dot (default), svg or png (svg and png need graphviz)")
      ->check(CLI::IsMember({"dot", "svg", "png"}));
  cmd->add_option("-o,--output", options.output, "write to FILE instead of stdout")->type_name("FILE");
  return cmd;
}

int run_graph(const GraphOptions& options, std::ostream& out, std::ostream& err) {
  if (options.log.empty() && (!options.run.empty() || !options.at.empty())) {
    err << "capsa graph: --run and --at replay an audit log: give it with --log FILE\n";
    return kExitUsage;
  }
  if (!options.log.empty() && !options.control.empty()) {
    err << "capsa graph: --control (live) and --log (replay) exclude each other\n";
    return kExitUsage;
  }
  CapGraph graph;
  if (options.log.empty()) {
    FetchedAudit fetched = fetch_audit(options.control, /*include_ended=*/true, "graph", err);
    if (!fetched.snapshot) return fetched.exit_status;
    graph = graph_from_report(fetched.snapshot->report());
  } else {
    std::optional<std::int64_t> at;
    if (!options.at.empty()) {
      auto t = parse_time_arg(options.at, now_ms());
      if (!t) {
        err << "capsa graph: --at: " << t.error().message << "\n";
        return kExitUsage;
      }
      at = *t;
    }
    const std::vector<std::string> files = audit_files_of(options.log);
    if (files.empty()) {
      err << "capsa graph: no audit log at " << printable(options.log) << "\n";
      return kExitError;
    }
    auto g = graph_from_log(files, options.run, at);
    if (!g) {
      err << "capsa graph: " << g.error().message << "\n";
      return kExitError;
    }
    graph = std::move(*g);
  }

  std::string bytes = graph_to_dot(graph);
  if (options.format != "dot") {
    auto rendered = render_dot(bytes, options.format);
    if (!rendered) {
      err << "capsa graph: " << rendered.error().to_string() << "\n";
      return kExitError;
    }
    bytes = std::move(*rendered);
  }
  if (options.output.empty()) {
    out << bytes;
    return out.flush() ? kExitOk : kExitError;
  }
  std::ofstream file(options.output, std::ios::binary | std::ios::trunc);
  file << bytes;
  file.close();
  if (!file) {
    err << "capsa graph: cannot write " << printable(options.output) << "\n";
    return kExitError;
  }
  return kExitOk;
}

}  // namespace capsa::cli
