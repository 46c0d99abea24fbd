// capsa — `capsa metrics` (metrics.h).
#include "supervisor/cli/metrics.h"

#include "supervisor/cli/audit.h"
#include "supervisor/control/client.h"

namespace capsa::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;

}  // namespace

CLI::App* add_metrics_command(CLI::App& app, MetricsOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "metrics", "Print a running supervisor's metrics (Prometheus text format 0.0.4)");
  cmd->add_option("--control", options.control,
                  "the supervisor's control socket (default: the only one running)")
      ->type_name("SOCKET");
  return cmd;
}

int run_metrics(const MetricsOptions& options, std::ostream& out, std::ostream& err) {
  ControlTarget target = connect_control(options.control, "metrics", err);
  if (!target.client) return target.exit_status;
  auto text = target.client->metrics();
  if (!text) {
    err << "capsa metrics: " << target.client->path() << ": " << text.error().to_string() << "\n";
    return kExitError;
  }
  out << *text;
  return kExitOk;
}

}  // namespace capsa::cli
