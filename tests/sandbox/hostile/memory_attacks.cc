// capsa hostile worker — memory no rlimit counts: pages in memfds filled
// with write() (RLIMIT_AS sees mappings only), and kernel memory grown by
// creating empty files in /tmp (inodes and dentries, not file bytes). Only
// a memory cgroup bounds these.
//
// Each stops at a cap given as its argument and then reports "unbounded",
// so a sandbox without a cgroup does not take the shared machine down.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {
namespace {

long arg_or(const char* arg, long fallback) {
  return arg != nullptr ? std::strtol(arg, nullptr, 10) : fallback;
}

// Fills memfds 1 MiB per write() up to `arg` MiB in all: each memfd up to
// RLIMIT_FSIZE (then the next one), until a write or a memfd_create fails
// or the cap is reached. The fds stay open: the pages stay held.
int memfd_fill(const char* arg) {
  const long cap_mib = arg_or(arg, 256);
  static char chunk[1 << 20];
  std::memset(chunk, 0x5a, sizeof chunk);
  ::signal(SIGXFSZ, SIG_IGN);  // EFBIG at RLIMIT_FSIZE, then the next memfd
  report("memfd_fill filling cap_mib=%ld", cap_mib);
  long mib = 0;
  int fd = -1;
  while (mib < cap_mib) {
    if (fd < 0) {
      fd = static_cast<int>(::memfd_create("fill", 0));
      if (fd < 0) {
        report("memfd_fill limited mib=%ld memfd_create=%s", mib, outcome(-1, errno));
        return 0;
      }
    }
    const ssize_t n = ::write(fd, chunk, sizeof chunk);
    if (n == static_cast<ssize_t>(sizeof chunk)) {
      ++mib;
      continue;
    }
    if (n < 0 && errno == EFBIG) {  // this memfd is at RLIMIT_FSIZE: open another
      fd = -1;
      continue;
    }
    report("memfd_fill limited mib=%ld write=%s", mib, n < 0 ? outcome(-1, errno) : "short");
    return 0;
  }
  report("memfd_fill unbounded mib=%ld", mib);
  return 0;
}

// Creates empty files in /tmp until creation fails or `arg` files exist.
// Zero bytes each: the tmpfs size cap never applies, only the memory the
// kernel spends on inodes and dentries.
int inode_flood(const char* arg) {
  const long cap = arg_or(arg, 100000);
  report("inode_flood creating cap=%ld", cap);
  char name[64];
  for (long i = 0; i < cap; ++i) {
    std::snprintf(name, sizeof name, "/tmp/f%ld", i);
    const int fd = ::open(name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
      report("inode_flood limited files=%ld open=%s", i, outcome(-1, errno));
      return 0;
    }
    ::close(fd);
  }
  report("inode_flood unbounded files=%ld", cap);
  return 0;
}

// What the worker can see and touch of cgroups: lines of /proc/self/cgroup
// that name any cgroup but its namespace's root, whether a cgroup file
// system is reachable at /sys/fs/cgroup, and whether it may mount one.
int cgroup_view(const char*) {
  char buf[4096] = {};
  int outside = 0;
  const int fd = ::open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  const ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0) ::close(fd);
  for (char* line = buf; n > 0 && *line != '\0';) {
    char* end = std::strchr(line, '\n');
    if (end == nullptr) end = line + std::strlen(line);
    if (end - line < 2 || std::strncmp(end - 2, ":/", 2) != 0) ++outside;
    line = *end == '\0' ? end : end + 1;
  }
  const int sys = ::open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const int sys_err = errno;
  if (sys >= 0) ::close(sys);
  const long m = ::syscall(SYS_mount, "cgroup", "/tmp", "cgroup2", 0, nullptr);
  report("cgroup_view outside=%d sys_cgroup=%s mount=%s", n > 0 ? outside : -1,
         outcome(sys, sys_err), outcome(m, errno));
  return 0;
}

}  // namespace

const AttackEntry kMemoryAttacks[] = {
    {"cgroup_view", cgroup_view},
    {"memfd_fill", memfd_fill},
    {"inode_flood", inode_flood},
    {nullptr, nullptr},
};

}  // namespace hostile
