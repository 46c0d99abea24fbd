// capsa hostile worker — attacks on other processes: ptrace, kill,
// process_vm_readv of the supervisor or another worker, and a grandchild that
// tries to outlive the sandbox.
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {
namespace {

pid_t pid_arg(const char* arg) { return arg != nullptr ? static_cast<pid_t>(std::atol(arg)) : 1; }

// `arg` is a pid as the host sees it (the test's own, or another worker's).
// kill(pid, 0) says whether that pid names anything in our pid namespace.
int ptrace_attack(const char* arg) {
  pid_t pid = pid_arg(arg);
  long probe = ::kill(pid, 0);
  int probe_err = errno;
  long rc = ::ptrace(PTRACE_ATTACH, pid, nullptr, nullptr);
  int err = errno;
  // The sandbox's own pid 1 is the one process surely visible.
  long rc1 = ::ptrace(PTRACE_ATTACH, 1, nullptr, nullptr);
  int err1 = errno;
  report("ptrace kill0=%s attach=%s attach_pid1=%s", outcome(probe, probe_err), outcome(rc, err),
         outcome(rc1, err1));
  return 0;
}

// kill(-1): every process we may signal. In a private pid namespace that is
// nothing outside it.
int kill_all(const char*) {
  long rc = ::kill(-1, SIGKILL);
  int err = errno;
  report("kill_all kill=%s", outcome(rc, err));
  return 0;
}

int kill_pid(const char* arg) {
  long rc = ::kill(pid_arg(arg), SIGKILL);
  int err = errno;
  report("kill_pid kill=%s", outcome(rc, err));
  return 0;
}

int process_vm_readv_attack(const char* arg) {
  char buf[8];
  static char target[8];
  iovec local{buf, sizeof(buf)};
  iovec remote{target, sizeof(target)};
  long rc = ::syscall(SYS_process_vm_readv, pid_arg(arg), &local, 1, &remote, 1, 0);
  int err = errno;
  long rc1 = ::syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0);
  int err1 = errno;
  report("process_vm_readv read=%s read_pid1=%s", outcome(rc, err), outcome(rc1, err1));
  return 0;
}

// The grandchild: reports on the inherited bootstrap port, then waits
// forever.
int sleeper(const char*) {
  report("sleeper ready");
  for (;;) ::pause();
}

// Double-fork + setsid: a grandchild in its own session, no longer our
// child, carrying `marker` on its command line. The worker itself also stays
// alive, so the only thing that can end both is the sandbox tearing down.
int grandchild(const char* marker) {
  pid_t child = ::fork();
  if (child < 0) {
    int err = errno;
    report("grandchild fork=%s", outcome(-1, err));
    return 0;
  }
  if (child == 0) {
    ::setsid();
    // The grandchild inherits our argv, marker included: no exec needed
    // (and the filter forbids execve after the worker's own).
    if (::fork() == 0) return sleeper(marker);
    ::_exit(0);
  }
  ::waitpid(child, nullptr, 0);
  for (;;) ::pause();
}

}  // namespace

const AttackEntry kProcessAttacks[] = {
    {"ptrace", ptrace_attack},
    {"kill_all", kill_all},
    {"kill_pid", kill_pid},
    {"process_vm_readv", process_vm_readv_attack},
    {"sleeper", sleeper},
    {"grandchild", grandchild},
    {nullptr, nullptr},
};

}  // namespace hostile
