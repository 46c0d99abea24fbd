// capsa — the command line. main() only wires the subcommands, each in its
// own <name>.{h,cc}; exit status 2 for every usage error. `capsa --version`
// prints "capsa X.Y.Z" (the project version in CMakeLists.txt).
#include <iostream>

#include <CLI/CLI.hpp>

#include "supervisor/cli/audit.h"
#include "supervisor/cli/check.h"
#include "supervisor/cli/log_query.h"
#include "supervisor/cli/graph.h"
#include "supervisor/cli/metrics.h"
#include "supervisor/cli/report.h"
#include "supervisor/cli/revoke.h"
#include "supervisor/cli/run.h"

int main(int argc, char** argv) {
  CLI::App app{"capsa: capability-security sandbox runtime for untrusted workers"};
  app.set_version_flag("--version", "capsa " CAPSA_VERSION);
  app.require_subcommand(1);
  capsa::cli::CheckOptions check;
  CLI::App* check_cmd = capsa::cli::add_check_command(app, check);
  capsa::cli::RunOptions run;
  CLI::App* run_cmd = capsa::cli::add_run_command(app, run);
  capsa::cli::AuditOptions audit;
  CLI::App* audit_cmd = capsa::cli::add_audit_command(app, audit);
  capsa::cli::RevokeOptions revoke;
  CLI::App* revoke_cmd = capsa::cli::add_revoke_command(app, revoke);
  capsa::cli::LogOptions log;
  CLI::App* log_cmd = capsa::cli::add_log_command(app, log);
  capsa::cli::GraphOptions graph;
  CLI::App* graph_cmd = capsa::cli::add_graph_command(app, graph);
  capsa::cli::MetricsOptions metrics;
  CLI::App* metrics_cmd = capsa::cli::add_metrics_command(app, metrics);
  capsa::cli::ReportOptions report;
  CLI::App* report_cmd = capsa::cli::add_report_command(app, report);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help or the usage error
    return rc == 0 ? 0 : capsa::cli::kExitUsage;
  }
  if (check_cmd->parsed()) return capsa::cli::run_check(check, std::cout, std::cerr);
  if (run_cmd->parsed()) return capsa::cli::run_run(run, std::cout, std::cerr);
  if (audit_cmd->parsed()) return capsa::cli::run_audit(audit, std::cout, std::cerr);
  if (revoke_cmd->parsed()) return capsa::cli::run_revoke(revoke, std::cout, std::cerr);
  if (log_cmd->parsed()) return capsa::cli::run_log(log, std::cout, std::cerr);
  if (graph_cmd->parsed()) return capsa::cli::run_graph(graph, std::cout, std::cerr);
  if (metrics_cmd->parsed()) return capsa::cli::run_metrics(metrics, std::cout, std::cerr);
  if (report_cmd->parsed()) return capsa::cli::run_report(report, std::cout, std::cerr);
  return capsa::cli::kExitUsage;
}
