// growth_bench [GRANTS] [N...] — how the supervisor grows with its load
// (docs/PERFORMANCE.md, "Growth").
//
//  1. For each N (default 10 100 1000): N sandboxed idle workers
//     (bubblewrap, seccomp, launcher, cgroup where the machine gives one),
//     each takes one log.Sink grant, says "ready" through it and waits.
//     Reported: the time start_all() takes to spawn them, the time until
//     the last "ready" arrived, and the supervisor's live heap (mallinfo2)
//     per worker (heap when all are ready minus heap before the start,
//     divided by N: the worker's record, its bootstrap and log grants,
//     their ports, its output pipes and watches). Target: <= 64 KiB.
//     Also the supervisor's RSS and fd count at that moment.
//  2. `capsa audit` with GRANTS live grants (default 100,000) held by one
//     attached worker: the time a control client takes to get the audit
//     report (the supervisor builds it and checks every holder's
//     /proc/PID/fd) and to format the table `capsa audit` prints; and the
//     heap per live grant (each used once, bench/common/grant_holder.h).
// Run with bench/growth/run.sh (Release). The wall times depend on the
// machine's load: the script prints the load average with them.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/null_sink.h>

#include "capabilities/client.h"
#include "capabilities/interfaces/builtin.h"
#include "capabilities/interfaces/log_sink.h"
#include "capsa_bootstrap_generated.h"
#include "policy/builder.h"
#include "supervisor/cli/audit.h"
#include "supervisor/control/server.h"
#include "supervisor/supervisor.h"
#include "bench/common/grant_holder.h"

using namespace capsa;
using namespace capsa::supervisor;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "growth_bench: %s\n", what.c_str());
  std::exit(1);
}

std::size_t live_heap() { return mallinfo2().uordblks; }

std::string status_field(const char* key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key)) return line.substr(line.find_first_not_of(" \t", std::strlen(key)));
  }
  return "?";
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

std::string temp_path(const char* what) {
  char tmpl[64];
  std::snprintf(tmpl, sizeof tmpl, "/tmp/capsa-growth-%s-XXXXXX", what);
  int fd = ::mkstemp(tmpl);
  if (fd < 0) die("mkstemp");
  ::close(fd);
  return tmpl;
}

double ms_since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

template <typename F>
auto on_loop(Supervisor& sup, F f) {
  std::promise<decltype(f())> pr;
  auto fut = pr.get_future();
  sup.reactor().post([&] { pr.set_value(f()); });
  return fut.get();
}

