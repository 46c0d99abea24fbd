// capsa hostile worker — resource exhaustion: fork bomb, memory bomb, CPU
// spin, sleeping past the wall clock, filling /tmp, exhausting fds.
//
// Each stops itself at a cap far above any limit the suite configures and
// then reports "unbounded", so a sandbox that fails to limit fails the test
// instead of exhausting the shared machine.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {
namespace {

constexpr int kForkCap = 1024;
constexpr long kMemoryCapMib = 2048;
constexpr long kTmpCapMib = 1024;
constexpr long kFdCap = 1L << 20;
constexpr int kCpuCapSeconds = 30;
constexpr int kWallCapSeconds = 60;

// Forks children that just wait, until fork fails or the cap is reached.
// Then kills them, so the report is the worker's last act.
int fork_bomb(const char*) {
  static pid_t kids[kForkCap];
  int n = 0;
  int err = 0;
  for (; n < kForkCap; ++n) {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (;;) ::pause();
    }
    if (pid < 0) {
      err = errno;
      break;
    }
    kids[n] = pid;
  }
  for (int i = 0; i < n; ++i) ::kill(kids[i], SIGKILL);
  for (int i = 0; i < n; ++i) ::waitpid(kids[i], nullptr, 0);
  if (n == kForkCap) {
    report("fork_bomb unbounded forks=%d", n);
  } else {
    report("fork_bomb limited forks=%d fork=%s", n, outcome(-1, err));
  }
  return 0;
}

// Maps and touches 16 MiB at a time until mmap fails (an address-space
// limit) or the process is killed (a memory cgroup).
int memory_bomb(const char*) {
  constexpr std::size_t kChunk = 16UL << 20;
  long mib = 0;
  while (mib < kMemoryCapMib) {
    void* p = ::mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      report("memory_bomb limited mib=%ld mmap=%s", mib, outcome(-1, err));
      return 0;
    }
    std::memset(p, 0xa5, kChunk);
    mib += 16;
  }
  report("memory_bomb unbounded mib=%ld", mib);
  return 0;
}

// The way an ordinary C++ program meets the limit: operator new throws,
// nobody catches, std::terminate aborts. Touches what it gets.
int memory_bomb_new(const char*) {
  constexpr std::size_t kChunk = 16UL << 20;
  report("memory_bomb_new allocating");
  for (long mib = 0; mib < kMemoryCapMib; mib += 16) {
    char* p = new char[kChunk];
    std::memset(p, 0xa5, kChunk);
  }
  report("memory_bomb_new unbounded");
  return 0;
}

double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Spins, ignoring SIGXCPU (an attacker would), so only a hard limit or the
// supervisor can stop it.
int cpu_spin(const char*) {
  ::signal(SIGXCPU, SIG_IGN);
  report("cpu_spin spinning");
  volatile unsigned long x = 0;
  while (cpu_seconds() < kCpuCapSeconds) {
    for (int i = 0; i < 1000000; ++i) x = x + 1;
  }
  report("cpu_spin unbounded");
  return 0;
}

// Sleeps: no CPU used, only the supervisor's wall-clock deadline stops it.
int wall(const char*) {
  report("wall sleeping");
  timespec ts{kWallCapSeconds, 0};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  report("wall unbounded");
  return 0;
}

// Writes 1 MiB at a time into /tmp until the write fails. SIGXFSZ is ignored
// so a file-size rlimit shows as EFBIG rather than a kill.
int fill_tmp(const char*) {
  ::signal(SIGXFSZ, SIG_IGN);
  int fd = ::open("/tmp/capsa_fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = errno;
  if (fd < 0) {
    report("fill_tmp open=%s", outcome(fd, err));
    return 0;
  }
  static char chunk[1 << 20];
  std::memset(chunk, 'x', sizeof(chunk));
  long written = 0;  // bytes
  while (written < (kTmpCapMib << 20)) {
    ssize_t n = ::write(fd, chunk, sizeof(chunk));
    if (n < 0) {
      err = errno;
      report("fill_tmp limited mib=%ld write=%s", written >> 20, outcome(-1, err));
      ::unlink("/tmp/capsa_fill");
      return 0;
    }
    if (n == 0) break;
    written += n;
  }
  ::unlink("/tmp/capsa_fill");
  report("fill_tmp unbounded mib=%ld", written >> 20);
  return 0;
}

// dup()s the bootstrap port until the fd table is full.
int fds(const char*) {
  long n = 0;
  int err = 0;
  for (; n < kFdCap; ++n) {
    if (::dup(kPortFd) < 0) {
      err = errno;
      break;
    }
  }
  ::close_range(kPortFd + 1, ~0U, 0);
  if (n == kFdCap) {
    report("fds unbounded opened=%ld", n);
  } else {
    report("fds limited opened=%ld dup=%s", n, outcome(-1, err));
  }
  return 0;
}

// Touches `arg` MiB (a resident set that would read as a memory limit), then
// writes past the file-size limit with SIGXFSZ at its default action: the
// kernel kills it with SIGXFSZ.
int fsize_kill(const char* arg) {
  const long mib = arg != nullptr ? std::atol(arg) : 0;
  const std::size_t bytes = static_cast<std::size_t>(mib) << 20;
  void* resident = bytes > 0 ? ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                             : nullptr;
  if (resident == MAP_FAILED) {
    report("fsize_kill mmap=%s", outcome(-1, errno));
    return 0;
  }
  if (resident != nullptr) std::memset(resident, 'x', bytes);
  report("fsize_kill resident_mib=%ld", mib);
  int fd = ::open("/tmp/capsa_fsize", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  static char chunk[1 << 20];
  for (int i = 0; fd >= 0 && i < 64; ++i) {
    if (::write(fd, chunk, sizeof(chunk)) < 0) break;
  }
  report("fsize_kill survived errno=%s", outcome(-1, errno));
  return 0;
}

}  // namespace

const AttackEntry kLimitAttacks[] = {
    {"fork_bomb", fork_bomb},
    {"memory_bomb", memory_bomb},
    {"memory_bomb_new", memory_bomb_new},
    {"cpu_spin", cpu_spin},
    {"wall", wall},
    {"fill_tmp", fill_tmp},
    {"fsize_kill", fsize_kill},
    {"fds", fds},
    {nullptr, nullptr},
};

}  // namespace hostile
