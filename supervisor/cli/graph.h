// capsa — the `capsa graph` subcommand: the capability graph (cap_graph.h)
// as Graphviz DOT, or rendered to SVG or PNG by Graphviz's `dot`.
//
//   capsa graph [--control SOCKET] [--format dot|svg|png] [-o FILE]
//   capsa graph --log FILE [--run R] [--at TIME] [--format ...] [-o FILE]
//
// Live (the default): a running supervisor's grants, ended ones included,
// from its control socket (--control as for `capsa audit`). With --log: the
// audit log FILE (its rotated files too) replayed for one run (--run: an id
// or a unique prefix; default the last run in the log) up to --at (RFC 3339
// or a duration before now, "10m"; default the end of the log).
//
// Output: DOT (default) or the rendered bytes, to stdout or -o FILE.
// Exit status: 0 done, 1 no supervisor / no such run / unreadable log /
// Graphviz failed or missing, 2 usage error.
#pragma once

#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

namespace capsa::cli {

struct GraphOptions {
  std::string control;  // "" = the only supervisor running
  std::string log;      // replay this audit log instead
  std::string run;      // with --log: the run (id or unique prefix); "" = the last
  std::string at;       // with --log: the moment (RFC 3339 or relative); "" = the end
  std::string format = "dot";
  std::string output;   // "" = stdout
};

CLI::App* add_graph_command(CLI::App& app, GraphOptions& options);
int run_graph(const GraphOptions& options, std::ostream& out, std::ostream& err);

}  // namespace capsa::cli