void idle_workers(long n) {
  const std::string audit = temp_path("audit");
  SupervisorOptions o;
  o.audit_log_path = audit;
  // N "killed" warnings at the shutdown are not the figures.
  o.logger = std::make_shared<spdlog::logger>("growth", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::atomic<long> ready{0};
  Clock::time_point all_ready{};
  Supervisor* sup_ptr = nullptr;
  std::size_t heap_ready = 0;
  std::size_t fds_ready = 0;
  std::string rss_ready;
  o.log_output = [&](std::string_view, LogLevel, std::string_view text) {
    if (text != "ready" || ++ready != n) return;
    // On the loop thread, with every worker idle: the moment to measure.
    all_ready = Clock::now();
    heap_ready = live_heap();
    fds_ready = open_fds();
    rss_ready = status_field("VmRSS:");
    sup_ptr->shutdown("growth_bench: measured");
  };
  policy::PolicyBuilder b(Supervisor::api_catalog(o));
  for (long i = 0; i < n; ++i) {
    auto& w = b.worker("w" + std::to_string(i)).program(CAPSA_GROWTH_IDLE_WORKER);
    w.limit(policy::LimitKind::kWallSeconds, 600);
    w.grant("log", "log.Sink").all_rights();
  }
  auto p = b.try_build();
  if (!p) die(policy::format_diagnostics(p.error()));
  auto s = Supervisor::create(std::move(*p), std::move(o));
  if (!s) die(s.error().to_string());
  Supervisor& sup = **s;
  sup_ptr = &sup;
  const std::size_t heap0 = live_heap();
  const std::size_t fds0 = open_fds();
  const auto t0 = Clock::now();
  if (auto r = sup.start_all(); !r) die(r.error().to_string());
  const auto t_spawned = Clock::now();
  if (auto r = sup.run(); !r) die(r.error().to_string());
  if (ready != n) die("only " + std::to_string(ready.load()) + " of " + std::to_string(n) + " workers were ready");
  long failed = 0;
  for (const auto& w : sup.workers()) failed += w.start_error.empty() ? 0 : 1;
  const double per_worker = static_cast<double>(heap_ready - heap0) / static_cast<double>(n);
  std::printf("%5ld idle workers: spawned in %.0f ms (%.2f ms each), all ready after %.0f ms; "
              "supervisor heap +%zu bytes = %.0f bytes per worker (target <= 65536); "
              "%zu fds (+%.1f per worker); VmRSS %s; %ld did not start\n",
              n, ms_since(t0, t_spawned), ms_since(t0, t_spawned) / static_cast<double>(n),
              ms_since(t0, all_ready), heap_ready - heap0, per_worker, fds_ready,
              static_cast<double>(fds_ready - fds0) / static_cast<double>(n), rss_ready.c_str(), failed);
  std::fflush(stdout);
  ::unlink(audit.c_str());
}

void audit_with_grants(long grants) {
  bench::GrantHolder holder = bench::fork_grant_holder("log", 0, grants);  // no thread yet
  if (holder.pid < 0) die("fork");
  const std::string audit = temp_path("audit");
  const std::string control = temp_path("control");
  ::unlink(control.c_str());
  SupervisorOptions o;
  o.audit_log_path = audit;
  o.log_output = [](std::string_view, LogLevel, std::string_view) {};
  policy::PolicyBuilder b(Supervisor::api_catalog(o));
  auto& w = b.worker("holder").program("/bin/true");
  w.limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
  w.limit(policy::LimitKind::kOpenFiles, static_cast<std::uint64_t>(grants) + 16);
  w.grant("log", "log.Sink").all_rights();
  auto p = b.try_build();
  if (!p) die(policy::format_diagnostics(p.error()));
  auto s = Supervisor::create(std::move(*p), std::move(o));
  if (!s) die(s.error().to_string());
  Supervisor& sup = **s;
  auto server = ControlServer::create(sup, control);
  if (!server) die(server.error().to_string());
  auto boot_port = sup.attach("holder", holder.pid);
  if (!boot_port) die(boot_port.error().to_string());
  if (!holder.give_bootstrap(std::move(*boot_port))) die("the holder is gone");
  std::thread loop([&] { (void)sup.reactor().run(); });
  if (!holder.wait_step() || !holder.go()) die("the holder failed to start");
  const std::size_t heap0 = on_loop(sup, [] { return live_heap(); });
  if (!holder.wait_step()) die("the holder failed while taking grants");
  const std::size_t heap1 = on_loop(sup, [] { return live_heap(); });
  const std::size_t live = on_loop(sup, [&] { return sup.live_grants(); });

  auto client = ControlClient::connect(control);
  if (!client) die(client.error().to_string());
  const auto t0 = Clock::now();
  auto snapshot = (*client)->audit(false);
  if (!snapshot) die(snapshot.error().to_string());
  const auto t1 = Clock::now();
  const std::string table = cli::format_audit_table(snapshot->report(), false);
  const auto t2 = Clock::now();
  const std::size_t rows = snapshot->report().grants() ? snapshot->report().grants()->size() : 0;
  std::printf("capsa audit with %zu live grants: report %.0f ms (%zu grants in it), table %.0f ms "
              "(%zu bytes); supervisor heap %.0f bytes per live grant\n",
              live, ms_since(t0, t1), rows, ms_since(t1, t2), table.size(),
              static_cast<double>(heap1 - heap0) / static_cast<double>(grants));
  (void)holder.finish();
  client->reset();
  server->reset();
  sup.reactor().stop();
  loop.join();
  ::unlink(audit.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // Each worker costs the supervisor about 14 fds, each grant one (and
  // one in the holder). Root may raise the hard limit; others get theirs.
  const long grants = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 100000;
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    const auto want = static_cast<rlim_t>(std::max(grants + 1024, 32L * 1024));
    if (nofile.rlim_max < want) {
      rlimit raised{want, want};
      if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
    }
    nofile.rlim_cur = nofile.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  std::vector<long> counts;
  for (int i = 2; i < argc; ++i) counts.push_back(std::strtol(argv[i], nullptr, 10));
  if (counts.empty()) counts = {10, 100, 1000};
  if (grants + 64 > static_cast<long>(nofile.rlim_cur)) {
    die("RLIMIT_NOFILE " + std::to_string(nofile.rlim_cur) + " is below " + std::to_string(grants) +
        " grants: raise the hard limit (ulimit -Hn) or ask for fewer");
  }
  // The audit phase forks: before any supervisor thread exists.
  if (grants > 0) audit_with_grants(grants);
  for (long n : counts) idle_workers(n);
  return 0;
}
