#include "supervisor/cli/run.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include <memory>

#include "policy/limits.h"
#include "policy/loader.h"
#include "supervisor/cli/audit_path.h"
#include "supervisor/cli/check.h"
#include "supervisor/cli/format.h"
#include "supervisor/cli/install_layout.h"
#include "supervisor/cli/log.h"
#include "supervisor/cli/run_summary.h"
#include "supervisor/control/metrics_server.h"
#include "supervisor/control/server.h"
#include "supervisor/supervisor.h"

namespace capsa::cli {


CLI::App* add_run_command(CLI::App& app, RunOptions& options) {
  CLI::App* cmd = app.add_subcommand("run", "Start the workers of a policy, serve them, and report");
  cmd->add_option("POLICY", options.policy_path, "policy file (JSON with comments)")->required();
  cmd->add_option("-D,--define", options.defines, "set the policy variable ${NAME}")
      ->type_name("NAME=VALUE");
  cmd->add_option("--audit-log", options.audit_log,
                  "append audit events (JSON Lines) to FILE (default: $XDG_STATE_HOME/capsa/"
                  "audit.jsonl, or /var/log/capsa/audit.jsonl as root)");
  cmd->add_option("--control", options.control,
                  "control socket for `capsa audit` and `capsa revoke` (default: per-user "
                  "runtime directory; \"none\" for no socket)");
  cmd->add_option("--metrics-socket", options.metrics_socket,
                  "serve Prometheus metrics over HTTP on this Unix socket (mode 0600; "
                  "docs/SUPERVISOR.md, \"Metrics\")")
      ->type_name("PATH");
  auto* quiet = cmd->add_flag("-q,--quiet", options.quiet,
                              "print only worker log lines, the summary and errors");
  cmd->add_flag("-v,--verbose", options.verbose, "also print the supervisor's debug log")
      ->excludes(quiet);
  cmd->add_option("--log-format", options.log_format,
                  "text, or json: one JSON object per log line (docs in supervisor/cli/log.h)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_option("--worker-output", options.worker_output,
                  "where every worker's stdout/stderr go, overriding the policy's `output`: "
                  "supervisor (logged as [worker] line), inherit (the supervisor's own: the "
                  "worker can truncate or overwrite them), discard")
      ->check(CLI::IsMember({"supervisor", "inherit", "discard"}));
  cmd->add_option("--audit-max-bytes", options.audit_max_bytes,
                  "rotate the audit log before it passes SIZE (64K..; K, M, G suffixes; 0: never)")
      ->capture_default_str();
  cmd->add_option("--audit-keep", options.audit_keep, "rotated audit files kept (FILE.1 newest)")
      ->check(CLI::Range(1u, supervisor::kMaxAuditKeep))
      ->capture_default_str();
  cmd->add_option("--warm", options.warm,
                  "start each worker's sandbox ahead and hand it the worker when it starts, "
                  "overriding the policy's `pool` (0: none)")
      ->type_name("N")
      ->check(CLI::Range(0LL, static_cast<long long>(policy::kMaxPool)));
  cmd->add_flag("--json", options.json_summary,
                "print the end-of-run summary as one JSON object on the last line of stdout");
  return cmd;
}

int run_run(const RunOptions& options, std::ostream& out, std::ostream& err) {
  policy::LoadOptions load;
  if (!apply_defines(options.defines, "run", load, err)) return kExitUsage;
  std::string audit_log = options.audit_log;
  if (audit_log.empty()) {
    auto path = default_audit_log_path(::geteuid(), std::getenv("XDG_STATE_HOME"), std::getenv("HOME"));
    if (!path) {
      err << "capsa run: " << path.error().message << "\n";
      return kExitUsage;
    }
    if (auto made = make_parent_directories(*path); !made) {
      err << "capsa run: audit log " << *path << ": " << made.error().message << "\n";
      return kExitUsage;
    }
    audit_log = std::move(*path);
  }
  auto policy = policy::load_policy_file(options.policy_path, supervisor::Supervisor::api_catalog(), load);
  if (!policy) {
    err << policy::format_diagnostics(policy.error());
    err << options.policy_path << ": invalid policy, not started\n";
    return kExitUsage;
  }

  if (!options.worker_output.empty()) {
    const policy::OutputMode mode = options.worker_output == "inherit" ? policy::OutputMode::kInherit
                                    : options.worker_output == "discard"
                                        ? policy::OutputMode::kDiscard
                                        : policy::OutputMode::kSupervisor;
    for (policy::WorkerProfile& w : policy->workers) w.output = mode;
  }

  // SIGINT and SIGTERM are read from a signalfd on the loop: they must be
  // blocked in every thread, so before the reactor starts its pool.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const bool json = options.log_format == "json";
  RunLoggers log = make_run_loggers(
      json ? LogFormat::kJson : LogFormat::kText,
      options.verbose ? spdlog::level::debug : options.quiet ? spdlog::level::err : spdlog::level::warn,
      options.quiet, out, err);
  log.supervisor->debug("policy {}: {}, {}", options.policy_path,
                        count_of(policy->workers.size(), "worker"),
                        count_of(policy->channels.size(), "channel"));
  supervisor::SupervisorOptions so;
  so.audit_log_path = audit_log;
  so.launcher = installed_launcher_path();
  log.supervisor->debug("launcher {}", so.launcher.empty() ? sandbox::default_launcher_path() : so.launcher);
  const auto max_bytes = policy::parse_size(options.audit_max_bytes);
  if (!max_bytes || (*max_bytes != 0 && *max_bytes < supervisor::kMinAuditMaxBytes)) {
    err << "capsa run: --audit-max-bytes " << options.audit_max_bytes << ": a size of at least 64K, or 0\n";
    return kExitUsage;
  }
  so.audit.max_bytes = *max_bytes;
  so.audit.keep = options.audit_keep;
  so.logger = log.supervisor;
  so.worker_logger = log.workers;
  if (options.warm >= 0) so.warm_pool = static_cast<std::uint64_t>(options.warm);
  auto sup = supervisor::Supervisor::create(std::move(*policy), std::move(so));
  if (!sup) {
    err << "capsa run: " << sup.error().message << "\n";
    return kExitUsage;
  }
  supervisor::Supervisor& s = **sup;
  auto watched = s.reactor().watch_signals(signals, [&s, &err](const signalfd_siginfo& si) {
    err << "capsa run: signal " << si.ssi_signo << ", stopping the workers\n";
    s.shutdown(si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
  });
  if (!watched) {
    err << "capsa run: " << watched.error().message << "\n";
    return kExitUsage;
  }

  std::unique_ptr<supervisor::ControlServer> control;
  if (options.control != "none") {
    std::string path = options.control.empty() ? supervisor::default_control_path() : options.control;
    auto c = supervisor::ControlServer::create(s, path);
    if (!c) {
      err << "capsa run: control socket " << path << ": " << c.error().message << "\n";
      return kExitUsage;
    }
    control = std::move(*c);
    log.notices->info("control socket {}", path);
  }
  std::unique_ptr<supervisor::MetricsServer> metrics;
  if (!options.metrics_socket.empty()) {
    auto m = supervisor::MetricsServer::create(s, options.metrics_socket);
    if (!m) {
      err << "capsa run: metrics socket " << options.metrics_socket << ": " << m.error().message
          << "\n";
      return kExitUsage;
    }
    metrics = std::move(*m);
    log.notices->info("metrics socket {}", options.metrics_socket);
  }
  log.notices->info("audit log {} (run {})", audit_log, s.audit().run_id());

  // A worker that does not start is logged by the supervisor (and shown in
  // the summary): its error is not printed again here.
  // Warm pools fill on their own threads, side by side; every start is then
  // a hand-over (bounded: a pool that does not fill leaves its start cold).
  (void)s.warm_up(std::chrono::seconds(30));
  (void)s.start_all();
  for (const auto& w : s.workers()) {
    if (w.start_error.empty()) log.notices->info("started {} (pid {})", w.name, w.pid);
  }
  out.flush();
  auto ran = s.run();
  if (!ran) err << "capsa run: event loop failed: " << ran.error().message << "\n";
  const auto workers = s.workers();
  int status = run_exit_status(workers);
  if (!ran && status == 0) status = 1;
  if (options.json_summary) {
    out << summary_json(workers, status);
  } else {
    // In JSON logs, stdout carries nothing but JSON Lines: the table is for people.
    std::ostream& summary = json ? err : out;
    summary << "\n";
    print_summary_table(workers, summary);
  }
  metrics.reset();
  control.reset();
  return status;
}

}  // namespace capsa::cli
