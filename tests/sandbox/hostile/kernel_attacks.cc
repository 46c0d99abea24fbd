// capsa hostile worker — kernel attack surface: mount, namespaces, bpf,
// io_uring, perf, keys, userfaultfd, personality, 32-bit syscalls, TIOCSTI.
// Each is a raw syscall; an allowlist filter should never let most of them
// reach the kernel at all.
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {
namespace {

int mount_tmpfs(const char*) {
  long rc = ::mount("none", "/tmp", "tmpfs", 0, nullptr);
  int err = errno;
  report("mount mount=%s", outcome(rc, err));
  return 0;
}

int unshare_user(const char*) {
  long rc = ::syscall(SYS_unshare, CLONE_NEWUSER);
  int err = errno;
  report("unshare unshare=%s", outcome(rc, err));
  return 0;
}

// Joining a mount namespace (our own: the only one we can open; the kernel
// would want CAP_SYS_ADMIN over it). setns is called even if the open fails,
// so the filter always sees the call.
int setns_mnt(const char*) {
  int fd = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  int open_err = errno;
  long rc = ::syscall(SYS_setns, fd, CLONE_NEWNS);
  int err = errno;
  report("setns open=%s setns=%s", outcome(fd, open_err), outcome(rc, err));
  return 0;
}

int clone_newuser(const char*) {
  long rc = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  int err = errno;
  if (rc == 0) ::_exit(0);
  if (rc > 0) ::waitpid(static_cast<pid_t>(rc), nullptr, 0);
  report("clone_newuser clone=%s", outcome(rc, err));
  return 0;
}

int bpf(const char*) {
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  long rc = ::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
  int err = errno;
  report("bpf bpf=%s", outcome(rc, err));
  return 0;
}

int io_uring(const char*) {
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  long rc = ::syscall(SYS_io_uring_setup, 8, &params);
  int err = errno;
  report("io_uring io_uring_setup=%s", outcome(rc, err));
  return 0;
}

int perf(const char*) {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof(attr);
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  long rc = ::syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  int err = errno;
  report("perf perf_event_open=%s", outcome(rc, err));
  return 0;
}

int keyctl(const char*) {
  long rc = ::syscall(SYS_add_key, "user", "capsa", "x", 1, KEY_SPEC_PROCESS_KEYRING);
  int err = errno;
  long rc2 = ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
  int err2 = errno;
  report("keyctl add_key=%s keyctl=%s", outcome(rc, err), outcome(rc2, err2));
  return 0;
}

int userfaultfd(const char*) {
  long rc = ::syscall(SYS_userfaultfd, O_CLOEXEC);
  int err = errno;
  report("userfaultfd userfaultfd=%s", outcome(rc, err));
  return 0;
}

// READ_IMPLIES_EXEC would make every readable mapping executable.
int personality_attack(const char*) {
  long rc = ::syscall(SYS_personality, READ_IMPLIES_EXEC);
  int err = errno;
  long now = ::syscall(SYS_personality, 0xffffffffUL);
  report("personality personality=%s read_implies_exec=%d", outcome(rc, err),
         now >= 0 && (now & READ_IMPLIES_EXEC) != 0 ? 1 : 0);
  return 0;
}

// A 32-bit syscall through int 0x80: the x86_64 filter does not cover the
// i386 table, so the filter must kill on a foreign architecture. The report
// before the call lets the test see that the worker got this far.
int int80(const char*) {
  report("int80 calling");
  long ret = 20;  // __NR_getpid in the i386 table
  asm volatile("int $0x80" : "+a"(ret) : : "memory");
  report("int80 returned=%ld", ret);
  return 0;
}

// TIOCSTI pushes bytes into a terminal's input queue: typed as if by the
// user of the terminal, outside the sandbox. Tried on the first of stdin,
// stdout, stderr that is a terminal (the test lends a pty as one of them);
// then /dev/tty, the controlling terminal, which a new session lacks.
int tiocsti(const char*) {
  int tty = -1;
  for (int fd = 0; fd <= 2 && tty < 0; ++fd) {
    if (::isatty(fd) == 1) tty = fd;
  }
  char c = '#';
  long rc = ::ioctl(tty, TIOCSTI, &c);
  int err = errno;
  int tty_fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  int tty_err = errno;
  report("tiocsti tty_fd=%d ioctl=%s dev_tty=%s", tty, outcome(rc, err), outcome(tty_fd, tty_err));
  return 0;
}

}  // namespace

const AttackEntry kKernelAttacks[] = {
    {"mount", mount_tmpfs},
    {"unshare", unshare_user},
    {"setns", setns_mnt},
    {"clone_newuser", clone_newuser},
    {"bpf", bpf},
    {"io_uring", io_uring},
    {"perf", perf},
    {"keyctl", keyctl},
    {"userfaultfd", userfaultfd},
    {"personality", personality_attack},
    {"int80", int80},
    {"tiocsti", tiocsti},
    {nullptr, nullptr},
};

}  // namespace hostile
