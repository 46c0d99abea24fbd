// capsa — the `capsa metrics` subcommand.
//
// Asks a running supervisor, over its control socket (control/client.h),
// for its metrics and prints them to stdout in the Prometheus text
// exposition format 0.0.4 (docs/SUPERVISOR.md, "Metrics"): per worker
// calls, denials, bad messages, seccomp violations, live grants and bytes;
// workers running, live grants, channels; call latency histograms per
// interface and method.
//
//   capsa metrics [--control SOCKET]
//
// --control names the supervisor's socket; without it, the only live one in
// the default directory is used, as for `capsa audit`.
//
// Exit status: 0 done, 1 no supervisor reachable or it answered an error,
// 2 usage error (including "several supervisors, say which").
#pragma once

#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

namespace capsa::cli {

struct MetricsOptions {
  std::string control;  // "" = find the one in the default directory
};

CLI::App* add_metrics_command(CLI::App& app, MetricsOptions& options);
int run_metrics(const MetricsOptions& options, std::ostream& out, std::ostream& err);

}  // namespace capsa::cli
