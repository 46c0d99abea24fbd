// capsa — the `capsa run POLICY` subcommand.
//
// Loads and checks the policy (like `capsa check`, never skipping the
// filesystem checks), starts every worker it names in its sandbox, serves
// them, and exits when they have all ended, printing one summary line per
// worker: status, CPU time, peak memory, wall time, calls, denials. SIGINT
// or SIGTERM shut down cleanly: workers are killed and reaped, the audit
// log gets their exits and is closed.
//
//   capsa run [--audit-log FILE] [--control SOCKET] [--metrics-socket PATH]
//             [--define NAME=VALUE]...
//             [-q | -v] [--log-format text|json] [--json]
//             [--worker-output supervisor|inherit|discard]
//             [--audit-max-bytes SIZE] [--audit-keep N] POLICY
//
// --worker-output overrides every worker's `output` (docs/POLICY.md):
// "inherit" gives the workers the supervisor's own stdout and stderr,
// shared open files a hostile worker can truncate or overwrite.
//
// The audit log: --audit-log FILE, else the default of audit_path.h
// ($XDG_STATE_HOME/capsa/audit.jsonl, /var/log/capsa/audit.jsonl as root).
// Its path is printed at start (not with -q).
//
// Logs (supervisor/cli/log.h): worker lines on stdout, the supervisor's own
// log on stderr. With --log-format json both are JSON Lines, the start-up
// lines are JSON records too, and the summary table goes to stderr, so
// stdout holds nothing else. With --json the summary is one JSON object
// (run_summary.h) on the last line of stdout instead of the table.
//
// Exit status: the workers' (run_summary.h: a single worker's code, 128 +
// signal, 126 if it did not start; with several, the first failure in
// policy order); 2 for a usage error or an invalid policy, before any
// worker starts. Each error is printed once.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace capsa::cli {

struct RunOptions {
  std::string policy_path;
  std::vector<std::string> defines;  // "NAME=VALUE"
  std::string audit_log;  // "" = default_audit_log_path() (audit_path.h)
  // The control socket for `capsa audit` / `capsa revoke`; "" = the default
  // path (control_server.h), "none" = no control socket.
  std::string control;
  // The opt-in metrics socket (control/metrics_server.h): "" = none.
  std::string metrics_socket;
  // The supervisor's own log: warnings by default, debug with `verbose`,
  // errors only with `quiet` (which also drops the start-up lines). Worker
  // lines are always printed: they are what the workers produce.
  bool quiet = false;
  bool verbose = false;
  std::string log_format = "text";  // or "json" (supervisor/cli/log.h)
  // "" = each worker's policy `output`; else supervisor, inherit or discard
  // for every worker.
  std::string worker_output;
  // The audit log's size cap (0: none) and rotated files kept
  // (supervisor/audit/audit_file.h).
  std::string audit_max_bytes = "64M";
  std::uint32_t audit_keep = 4;
  bool json_summary = false;         // --json
  // --warm N: every worker's warm pool, overriding the policy's "pool"
  // (docs/SANDBOX.md, "Warm pool"); -1 = the policy's.
  long long warm = -1;
};

CLI::App* add_run_command(CLI::App& app, RunOptions& options);
int run_run(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace capsa::cli
