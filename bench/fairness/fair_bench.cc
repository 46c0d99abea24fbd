// Fairness benchmark: a victim worker's call latency while 3 neighbour
// workers flood their own grants at full speed, against the victim alone,
// measured in the same run.
//
//   fair_bench [CALLS] [PORTS]     (bench/fairness/run.sh pins it to CPU 0)
//
// Every worker holds fs.Directory grants on one small directory; the call
// is Stat, which the supervisor runs on its service pool (the path that
// backpressure and the per-worker turns govern, pool_waiters.h). The
// victim makes CALLS sequential Stats on one port, first alone, then while
// each neighbour keeps PORTS ports busy with calls_in_flight calls
// pipelined on each (a new one sent as soon as one completes). The
// workers are threads of this process attached to the supervisor, not
// sandboxes: what is measured is the supervisor's scheduling.
// Target (issue #15): victim p99 under flood <= 3x its p99 alone.
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capabilities/client.h"
#include "capsa_bootstrap_generated.h"
#include "fs_directory_generated.h"
#include "policy/builder.h"
#include "supervisor/supervisor.h"

namespace {

using namespace capsa;
using namespace capsa::supervisor;
using Clock = std::chrono::steady_clock;

constexpr int kNeighbours = 3;
constexpr std::uint64_t kInFlight = 8;  // each neighbour port's pipeline

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fair_bench: %s\n", what.c_str());
  std::exit(1);
}
template <typename T>
T must(Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
  return std::move(*r);
}

Port get(Client& boot, const char* name) {
  auto& fbb = boot.payload_builder();
  fbb.Finish(capsa::CreateGetRequest(fbb, fbb.CreateString(name)));
  Message reply = must(boot.call(0, boot.payload_bytes()), name);
  return Port(reply.take_handle(*reply.payload_as<capsa::GetReply>()->port()));
}

// Builds a Stat("f") request in `c`'s builder; returns the method ordinal.
std::uint32_t stat_request(Client& c) {
  auto& fbb = c.payload_builder();
  fbb.Finish(fs::CreateStatRequest(fbb, fbb.CreateString("f")));
  return c.interface().method("Stat")->ordinal;
}

struct Percentiles {
  double p50 = 0, p99 = 0;
};
Percentiles percentiles(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))]; };
  return {at(0.50), at(0.99)};
}

// Sequential Stats on one port: each call's latency in µs.
std::vector<double> victim_calls(Client& c, long calls) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(calls));
  for (long i = 0; i < calls; ++i) {
    const std::uint32_t ord = stat_request(c);
    const auto t0 = Clock::now();
    must(c.call(ord, c.payload_bytes()), "victim Stat");
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return us;
}

