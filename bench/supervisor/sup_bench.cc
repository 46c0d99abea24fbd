// sup_bench [CALLS] [GRANTS] — the supervisor through the whole stack.
//
//  1. Call round trip: a sandboxed worker (bubblewrap, seccomp, launcher)
//     makes CALLS log.Sink Write calls through the worker SDK; the
//     supervisor receives, validates against the schema, checks rights,
//     worker rate, grant limits, serves and replies. Timed inside the
//     worker. Baseline in the same run: a raw SOCK_SEQPACKET ping-pong of
//     a packet of the same size between two plain processes. Five rounds,
//     interleaved; the median ratio is reported. Target: <= 1.5x raw.
//  2. Memory per live grant: GRANTS grants (each used once) held by an
//     attached worker; the supervisor's live heap (mallinfo2) before and
//     after, divided by GRANTS. Target: <= 2 KiB per grant.
// Run pinned to one CPU: bench/supervisor/run.sh.
//
// Profiling mode (docs/PERFORMANCE.md, "Instructions per call"):
//   sup_bench profile CALLS [WRAPPER...]   one supervisor serving the bench
//       worker attached outside any sandbox (a child process that execs
//       WRAPPER... sup_bench_worker CALLS), so that valgrind can run either
//       side: `valgrind --tool=callgrind sup_bench profile N` measures the
//       supervisor, `sup_bench profile N valgrind --tool=callgrind` the worker.
//   sup_bench profile-raw CALLS            the raw ping-pong alone, CALLS round trips.
//   sup_bench floor CALLS                  raw against raw with the answering side
//       in epoll_wait before each receive (no other work), interleaved: the
//       share of the ratio that an epoll-driven supervisor cannot remove.
#include <fcntl.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "capabilities/client.h"
#include "capabilities/interfaces/log_sink.h"
#include "capabilities/interfaces/builtin.h"
#include "capsa_bootstrap_generated.h"
#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "bench/common/grant_holder.h"

using namespace capsa;
using namespace capsa::supervisor;
using Clock = std::chrono::steady_clock;

// Rounds of (raw, capsa), interleaved; the median ratio is the figure (a
// shared machine makes single rounds swing by a third).
constexpr int kRounds = 5;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "sup_bench: %s\n", what.c_str());
  std::exit(1);
}

// The size of the request the worker sends (envelope + Write "ping"),
// measured once with the real encoder so the baseline moves as many bytes.
std::size_t capsa_request_bytes() {
  Encoder enc;
  auto& fbb = enc.payload_builder();
  interfaces::log_sink::build_write_request(fbb, interfaces::log_sink::Level::kDebug, "ping");
  auto bytes = enc.encode(Header{MessageKind::kCall, 1, 0, 0, Errc::kFailed, {}},
                          enc.payload_bytes(), {});
  return bytes.size();
}

// `epoll_server`: the answering side waits in epoll_wait before each
// receive, as the supervisor's event loop does: the floor of any
// epoll-driven server (one more syscall and an epoll wake-up per call).
double raw_ns_per_round_trip(long n, std::size_t bytes, bool epoll_server = false) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  std::vector<char> buf(bytes, 'x');
  pid_t child = ::fork();
  if (child == 0) {
    ::close(sv[0]);
    std::vector<char> in(65536);
    int ep = -1;
    if (epoll_server) {
      ep = ::epoll_create1(EPOLL_CLOEXEC);
      epoll_event ev{};
      ev.events = EPOLLIN;
      if (ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev) != 0) ::_exit(1);
    }
    for (;;) {
      epoll_event ready[64];
      if (ep >= 0 && ::epoll_wait(ep, ready, 64, -1) < 0) ::_exit(1);
      ssize_t r = ::recv(sv[1], in.data(), in.size(), ep >= 0 ? MSG_DONTWAIT : 0);
      if (r <= 0) ::_exit(0);
      if (::send(sv[1], in.data(), static_cast<std::size_t>(r), 0) != r) ::_exit(1);
    }
  }
  ::close(sv[1]);
  std::vector<char> in(65536);
  auto one = [&] {
    if (::send(sv[0], buf.data(), buf.size(), 0) < 0) die("send");
    if (::recv(sv[0], in.data(), in.size(), 0) <= 0) die("recv");
  };
  for (int i = 0; i < 2000; ++i) one();
  auto t0 = Clock::now();
  for (long i = 0; i < n; ++i) one();
  auto t1 = Clock::now();
  ::close(sv[0]);
  int st = 0;
  ::waitpid(child, &st, 0);
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(n);
}

