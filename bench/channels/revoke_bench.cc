// revoke_bench [HOLDERS] — revocation reaching every holder of a port.
//
// HOLDERS child processes (default 100) each hold a copy of one port and
// wait in poll(2) on it; the parent revokes the grant through the
// supervisor (Supervisor::revoke on its loop thread). Each child, on
// seeing end-of-stream (a read of 0 after POLLIN/POLLHUP), writes the
// CLOCK_MONOTONIC time it saw it to a pipe. The figure: from just before
// the revoke is posted to the loop to the last holder's time. Two ports:
//   - a direct channel end: the supervisor shuts its retained duplicate
//     down (shutdown(2) acts on the socket, so every copy sees it);
//   - a served port (a log.Sink grant): the supervisor closes its end and
//     shuts the holder's socket down.
// Five rounds each (a new supervisor per round); the median is reported.
// Target: <= 1 ms to the last of 100 holders. Pinned to one CPU
// (bench/channels/run.sh), the 100 wake-ups are serial: the figure then
// includes a context switch per holder.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench/channels/bench_supervisor.h"

using namespace capsa;
using namespace capsa::bench;

namespace {

constexpr int kRounds = 5;

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// After fork in a threaded process: only async-signal-safe calls here.
// The child is a holder as a worker is: it keeps its copy of the port and
// the two pipes, and closes everything else it inherited, the supervisor's
// own ends above all (a served port reaches end-of-stream when the last
// copy of the supervisor's end closes; a worker never has one).
[[noreturn]] void hold(int port_in, int ready_in, int done_in) {
  constexpr int port = 1000, ready = 1001, done = 1002;
  if (::dup2(port_in, port) < 0 || ::dup2(ready_in, ready) < 0 || ::dup2(done_in, done) < 0) ::_exit(4);
  if (::close_range(3, port - 1, 0) != 0 || ::close_range(done + 1, ~0U, 0) != 0) ::_exit(5);
  const char r = 1;
  if (::write(ready, &r, 1) != 1) ::_exit(2);
  for (;;) {
    pollfd p{port, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, -1) < 0) continue;
    char buf[256];
    if (::recv(port, buf, sizeof buf, MSG_DONTWAIT) == 0) break;  // end-of-stream
  }
  const std::int64_t t = now_ns();
  if (::write(done, &t, sizeof t) != static_cast<ssize_t>(sizeof t)) ::_exit(3);
  // Stay until the parent has every time: a holder that exited here would
  // make the next one (on the same CPU) wait for its teardown, which is
  // not revocation's cost.
  for (;;) ::pause();
}

// One round: microseconds from the revoke to the last holder.
double round_us(const char* grant, int holders) {
  Bench b(16);
  Port port = Bench::get(*b.boot_a, grant);
  int ready[2], done[2];
  if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(done, O_CLOEXEC) != 0) die("pipe");
  std::vector<pid_t> kids;
  for (int i = 0; i < holders; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) die("fork");
    if (pid == 0) hold(port.fd().get(), ready[1], done[1]);
    kids.push_back(pid);
  }
  port = Port();  // only the children hold it now
  for (int i = 0; i < holders; ++i) {
    char c;
    if (::read(ready[0], &c, 1) != 1) die("a holder did not start");
  }
  ::usleep(20000);  // let the last of them reach poll()
  GrantId id = 0;
  for (const auto& g : b.on_loop([&] { return b.sup->grants(); })) {
    if (g.worker == "a" && g.name == grant) id = g.id;
  }
  if (id == 0) die(std::string("no grant ") + grant);
  const std::int64_t t0 = now_ns();
  must(b.on_loop([&] { return b.sup->revoke(id, "bench"); }), "revoke");
  std::int64_t last = 0;
  for (int i = 0; i < holders; ++i) {
    std::int64_t t = 0;
    if (::read(done[0], &t, sizeof t) != static_cast<ssize_t>(sizeof t)) die("a holder saw nothing");
    last = std::max(last, t);
  }
  for (pid_t k : kids) ::kill(k, SIGKILL);
  for (pid_t k : kids) ::waitpid(k, nullptr, 0);
  for (int fd : {ready[0], ready[1], done[0], done[1]}) ::close(fd);
  return static_cast<double>(last - t0) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const int holders = argc > 1 ? std::atoi(argv[1]) : 100;
  if (holders < 1) die("usage: revoke_bench [HOLDERS>=1]");
  for (const char* grant : {"direct", "log"}) {
    std::vector<double> v;
    for (int r = 0; r < kRounds; ++r) v.push_back(round_us(grant, holders));
    std::sort(v.begin(), v.end());
    std::printf("revoke %-6s (%s) to the last of %d holders: median %.0f us (min %.0f, max %.0f; "
                "target <= 1000)\n",
                grant, grant == std::string("direct") ? "direct channel end" : "served port", holders,
                v[v.size() / 2], v.front(), v.back());
  }
  return 0;
}
