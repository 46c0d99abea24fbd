// spawn_bench [ITERATIONS]: median and p90 of
//   capsa:  spawn() -> first message from the worker on fd 3 (worker: the
//           sandbox test worker in "hello" mode, dynamically linked C++);
//   bare:   fork+exec of `bwrap --unshare-all --die-with-parent --new-session
//           --dev /dev --proc /proc --ro-bind /usr /usr (+ /lib /bin links)
//           /bin/true` -> its exit.
// Interleaved, same run, same machine. Target: capsa <= 1.5x bare.
// Run as root, the bare bubblewrap keeps uid 0 in its one user namespace,
// while capsa's runs as 65534 (spawn() drops) with --uid 65534, which costs
// bubblewrap a second user namespace: the baseline is the cheaper one.
// bench/spawn/run.sh runs this several times, pinned and unpinned.
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sandbox/sandbox.h"

using namespace capsa;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double capsa_once(const sandbox::Spec& spec) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  Fd ours(sv[0]);
  auto t0 = Clock::now();
  auto w = sandbox::spawn(spec, Fd(sv[1]));
  if (!w) {
    std::fprintf(stderr, "%s\n", w.error().to_string().c_str());
    std::exit(1);
  }
  char buf[256];
  if (::recv(ours.get(), buf, sizeof buf, 0) <= 0) std::abort();
  auto t1 = Clock::now();
  if (!w->wait()) std::abort();
  return ms(t1 - t0);
}

double bare_once() {
  const char* argv[] = {"bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                        "--dev", "/dev", "--proc", "/proc", "--ro-bind", "/usr", "/usr",
                        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                        "--symlink", "usr/bin", "/bin", "/bin/true", nullptr};
  auto t0 = Clock::now();
  pid_t pid;
  char* envp[] = {nullptr};
  if (::posix_spawn(&pid, CAPSA_BWRAP_PATH, nullptr, nullptr, const_cast<char**>(argv), envp) != 0) {
    std::abort();
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  auto t1 = Clock::now();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) std::abort();
  return ms(t1 - t0);
}

void report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::printf("%-6s median %.2f ms  p90 %.2f ms  (n=%zu)\n", what, v[v.size() / 2],
              v[v.size() * 9 / 10], v.size());
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 100;
  // The sandbox has no default limits; these are roomy (1 GiB, 30 s CPU,
  // 60 s wall, 64 processes, 256 fds, 16 MiB files) so none is what is measured.
  const sandbox::Limits limits{.address_space_bytes = 1ull << 30, .cpu_seconds = 30,
                               .wall_seconds = 60, .max_processes = 64,
                               .max_open_files = 256, .max_file_size_bytes = 16ull << 20};
  auto spec = sandbox::SpecBuilder().name("bench").program(CAPSA_BENCH_WORKER)
                  .args({"worker", "hello"}).limits(limits).build();
  if (!spec) {
    std::fprintf(stderr, "%s\n", spec.error().to_string().c_str());
    return 1;
  }
  std::vector<double> capsa_ms, bare_ms;
  for (int i = 0; i < 5; ++i) {  // warm-up: page cache, fork thread
    capsa_once(*spec);
    bare_once();
  }
  for (int i = 0; i < n; ++i) {
    capsa_ms.push_back(capsa_once(*spec));
    bare_ms.push_back(bare_once());
  }
  report("capsa", capsa_ms);
  report("bare", bare_ms);
  std::sort(capsa_ms.begin(), capsa_ms.end());
  std::sort(bare_ms.begin(), bare_ms.end());
  std::printf("ratio (median) %.2fx  (target <= 1.5x)\n",
              capsa_ms[capsa_ms.size() / 2] / bare_ms[bare_ms.size() / 2]);
}