std::string temp_audit_path() {
  char tmpl[] = "/tmp/capsa-sup-bench-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) die("mkstemp");
  ::close(fd);
  return tmpl;
}

double capsa_ns_per_call(long n) {
  const std::string audit = temp_audit_path();
  SupervisorOptions o;
  o.audit_log_path = audit;
  double result = -1;
  o.log_output = [&](std::string_view, LogLevel level, std::string_view text) {
    if (level == LogLevel::kDebug) return;  // the pings
    std::string t(text);
    if (t.starts_with("elapsed_ns=")) {
      result = std::stod(t.substr(11)) / static_cast<double>(n);
    }
  };
  policy::PolicyBuilder b(Supervisor::api_catalog(o));
  auto& w = b.worker("bench").program(CAPSA_SUP_BENCH_WORKER).arg(std::to_string(n));
  w.limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
  w.limit(policy::LimitKind::kWallSeconds, 600);
  w.limit(policy::LimitKind::kCpuSeconds, 600);
  w.grant("log", "log.Sink").all_rights();
  auto p = b.try_build();
  if (!p) die(policy::format_diagnostics(p.error()));
  auto s = Supervisor::create(std::move(*p), std::move(o));
  if (!s) die(s.error().to_string());
  if (auto r = (*s)->start_all(); !r) die(r.error().to_string());
  if (auto r = (*s)->run(); !r) die(r.error().to_string());
  auto views = (*s)->workers();
  if (!views[0].exit || views[0].exit->code != 0) {
    die("bench worker failed: " + (views[0].exit ? views[0].exit->to_string() : "no status"));
  }
  ::unlink(audit.c_str());
  if (result < 0) die("bench worker reported nothing");
  return result;
}

