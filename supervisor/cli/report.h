// capsa — the `capsa report` subcommand: one self-contained HTML page about
// one run of an audit log, for an auditor or an incident write-up.
//
//   capsa report LOG -o report.html [--run R]
//
// LOG is an audit log (its rotated files LOG.1 ... are read too, oldest
// first). The page shows: the log, the run, its time span and workers;
// denials and violations per worker, counted by kind (a coalesced line
// counts for the lines it stands for); the workers' exits; the capability
// graph at the end of the run (cap_graph.h, drawn by Graphviz `dot`); and a
// timeline of the run's lines. A log holding several runs (grant ids
// restart per run) is reported one run at a time: --run R (an id or a
// unique prefix), by default the last run to begin; the page says which.
//
// The page loads nothing and runs nothing (report_html.h). Without Graphviz
// the graph section says why it is missing and the rest is written; `capsa
// report` warns on stderr. The file is written whole or not at all (a
// temporary file renamed over OUT), mode 0600 like the log it comes from;
// `-o -` writes to stdout.
//
// Exit status: 0 written, 1 the log cannot be read, holds no record or no
// such run, or the page cannot be written, 2 usage error.
#pragma once

#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

namespace capsa::cli {

struct ReportOptions {
  std::string log;
  std::string output;
  std::string run;  // "" = the last run in the log
};

CLI::App* add_report_command(CLI::App& app, ReportOptions& options);
int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err);

}  // namespace capsa::cli
