#include "supervisor/cli/run.h"

#include <signal.h>

#include <memory>

#include "policy/loader.h"
#include "supervisor/cli/check.h"
#include "supervisor/cli/format.h"
#include "supervisor/cli/log.h"
#include "supervisor/control/server.h"
#include "supervisor/supervisor.h"

namespace capsa::cli {

namespace {

constexpr int kExitWorkerFailed = 1;

std::string status_text(const supervisor::WorkerView& w) {
  if (!w.start_error.empty()) return "did not start";
  if (!w.exit) return w.running ? "running" : "ended";
  std::string status(sandbox::exit_kind_name(w.exit->kind));
  if (w.exit->kind == sandbox::ExitKind::kExited) return status + " " + std::to_string(w.exit->code);
  if (w.exit->signal != 0) status += " (signal " + std::to_string(w.exit->signal) + ")";
  return status;
}

// The sandbox's whole (cgroup: memfds, /tmp and kernel memory included)
// when it had a cgroup; else the largest process's resident set.
std::uint64_t peak_memory(const sandbox::ExitStatus& e) {
  return e.cgroup != sandbox::CgroupKind::kNone ? e.peak_memory_bytes : e.peak_rss_bytes;
}

void print_summary(const std::vector<supervisor::WorkerView>& workers, std::ostream& out) {
  Table table({"WORKER", "STATUS", "CPU", "PEAK MEM", "WALL", "CALLS", "DENIALS", "VIOLATIONS"});
  for (const auto& w : workers) {
    const auto& e = w.exit;
    table.add({w.name, status_text(w), e ? seconds(e->cpu_time) : "-",
               e ? mebibytes(peak_memory(*e)) : "-", e ? seconds(e->wall_time) : "-",
               std::to_string(w.calls), std::to_string(w.denials), std::to_string(w.violations)});
  }
  out << table.render();
  for (const auto& w : workers) {
    if (!w.start_error.empty()) out << w.name << ": " << printable(w.start_error) << "\n";
  }
}

bool all_succeeded(const std::vector<supervisor::WorkerView>& workers) {
  for (const auto& w : workers) {
    if (!w.start_error.empty()) return false;
    if (!w.exit || w.exit->kind != sandbox::ExitKind::kExited || w.exit->code != 0) return false;
  }
  return true;
}

}  // namespace

CLI::App* add_run_command(CLI::App& app, RunOptions& options) {
  CLI::App* cmd = app.add_subcommand("run", "Start the workers of a policy, serve them, and report");
  cmd->add_option("POLICY", options.policy_path, "policy file (JSON with comments)")->required();
  cmd->add_option("-D,--define", options.defines, "set the policy variable ${NAME}")
      ->type_name("NAME=VALUE");
  cmd->add_option("--audit-log", options.audit_log, "append audit events (JSON Lines) to FILE")
      ->capture_default_str();
  cmd->add_option("--control", options.control,
                  "control socket for `capsa audit` and `capsa revoke` (default: per-user "
                  "runtime directory; \"none\" for no socket)");
  auto* quiet = cmd->add_flag("-q,--quiet", options.quiet,
                              "print only worker log lines, the summary and errors");
  cmd->add_flag("-v,--verbose", options.verbose, "also print the supervisor's debug log")
      ->excludes(quiet);
  cmd->add_option("--log-format", options.log_format,
                  "text, or json: one JSON object per log line (docs in supervisor/cli/log.h)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return cmd;
}

int run_run(const RunOptions& options, std::ostream& out, std::ostream& err) {
  policy::LoadOptions load;
  if (!apply_defines(options.defines, "run", load, err)) return kExitUsage;
  auto policy = policy::load_policy_file(options.policy_path, supervisor::Supervisor::api_catalog(), load);
  if (!policy) {
    err << policy::format_diagnostics(policy.error());
    err << options.policy_path << ": invalid policy, not started\n";
    return kExitUsage;
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
  so.audit_log_path = options.audit_log;
  so.logger = log.supervisor;
  so.worker_logger = log.workers;
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
  log.notices->info("audit log {}", options.audit_log);

  auto started = s.start_all();
  if (!started) err << "capsa run: " << started.error().message << "\n";
  for (const auto& w : s.workers()) {
    if (w.start_error.empty()) log.notices->info("started {} (pid {})", w.name, w.pid);
  }
  out.flush();
  auto ran = s.run();
  if (!ran) err << "capsa run: event loop failed: " << ran.error().message << "\n";
  const auto workers = s.workers();
  // In JSON, stdout carries nothing but JSON Lines: the table is for people.
  std::ostream& summary = json ? err : out;
  summary << "\n";
  print_summary(workers, summary);
  control.reset();
  return all_succeeded(workers) && ran ? kExitValid : kExitWorkerFailed;
}

}  // namespace capsa::cli