// One supervisor, the bench worker attached (not sandboxed: valgrind cannot
// run inside the sandbox's seccomp filter), CALLS calls.
int profile(long n, char** wrapper, int wrapper_count) {
  const std::string audit = temp_audit_path();
  SupervisorOptions o;
  o.audit_log_path = audit;
  o.log_output = [](std::string_view, LogLevel level, std::string_view text) {
    if (level != LogLevel::kDebug) std::printf("worker: %.*s\n", static_cast<int>(text.size()), text.data());
  };
  policy::PolicyBuilder b(Supervisor::api_catalog(o));
  auto& w = b.worker("bench").program("/bin/true");
  w.limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
  w.grant("log", "log.Sink").all_rights();
  auto p = b.try_build();
  if (!p) die(policy::format_diagnostics(p.error()));
  auto s = Supervisor::create(std::move(*p), std::move(o));
  if (!s) die(s.error().to_string());
  auto port = (*s)->attach("bench");
  if (!port) die(port.error().to_string());
  std::vector<std::string> args;
  for (int i = 0; i < wrapper_count; ++i) args.emplace_back(wrapper[i]);
  args.emplace_back(CAPSA_SUP_BENCH_WORKER);
  args.push_back(std::to_string(n));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0) die("fork");
  if (child == 0) {  // only async-signal-safe calls: the supervisor has threads
    // fd 3 (kBootstrapFd) without close-on-exec, whatever number it had.
    const int fd = port->fd().get();
    if (fd == 3 ? ::fcntl(3, F_SETFD, 0) < 0 : ::dup2(fd, 3) < 0) ::_exit(126);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  *port = Port();  // the worker's end is the child's now
  if (auto r = (*s)->run(); !r) die(r.error().to_string());
  int st = 0;
  ::waitpid(child, &st, 0);
  ::unlink(audit.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

std::size_t live_heap() { return mallinfo2().uordblks; }

void memory_per_grant(long grants) {
  // 100 warm-up grants first: first-use allocations are not per grant.
  bench::GrantHolder holder = bench::fork_grant_holder("log", 100, grants);  // no thread yet
  if (holder.pid < 0) die("fork");
  const pid_t child = holder.pid;
  const std::string audit = temp_audit_path();
  SupervisorOptions o;
  o.audit_log_path = audit;
  o.log_output = [](std::string_view, LogLevel, std::string_view) {};
  o.ended_grants_kept = 0;
  policy::PolicyBuilder b(Supervisor::api_catalog(o));
  auto& w = b.worker("mem").program("/bin/true");
  w.limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
  // The worker holds every grant at once: its live-grant cap (open_files +
  // 16) must cover them and the warm-up's 100.
  w.limit(policy::LimitKind::kOpenFiles, static_cast<std::uint64_t>(grants) + 100);
  w.grant("log", "log.Sink").all_rights();
  auto p = b.try_build();
  if (!p) die(policy::format_diagnostics(p.error()));
  auto s = Supervisor::create(std::move(*p), std::move(o));
  if (!s) die(s.error().to_string());
  Supervisor& sup = **s;
  auto boot_port = sup.attach("mem", child);
  if (!boot_port) die(boot_port.error().to_string());
  if (!holder.give_bootstrap(std::move(*boot_port))) die("the holder is gone");
  std::thread loop([&] { (void)sup.reactor().run(); });
  auto on_loop = [&](auto f) {
    std::promise<decltype(f())> pr;
    auto fut = pr.get_future();
    sup.reactor().post([&] { pr.set_value(f()); });
    return fut.get();
  };
  if (!holder.wait_step()) die("child failed in warm-up");
  const std::size_t heap0 = on_loop([] { return live_heap(); });
  const std::size_t grants0 = on_loop([&] { return sup.live_grants(); });
  if (!holder.go()) die("child gone");
  if (!holder.wait_step()) die("child failed while taking grants");
  const std::size_t heap1 = on_loop([] { return live_heap(); });
  const std::size_t grants1 = on_loop([&] { return sup.live_grants(); });
  (void)holder.finish();
  const double per_grant = static_cast<double>(heap1 - heap0) / static_cast<double>(grants1 - grants0);
  std::printf("memory: %zu live grants, supervisor heap +%zu bytes = %.0f bytes per grant "
              "(target <= 2048)\n",
              grants1 - grants0, heap1 - heap0, per_grant);
  sup.reactor().stop();
  loop.join();
  ::unlink(audit.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::string_view(argv[1]) == "profile") {
    return profile(std::strtol(argv[2], nullptr, 10), argv + 3, argc - 3);
  }
  if (argc > 2 && std::string_view(argv[1]) == "floor") {
    const long calls = std::strtol(argv[2], nullptr, 10);
    std::vector<double> ratios;
    for (int round = 1; round <= kRounds; ++round) {
      const double raw = raw_ns_per_round_trip(calls, capsa_request_bytes());
      const double ep = raw_ns_per_round_trip(calls, capsa_request_bytes(), true);
      ratios.push_back(ep / raw);
      std::printf("  round %d: raw %.0f ns, raw with epoll_wait %.0f ns, ratio %.2fx\n", round, raw, ep,
                  ep / raw);
    }
    std::sort(ratios.begin(), ratios.end());
    std::printf("epoll floor: median of %zu rounds %.2fx raw\n", ratios.size(), ratios[ratios.size() / 2]);
    return 0;
  }
  if (argc > 2 && std::string_view(argv[1]) == "profile-raw") {
    std::printf("raw: %.0f ns per round trip\n",
                raw_ns_per_round_trip(std::strtol(argv[2], nullptr, 10), capsa_request_bytes()));
    return 0;
  }
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 100000;
  const long grants = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 10000;
  const std::size_t bytes = capsa_request_bytes();
  std::printf("call round trip: %ld calls per round, request %zu bytes, %d rounds interleaved\n", n,
              bytes, kRounds);
  // Memory first: it forks, and must do so before the call rounds start
  // supervisor threads in this process.
  if (grants > 0) memory_per_grant(grants);
  std::vector<double> ratios;
  for (int round = 1; round <= kRounds && n > 0; ++round) {
    const double raw = raw_ns_per_round_trip(n, bytes);
    const double cap = capsa_ns_per_call(n);
    ratios.push_back(cap / raw);
    std::printf("  round %d: raw %.0f ns, capsa %.0f ns, ratio %.2fx\n", round, raw, cap, cap / raw);
    std::fflush(stdout);
  }
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    std::printf("call round trip: median of %zu rounds %.2fx raw (target <= 1.5x)\n", ratios.size(),
                ratios[ratios.size() / 2]);
  }
  return 0;
}
