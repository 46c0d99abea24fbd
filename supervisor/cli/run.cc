#include "supervisor/cli/run.h"

#include <signal.h>

#include <cinttypes>
#include <cstdio>
#include <memory>

#include "policy/loader.h"
#include "supervisor/cli/check.h"
#include "supervisor/control/server.h"
#include "supervisor/supervisor.h"

namespace capsa::cli {

namespace {

constexpr int kExitWorkerFailed = 1;

std::string seconds(std::chrono::microseconds us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(us.count()) / 1e6);
  return buf;
}

std::string mebibytes(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

void print_summary(const std::vector<supervisor::WorkerView>& workers, std::ostream& out) {
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %-22s %8s %9s %8s %7s %8s %10s\n", "worker", "status",
                "cpu", "peak mem", "wall", "calls", "denials", "violations");
  out << line;
  for (const auto& w : workers) {
    std::string status, cpu = "-", mem = "-", wall = "-";
    if (!w.start_error.empty()) {
      status = "did not start";
    } else if (w.exit) {
      status = std::string(sandbox::exit_kind_name(w.exit->kind));
      if (w.exit->kind == sandbox::ExitKind::kExited) status += " " + std::to_string(w.exit->code);
      if (w.exit->signal != 0 && w.exit->kind != sandbox::ExitKind::kExited) {
        status += " (signal " + std::to_string(w.exit->signal) + ")";
      }
      cpu = seconds(w.exit->cpu_time);
      mem = mebibytes(w.exit->peak_rss_bytes);
      wall = seconds(w.exit->wall_time);
    } else {
      status = w.running ? "running" : "ended";
    }
    std::snprintf(line, sizeof line, "%-16s %-22s %8s %9s %8s %7" PRIu64 " %8" PRIu64 " %10" PRIu64 "\n",
                  w.name.c_str(), status.c_str(), cpu.c_str(), mem.c_str(), wall.c_str(), w.calls,
                  w.denials, w.violations);
    out << line;
  }
  for (const auto& w : workers) {
    if (!w.start_error.empty()) out << w.name << ": " << w.start_error << "\n";
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
  cmd->add_flag("-q,--quiet", options.quiet, "print only worker log lines and the summary");
  return cmd;
}

int run_run(const RunOptions& options, std::ostream& out, std::ostream& err) {
  policy::LoadOptions load;
  for (const std::string& d : options.defines) {
    auto eq = d.find('=');
    if (eq == std::string::npos || eq == 0) {
      err << "capsa run: --define wants NAME=VALUE, got \"" << d << "\"\n";
      return kExitUsage;
    }
    load.defines[d.substr(0, eq)] = d.substr(eq + 1);
  }
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

  supervisor::SupervisorOptions so;
  so.audit_log_path = options.audit_log;
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
    if (!options.quiet) out << "capsa: control socket " << path << "\n";
  }
  if (!options.quiet) out << "capsa: audit log " << options.audit_log << "\n";

  auto started = s.start_all();
  if (!started) err << "capsa run: " << started.error().message << "\n";
  if (!options.quiet) {
    for (const auto& w : s.workers()) {
      if (w.start_error.empty()) out << "capsa: started " << w.name << " (pid " << w.pid << ")\n";
    }
  }
  out.flush();
  auto ran = s.run();
  if (!ran) err << "capsa run: event loop failed: " << ran.error().message << "\n";
  const auto workers = s.workers();
  out << "\n";
  print_summary(workers, out);
  control.reset();
  return all_succeeded(workers) && ran ? kExitValid : kExitWorkerFailed;
}

}  // namespace capsa::cli
