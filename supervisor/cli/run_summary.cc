#include "supervisor/cli/run_summary.h"

#include <nlohmann/json.hpp>

#include "supervisor/cli/format.h"

namespace capsa::cli {

int worker_exit_status(const supervisor::WorkerView& w) {
  if (!w.start_error.empty()) return kExitDidNotStart;
  if (!w.exit) return 1;  // never reaped: the loop failed under it
  const sandbox::ExitStatus& e = *w.exit;
  if (e.kind == sandbox::ExitKind::kExited) return e.code;
  if (e.signal != 0) return 128 + e.signal;
  // Ended abnormally without a signal (a limit inferred from an exit code).
  return e.code != 0 ? e.code : 1;
}

int run_exit_status(const std::vector<supervisor::WorkerView>& workers) {
  for (const auto& w : workers) {
    if (int status = worker_exit_status(w); status != 0) return status;
  }
  return 0;
}

// The sandbox's whole (cgroup: memfds, /tmp and kernel memory included)
// when it had a cgroup; else the largest process's resident set.
std::uint64_t peak_memory(const sandbox::ExitStatus& e) {
  return e.cgroup != sandbox::CgroupKind::kNone ? e.peak_memory_bytes : e.peak_rss_bytes;
}

std::string status_text(const supervisor::WorkerView& w) {
  if (!w.start_error.empty()) return "did not start";
  if (!w.exit) return w.running ? "running" : "ended";
  std::string status(sandbox::exit_kind_name(w.exit->kind));
  if (w.exit->kind == sandbox::ExitKind::kExited) return status + " " + std::to_string(w.exit->code);
  if (w.exit->signal != 0) status += " (signal " + std::to_string(w.exit->signal) + ")";
  return status;
}

void print_summary_table(const std::vector<supervisor::WorkerView>& workers, std::ostream& out) {
  Table table({"WORKER", "STATUS", "CPU", "PEAK MEM", "WALL", "CALLS", "DENIALS", "VIOLATIONS"});
  for (const auto& w : workers) {
    const auto& e = w.exit;
    table.add({w.name, status_text(w), e ? seconds(e->cpu_time) : "-",
               e ? mebibytes(peak_memory(*e)) : "-", e ? seconds(e->wall_time) : "-",
               std::to_string(w.calls), std::to_string(w.denials), std::to_string(w.violations)});
  }
  out << table.render();
}

std::string summary_json(const std::vector<supervisor::WorkerView>& workers, int exit_status) {
  auto list = nlohmann::json::array();
  for (const auto& w : workers) {
    nlohmann::json j{{"name", w.name},
                     {"status", w.exit ? std::string(sandbox::exit_kind_name(w.exit->kind)) : status_text(w)},
                     {"exit_code", nullptr},
                     {"signal", nullptr},
                     {"exit_status", worker_exit_status(w)},
                     {"calls", w.calls},
                     {"denials", w.denials},
                     {"bad_messages", w.bad_messages},
                     {"violations", w.violations},
                     {"grants", w.grants}};
    if (w.exit) {
      if (w.exit->kind == sandbox::ExitKind::kExited) j["exit_code"] = w.exit->code;
      if (w.exit->signal != 0) j["signal"] = w.exit->signal;
      j["cpu_seconds"] = static_cast<double>(w.exit->cpu_time.count()) / 1e6;
      j["wall_seconds"] = static_cast<double>(w.exit->wall_time.count()) / 1e6;
      j["peak_memory_bytes"] = peak_memory(*w.exit);
    }
    // A reason may quote a path or a worker's bytes: the library escapes
    // them; invalid UTF-8 is replaced, never a throw.
    if (!w.start_error.empty()) j["error"] = w.start_error;
    list.push_back(std::move(j));
  }
  nlohmann::json doc{{"exit_status", exit_status}, {"workers", std::move(list)}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace capsa::cli
