// spawn_bench [ITERATIONS]: median and p90 of
//   capsa:  spawn() -> first message from the worker on fd 3 (worker: the
//           sandbox test worker in "hello" mode, dynamically linked C++);
//   bare:   fork+exec of `bwrap --unshare-all --die-with-parent --new-session
//           --dev /dev --proc /proc --ro-bind /usr /usr (+ /lib /bin links)
//           /bin/true` -> its exit.
//   pool:   Pool::take() from a warm pool (sandbox/pool.h) -> the same first
//           message; the pool is refilled (wait_full) between samples, off
//           the measured path, so each sample is a hand-over, never a cold
//           fallback (checked: the bench fails if one was); "take" is the
//           part spent in take() (hand-over until the program was exec'ed).
//   copy:   the program cache (sandbox/program_copy.h): the first spawn of a
//           program version copies it (measured on this executable, copied
//           afresh to a private temp dir each time so each is a new
//           version), later spawns only find the copy ("hit").
// Interleaved, same run, same machine. Targets: capsa <= 1.5x bare; pool
// median <= 1 ms.
// Run as root, the bare bubblewrap keeps uid 0 in its one user namespace,
// while capsa's runs as 65534 (spawn() drops) with --uid 65534, which costs
// bubblewrap a second user namespace: the baseline is the cheaper one.
// bench/spawn/run.sh runs this several times, pinned and unpinned.
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "sandbox/host_file.h"
#include "sandbox/pool.h"
#include "sandbox/program_copy.h"
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

// Also records how long take() itself took (the hand-over until the
// program was exec'ed) in *take_ms.
double pool_once(sandbox::Pool& pool, double* take_ms) {
  if (!pool.wait_full(std::chrono::seconds(30))) {
    std::fprintf(stderr, "pool did not fill: %s\n", pool.stats().last_fill_error.c_str());
    std::exit(1);
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  Fd ours(sv[0]);
  auto t0 = Clock::now();
  auto w = pool.take(Fd(sv[1]));
  *take_ms = ms(Clock::now() - t0);
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
  std::printf("%-6s median %.3f ms  p90 %.3f ms  p99 %.3f ms  (n=%zu)\n", what, v[v.size() / 2],
              v[v.size() * 9 / 10], v[v.size() * 99 / 100], v.size());
}

}  // namespace

// The program cache's two costs, on this executable: a first copy (5 fresh
// versions) and a later spawn's lookup (N of the last one).
bool copy_cost() {
  char dir[] = "/tmp/capsa-copy-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return false;
  const std::string self = std::string(dir) + "/prog";
  std::vector<double> first_ms, hit_us;
  long size = 0;
  bool ok = true;
  for (int v = 0; v < 5 && ok; ++v) {
    ::unlink(self.c_str());  // a new inode each time: a new version
    std::error_code ec;
    ok = std::filesystem::copy_file("/proc/self/exe", self, ec);
    ok = ok && ::chmod(self.c_str(), 0755) == 0;
    auto fd = ok ? sandbox::open_host_file(sandbox::HostFileUse::kProgram, self,
                                           sandbox::sandbox_identity())
                 : capsa::Result<capsa::Fd>(capsa::Fd());
    ok = ok && fd.has_value();
    if (!ok) break;
    struct stat st {};
    ::fstat(fd->get(), &st);
    size = static_cast<long>(st.st_size);
    auto t0 = std::chrono::steady_clock::now();
    ok = sandbox::detail::program_copy(*fd, self).has_value();
    first_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    for (int i = 0; i < 100 && ok; ++i) {
      auto t1 = std::chrono::steady_clock::now();
      ok = sandbox::detail::program_copy(*fd, self).has_value();
      hit_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t1).count());
    }
  }
  ::unlink(self.c_str());
  ::rmdir(dir);
  if (!ok) {
    std::fprintf(stderr, "program copy failed\n");
    return false;
  }
  std::sort(first_ms.begin(), first_ms.end());
  std::sort(hit_us.begin(), hit_us.end());
  std::printf("copy %ld bytes: first median %.3f ms, later spawns median %.1f us\n", size,
              first_ms[first_ms.size() / 2], hit_us[hit_us.size() / 2]);
  return true;
}

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
  // One idle sandbox is enough: it is refilled between samples.
  auto pool = sandbox::Pool::create(*spec, 1);
  if (!pool) {
    std::fprintf(stderr, "%s\n", pool.error().to_string().c_str());
    return 1;
  }
  std::vector<double> capsa_ms, bare_ms, pool_ms, take_ms;
  double take = 0;
  for (int i = 0; i < 5; ++i) {  // warm-up: page cache, fork thread
    capsa_once(*spec);
    bare_once();
    pool_once(**pool, &take);
  }
  for (int i = 0; i < n; ++i) {
    capsa_ms.push_back(capsa_once(*spec));
    bare_ms.push_back(bare_once());
    pool_ms.push_back(pool_once(**pool, &take));
    take_ms.push_back(take);
  }
  if ((*pool)->stats().cold != 0) {
    std::fprintf(stderr, "a pool sample was a cold spawn\n");
    return 1;
  }
  report("capsa", capsa_ms);
  report("bare", bare_ms);
  report("pool", pool_ms);
  report("take", take_ms);  // of which take() (hand-over to exec'ed)
  std::sort(capsa_ms.begin(), capsa_ms.end());
  std::sort(bare_ms.begin(), bare_ms.end());
  std::sort(pool_ms.begin(), pool_ms.end());
  std::printf("ratio (median) %.2fx  (target <= 1.5x)\n",
              capsa_ms[capsa_ms.size() / 2] / bare_ms[bare_ms.size() / 2]);
  std::printf("pool/cold (median) %.3f  pool median %.3f ms (target <= 1 ms)\n",
              pool_ms[pool_ms.size() / 2] / capsa_ms[capsa_ms.size() / 2],
              pool_ms[pool_ms.size() / 2]);
  return copy_cost() ? 0 : 1;
}
