#include "sandbox/seccomp_policy.h"

#include <linux/prctl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>

#include "capabilities/sys.h"

namespace capsa::sandbox::detail {
namespace {

constexpr std::uint64_t kLow32 = 0xffffffffu;
constexpr std::uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                          CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                          CLONE_NEWNET | 0x80 /* CLONE_NEWTIME */;
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

std::string what(const char* call, const char* name, int rc) {
  return std::string(call) + "(" + name + "): " + std::strerror(-rc);
}

}  // namespace

const std::vector<const char*>& default_allowlist() {
  static const std::vector<const char*> names = {
      // I/O on fds the worker holds.
      "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
      "preadv2", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3",
      "fcntl", "flock", "fsync", "fdatasync", "ftruncate", "fadvise64", "sendfile",
      "copy_file_range", "splice", "tee",
      // Files it can see (read-only binds, its /tmp).
      "open", "openat", "openat2", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs",
      "fstatfs", "access", "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64",
      "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat",
      "rename", "renameat", "renameat2", "umask",
      // Memory.
      "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "msync", "mincore",
      "memfd_create",
      // Threads, processes of its own sandbox, synchronisation.
      "futex", "futex_waitv", "set_robust_list", "get_robust_list", "set_tid_address",
      "rseq", "sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler",
      "sched_get_priority_max", "sched_get_priority_min", "getpriority", "getcpu",
      "exit", "exit_group", "wait4", "waitid", "vfork", "fork",
      "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
      "getgroups", "getresuid", "getresgid", "getpgrp", "getpgid", "getsid",
      // Signals. Only processes of this sandbox's pid namespace are reachable,
      // and its pid 1 (the launcher) ignores them.
      "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
      "rt_sigsuspend", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "kill",
      "tkill", "tgkill", "pause", "alarm", "getitimer", "setitimer", "restart_syscall",
      // Time.
      "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
      "time", "times",
      // Event plumbing.
      "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
      "epoll_pwait2", "poll", "ppoll", "select", "pselect6", "eventfd", "eventfd2",
      "timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd", "signalfd4",
      "pipe", "pipe2",
      // Ports (already-connected AF_UNIX sockets).
      "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "sendto", "recvfrom", "shutdown",
      "getsockopt", "getsockname", "getpeername",
      // Miscellaneous read-only queries.
      "uname", "sysinfo", "getrusage", "getrlimit", "getrandom", "arch_prctl",
  };
  return names;
}

scmp_filter_ctx build_filter(const std::vector<std::string>& extra_syscalls,
                             const char* exec_path, std::string* error) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_NOTIFY);
  if (ctx == nullptr) {
    *error = "seccomp_init failed";
    return nullptr;
  }
  auto fail = [&](std::string msg) -> scmp_filter_ctx {
    *error = std::move(msg);
    seccomp_release(ctx);
    return nullptr;
  };
  // Another ABI (i386 via int 0x80, x32) is killed, never notified: the
  // notification path decodes x86_64 numbers only.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS); rc < 0) {
    return fail(what("seccomp_attr_set", "ACT_BADARCH", rc));
  }
  // bubblewrap already set no_new_privs; libseccomp must not need privileges.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1); rc < 0) {
    return fail(what("seccomp_attr_set", "CTL_NNP", rc));
  }
  // A binary tree of syscall numbers instead of a linear chain: every
  // allowed call in the worker pays O(log n) filter instructions.
  (void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  auto allow = [&](const char* name) -> int {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return 0;  // not on this libseccomp/arch
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  };
  for (const char* name : default_allowlist()) {
    if (int rc = allow(name); rc < 0) return fail(what("seccomp_rule_add", name, rc));
  }
  for (const auto& name : extra_syscalls) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) return fail("unknown syscall name: " + name);
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc < 0 && rc != -EEXIST) {
      return fail(what("seccomp_rule_add", name.c_str(), rc));
    }
  }
  struct Rule {
    const char* name;
    int nr;
    scmp_arg_cmp cmp;
  };
  const Rule rules[] = {
      {"clone", SCMP_SYS(clone), SCMP_A0(SCMP_CMP_MASKED_EQ, kNamespaceFlags, 0)},
      {"socketpair", SCMP_SYS(socketpair), SCMP_A0(SCMP_CMP_MASKED_EQ, kLow32, AF_UNIX)},
      {"ioctl", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, kLow32, TCGETS)},
      {"ioctl", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, kLow32, TIOCGWINSZ)},
      {"ioctl", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, kLow32, TIOCGPGRP)},
      {"ioctl", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, kLow32, FIONREAD)},
      {"ioctl", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, kLow32, FIONBIO)},
      {"ioctl", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, kLow32, FIOCLEX)},
      {"ioctl", SCMP_SYS(ioctl), SCMP_A1(SCMP_CMP_MASKED_EQ, kLow32, FIONCLEX)},
      {"prctl", SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_MASKED_EQ, kLow32, PR_SET_NAME)},
      {"prctl", SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_MASKED_EQ, kLow32, PR_GET_NAME)},
      {"prctl", SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_MASKED_EQ, kLow32, PR_GET_DUMPABLE)},
      {"prctl", SCMP_SYS(prctl), SCMP_A0(SCMP_CMP_MASKED_EQ, kLow32, PR_SET_VMA)},
      {"prlimit64", SCMP_SYS(prlimit64), SCMP_A2(SCMP_CMP_EQ, 0)},
      {"execve", SCMP_SYS(execve),
       SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(reinterpret_cast<std::uintptr_t>(exec_path)))},
  };
  for (const Rule& r : rules) {
    // A spec that allows the whole call makes the conditional rule moot.
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r.nr, 1, r.cmp); rc < 0 && rc != -EEXIST) {
      bool unconditional = false;
      for (const auto& e : extra_syscalls) unconditional |= (e == r.name);
      if (!unconditional) return fail(what("seccomp_rule_add", r.name, rc));
    }
  }
  // Returning ENOSYS (not EPERM) makes glibc fall back from clone3 to clone,
  // whose flags the rule above can check.
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
      rc < 0 && rc != -EEXIST) {
    bool unconditional = false;
    for (const auto& e : extra_syscalls) unconditional |= (e == "clone3");
    if (!unconditional) return fail(what("seccomp_rule_add", "clone3", rc));
  }
  return ctx;
}