// One neighbour: its ports kept full until `stop`; returns calls completed.
long flood(std::vector<std::unique_ptr<Client>>& ports, const std::atomic<bool>& stop) {
  long done = 0;
  auto send = [&](Client& c) {
    const std::uint32_t ord = stat_request(c);
    must(c.submit(ord, c.payload_bytes(), {}, [&done](Result<Message> m) {
      if (!m) die("neighbour Stat: " + m.error().to_string());
      ++done;
    }), "neighbour submit");
  };
  for (auto& c : ports) {
    for (std::uint64_t i = 0; i < kInFlight; ++i) send(*c);
  }
  std::vector<pollfd> fds;
  for (auto& c : ports) fds.push_back(pollfd{c->port().fd().get(), POLLIN, 0});
  for (;;) {
    const bool stopping = stop.load(std::memory_order_relaxed);
    bool any = false;
    for (auto& c : ports) any = any || c->in_flight() > 0;
    if (stopping && !any) return done;
    if (::poll(fds.data(), fds.size(), 100) < 0) die("poll");
    for (std::size_t i = 0; i < ports.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      Client& c = *ports[i];
      if (auto r = c.on_readable(); !r) die("neighbour read: " + r.error().to_string());
      while (!stopping && c.in_flight() < kInFlight) send(c);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::atol(argv[1]) : 20000;
  const long ports = argc > 2 ? std::atol(argv[2]) : 4;
  if (calls < 10 || ports < 1) die("usage: fair_bench [CALLS >= 10] [PORTS >= 1]");

  char tmpl[] = "/tmp/fair_bench.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) die("mkdtemp");
  const std::string dir = tmpl;
  std::ofstream(dir + "/f") << "fairness\n";
  SupervisorOptions o;
  o.audit_log_path = dir + "/audit.jsonl";
  o.log_output = [](std::string_view, LogLevel, std::string_view) {};
  o.ended_grants_kept = 0;
  policy::PolicyBuilder b(Supervisor::api_catalog(o));
  const char* const names[] = {"victim", "n0", "n1", "n2"};
  for (const char* n : names) {
    auto& w = b.worker(n).program("/bin/true");
    w.grant("dir", "fs.Directory").right("Stat").constraint("root", dir + "/");
    w.limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
    w.limit(policy::LimitKind::kCallsInFlight, kInFlight);
    w.limit(policy::LimitKind::kOpenFiles, static_cast<std::uint64_t>(ports) + 16);
  }
  auto p = b.try_build();
  if (!p) die(policy::format_diagnostics(p.error()));
  auto sup = must(Supervisor::create(std::move(*p), std::move(o)), "create");
  const Interface& boot_iface = *sup->registry().find("capsa.Bootstrap");
  const Interface& dir_iface = *sup->registry().find("fs.Directory");
  std::vector<std::unique_ptr<Client>> boots;
  for (const char* n : names) {
    boots.push_back(std::make_unique<Client>(must(sup->attach(n), "attach"), boot_iface));
  }
  std::thread loop([&] { (void)sup->reactor().run(); });

  Client victim(get(*boots[0], "dir"), dir_iface);
  std::vector<std::vector<std::unique_ptr<Client>>> neighbours(kNeighbours);
  for (int n = 0; n < kNeighbours; ++n) {
    for (long i = 0; i < ports; ++i) {
      neighbours[static_cast<std::size_t>(n)].push_back(
          std::make_unique<Client>(get(*boots[static_cast<std::size_t>(n) + 1], "dir"), dir_iface));
    }
  }

  (void)victim_calls(victim, std::min(calls, 1000L));  // warm-up
  const Percentiles alone = percentiles(victim_calls(victim, calls));

  std::atomic<bool> stop{false};
  std::vector<std::future<long>> flooding;
  for (auto& ports_of : neighbours) {
    flooding.push_back(std::async(std::launch::async, [&] { return flood(ports_of, stop); }));
  }
  (void)victim_calls(victim, std::min(calls, 1000L));  // the flood is under way
  const auto t0 = Clock::now();
  const Percentiles flooded = percentiles(victim_calls(victim, calls));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  long neighbour_calls = 0;
  for (auto& f : flooding) neighbour_calls += f.get();

  std::printf("fairness: fs.Directory.Stat through the service pool, %ld victim calls, "
              "3 neighbours x %ld ports x %llu in flight\n",
              calls, ports, static_cast<unsigned long long>(kInFlight));
  std::printf("  victim alone:        p50 %8.1f us   p99 %8.1f us\n", alone.p50, alone.p99);
  std::printf("  victim under flood:  p50 %8.1f us   p99 %8.1f us   (neighbours: %.0f calls/s)\n",
              flooded.p50, flooded.p99, static_cast<double>(neighbour_calls) / seconds);
  std::printf("  ratio under flood / alone: p50 %.2fx   p99 %.2fx   (target p99 <= 3x: %s)\n",
              flooded.p50 / alone.p50, flooded.p99 / alone.p99,
              flooded.p99 <= 3 * alone.p99 ? "met" : "NOT met");

  neighbours.clear();
  boots.clear();
  sup->reactor().stop();
  loop.join();
  sup.reset();
  std::filesystem::remove_all(dir);
  return 0;
}