Result<CompiledFilter> compile_filter(const std::vector<std::string>& extra_syscalls) {
  std::string error;
  scmp_filter_ctx ctx = build_filter(
      extra_syscalls, reinterpret_cast<const char*>(static_cast<std::uintptr_t>(kExecSentinel)),
      &error);
  if (ctx == nullptr) return make_error(Errc::kFailed, "seccomp filter build failed: " + error);
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  // libseccomp 2.5 exports to an fd only (seccomp_export_bpf_mem is 2.6).
  CAPSA_ASSIGN_OR_RETURN(const Fd mem, sys_fd("memfd_create", "seccomp export", [] {
                           return ::memfd_create("capsa-seccomp-bpf", MFD_CLOEXEC);
                         }));
  if (int rc = seccomp_export_bpf(ctx, mem.get()); rc < 0) {
    return make_error(Errc::kFailed, "seccomp_export_bpf failed", -rc);
  }
  CAPSA_ASSIGN_OR_RETURN(const off_t size, sys("lseek", "seccomp export", [&] {
                           return ::lseek(mem.get(), 0, SEEK_END);
                         }));
  const auto bytes = static_cast<std::size_t>(size);
  if (bytes == 0 || bytes % sizeof(sock_filter) != 0 ||
      bytes / sizeof(sock_filter) > kMaxFilterInstructions) {
    return make_error(Errc::kFailed,
                      "seccomp_export_bpf produced " + std::to_string(bytes) + " bytes");
  }
  CompiledFilter out;
  out.program.resize(bytes / sizeof(sock_filter));
  std::size_t done = 0;
  while (done < bytes) {
    CAPSA_ASSIGN_OR_RETURN(const ssize_t n, sys("pread", "seccomp export", [&] {
                             return ::pread(mem.get(),
                                            reinterpret_cast<char*>(out.program.data()) + done,
                                            bytes - done, static_cast<off_t>(done));
                           }));
    if (n == 0) return make_error(Errc::kFailed, "seccomp export: short read");
    done += static_cast<std::size_t>(n);
  }
  // Locate the execve rule: each half of the sentinel must be the constant
  // of exactly one JEQ, else we would not know what the launcher patches.
  constexpr std::uint16_t kJeq = BPF_JMP | BPF_JEQ | BPF_K;
  const auto hi = static_cast<std::uint32_t>(kExecSentinel >> 32);
  const auto lo = static_cast<std::uint32_t>(kExecSentinel & 0xffffffffu);
  int hits_hi = 0, hits_lo = 0, any = 0;
  for (std::size_t i = 0; i < out.program.size(); ++i) {
    const sock_filter& insn = out.program[i];
    if (insn.k == hi || insn.k == lo) ++any;
    if (insn.code != kJeq) continue;
    if (insn.k == hi) {
      ++hits_hi;
      out.exec_hi = static_cast<std::uint32_t>(i);
    } else if (insn.k == lo) {
      ++hits_lo;
      out.exec_lo = static_cast<std::uint32_t>(i);
    }
  }
  const bool execve_allowed =
      std::find(extra_syscalls.begin(), extra_syscalls.end(), "execve") != extra_syscalls.end();
  if (execve_allowed && any == 0) {
    // The spec allows every execve: the conditional rule was dropped.
    out.exec_hi = out.exec_lo = kNoExecRule;
    return out;
  }
  if (hits_hi != 1 || hits_lo != 1 || any != 2) {
    return make_error(Errc::kFailed, "seccomp filter: cannot locate the execve rule (" +
                                         std::to_string(hits_hi) + "/" + std::to_string(hits_lo) +
                                         "/" + std::to_string(any) + " sentinel hits)");
  }
  return out;
}

Result<std::shared_ptr<const CompiledFilter>> cached_filter(
    const std::vector<std::string>& extra_syscalls) {
  // Process-wide by necessity (spawn() has no context object to hold it);
  // never destroyed, like the fork thread, so no worker can see it die.
  static std::mutex* mu = new std::mutex;
  static auto* cache = new std::map<std::vector<std::string>, std::shared_ptr<const CompiledFilter>>;
  std::vector<std::string> key = extra_syscalls;
  std::sort(key.begin(), key.end());
  key.erase(std::unique(key.begin(), key.end()), key.end());
  // Compiled under the lock: libseccomp keeps lazily initialised global
  // state (API level, arch tables), and a compile (well under a millisecond)
  // is rare enough that serialising it costs nothing that matters.
  std::lock_guard lock(*mu);
  if (auto it = cache->find(key); it != cache->end()) return it->second;
  CAPSA_ASSIGN_OR_RETURN(CompiledFilter compiled, compile_filter(key));
  auto shared = std::make_shared<const CompiledFilter>(std::move(compiled));
  if (cache->size() >= kMaxCachedFilters) cache->clear();
  cache->emplace(std::move(key), shared);
  return shared;
}

}  // namespace capsa::sandbox::detail
