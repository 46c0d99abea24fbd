// capsa-launcher: the small trusted program that bubblewrap runs as pid 1 of
// the sandbox (--as-pid-1). See sandbox/launcher_protocol.h for its fds.
//
// Why pid 1 and a fork rather than a plain exec:
//   - the kernel kills every process of a pid namespace when its pid 1 exits,
//     so descendants that setsid() or double-fork die with the worker;
//   - pid 1 ignores signals from inside its namespace (even SIGKILL), so the
//     worker cannot kill its own monitor to hide its exit status;
//   - the launcher waits for the worker itself, so it can report the exact
//     status (bubblewrap reports a signal as 128+N, ambiguous with exit
//     codes) and the rusage of the whole tree it reaped.
// The launcher is not under the seccomp filter (it never runs worker code)
// and makes itself non-dumpable, so the worker (same uid, no capabilities)
// cannot ptrace it or open its /proc/1/mem or /proc/1/fd.
//
// Start-up cost matters (it is on every spawn's critical path), so the
// launcher is linked statically (no ld.so, no shared-library relocation)
// and does not build the seccomp filter: the supervisor compiled it once
// (seccomp_policy.h) and sends the BPF program in the config. The launcher
// only pins the execve rule to its own path pointer and installs it with the
// raw seccomp(2) call.
//
// The worker is started with clone(CLONE_VM | CLONE_VFORK): no copy of the
// launcher's page tables and no copy-on-write faults in the child, and the
// launcher is suspended until the child has exec'ed or exited, which is all
// it would do meanwhile anyway. The child is a separate process (its own fd
// table, rlimits, credentials and seccomp filter: none of CLONE_FILES,
// CLONE_THREAD, CLONE_SIGHAND), it only shares memory, on a stack of its
// own; the launcher has no signal handlers that could run in it. It may
// allocate (the parent is suspended, single-threaded). After the filter is
// installed it only calls sendmsg, close, execve, write and _exit, all in
// the allowlist (execve only with the pinned pointer); a pooled sandbox's
// child also recvmsg, fcntl and fstat while it waits for its hand-over
// (wait_for_hand_over), in the allowlist too.
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

#include "capabilities/scm_rights.h"
#include "sandbox/launcher_protocol.h"

namespace {

using capsa::sandbox::detail::Stage;
using capsa::sandbox::detail::StatusRecord;
using capsa::sandbox::detail::StatusType;
namespace d = capsa::sandbox::detail;

void send_record(const StatusRecord& rec, int fd_to_pass) {
  iovec iov{const_cast<StatusRecord*>(&rec), sizeof rec};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  capsa::OneFdControl control;
  if (fd_to_pass >= 0) control.attach(msg, fd_to_pass);
  while (::sendmsg(d::kStatusFd, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void fail(Stage stage, int err, const char* text) {
  StatusRecord rec;
  rec.type = static_cast<std::uint32_t>(StatusType::kError);
  rec.stage = static_cast<std::uint32_t>(stage);
  rec.err = err;
  std::snprintf(rec.text, sizeof rec.text, "%s", text);
  send_record(rec, -1);
  ::_exit(126);
}

bool read_config(std::vector<std::uint8_t>* out) {
  struct stat st {};
  if (::fstat(d::kConfigFd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
      static_cast<std::uint64_t>(st.st_size) > d::kMaxConfigBytes) {
    return false;
  }
  out->resize(static_cast<std::size_t>(st.st_size));
  std::size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::pread(d::kConfigFd, out->data() + done, out->size() - done,
                        static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

int set_limit(int resource, std::uint64_t soft, std::uint64_t hard) {
  rlimit rl{soft == 0 ? RLIM_INFINITY : soft, hard == 0 ? RLIM_INFINITY : hard};
  return ::setrlimit(resource, &rl);
}

// The program path at a random address, read-only: the one pointer the
// filter lets execve take. After the exec the worker's address space is new
// and nothing in it tells where that address was; to exec again it would
// have to guess the exact 64-bit value (a page among 2^35 - 2^20 in
// [4 GiB, 128 TiB), an 8-byte-aligned offset among up to 2^10 in two pages),
// and each wrong guess is a violation reported to the supervisor (and fatal
// under ViolationAction::kKill). nullptr on failure, errno set.
constexpr std::size_t kPage = 4096, kSpan = 2 * kPage;
const char* place_exec_path(const std::string& program, void** base) {
  if (program.size() + 1 > kSpan) {
    errno = ENAMETOOLONG;
    return nullptr;
  }
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::uint64_t r[2];
    if (::getrandom(r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) return nullptr;
    constexpr std::uint64_t kFirstPage = 1ull << 20, kLastPage = (1ull << 35) - 2;
    std::uint64_t page = kFirstPage + r[0] % (kLastPage - kFirstPage);
    auto* want = reinterpret_cast<void*>(page * kPage);
    // MAP_FIXED_NOREPLACE: a collision with an existing mapping fails with
    // EEXIST (older kernels treat the address as a hint: checked below).
    void* got = ::mmap(want, kSpan, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (got == MAP_FAILED) {
      if (errno == EEXIST) continue;
      return nullptr;
    }
    if (got != want) {
      ::munmap(got, kSpan);
      continue;
    }
    std::size_t slots = (kSpan - (program.size() + 1)) / 8 + 1;
    char* at = static_cast<char*>(got) + 8 * (r[1] % slots);
    std::memcpy(at, program.c_str(), program.size() + 1);
    *base = got;
    if (::mprotect(got, kSpan, PROT_READ) != 0) return nullptr;
    return at;
  }
  errno = EEXIST;
  return nullptr;
}

// What the launcher hands its clone child, and what the child leaves for it.
struct ChildArgs {
  d::LauncherConfig* cfg = nullptr;
  int exec_pipe = -1;     // the write end (the child closes the read end)
  int exec_pipe_read = -1;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  void* exec_page = nullptr;  // set by the child: the launcher unmaps it
};

// The clone child's stack. 256 KiB: fail() formats with snprintf.
alignas(64) char g_child_stack[256 * 1024];

// A pooled sandbox's child, under its filter and limits, holding fds 0, 4
// and 5 only: blocks until the supervisor hands over this worker's fds
// (launcher_protocol.h, HandOverRecord). Every call here is in the worker's
// allowlist (recvmsg, fstat, fcntl, sendmsg, _exit): waiting needs nothing
// the worker would not have anyway. The fds must be exactly three, at 1, 2
// and 3 (the lowest free numbers, so nothing else was open), 1 and 2
// writable, 3 a socket; anything else ends the child, and with it the
// sandbox: a half-handed-over sandbox never runs the program. End-of-file
// (the supervisor dropped it) ends it quietly.
void wait_for_hand_over() {
  d::HandOverRecord rec{};
  char extra = 0;
  iovec iov[2] = {{&rec, sizeof rec}, {&extra, 1}};
  // Room for one fd more than expected, so that a fourth is seen (and
  // refused) rather than silently dropped by the kernel.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (d::kHandOverFds + 1))] = {};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(d::kStatusFd, &msg, 0)) < 0 && errno == EINTR) {
  }
  if (n == 0) ::_exit(0);
  if (n < 0) fail(Stage::kHandOver, errno, "hand-over: recvmsg");
  const cmsghdr* c = CMSG_FIRSTHDR(&msg);
  int fds[d::kHandOverFds] = {-1, -1, -1};
  bool ok = n == static_cast<ssize_t>(sizeof rec) && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0 &&
            rec.magic == d::kHandOverMagic && rec.fds == d::kHandOverFds && c != nullptr &&
            c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof fds) && CMSG_NXTHDR(&msg, const_cast<cmsghdr*>(c)) == nullptr;
  if (!ok) fail(Stage::kHandOver, 0, "hand-over: not one record with exactly three fds");
  std::memcpy(fds, CMSG_DATA(c), sizeof fds);
  if (fds[0] != STDOUT_FILENO || fds[1] != STDERR_FILENO || fds[2] != d::kBootstrapFd) {
    fail(Stage::kHandOver, 0, "hand-over: fds not at 1, 2 and 3");
  }
  for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ((fl & O_ACCMODE) != O_WRONLY && (fl & O_ACCMODE) != O_RDWR)) {
      fail(Stage::kHandOver, errno, "hand-over: stdout or stderr not writable");
    }
  }
  struct stat st {};
  if (::fstat(d::kBootstrapFd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    fail(Stage::kHandOver, errno, "hand-over: bootstrap is not a socket");
  }
  StatusRecord accepted;
  accepted.type = static_cast<std::uint32_t>(StatusType::kAccepted);
  send_record(accepted, -1);
}

// In the clone child: exec path, limits, filter, listener hand-off, exec.
[[noreturn]] void run_worker(ChildArgs& a) {
  d::LauncherConfig& cfg = *a.cfg;
  const int exec_pipe = a.exec_pipe;
  char* const* argv = a.argv;
  char* const* envp = a.envp;
  // Before RLIMIT_AS, so a small address-space limit cannot make it fail.
  const char* exec_path = place_exec_path(cfg.program, &a.exec_page);
  if (exec_path == nullptr) fail(Stage::kExecPath, errno, "cannot place the program path");
  if (!d::pin_exec_pointer(cfg.filter, reinterpret_cast<std::uintptr_t>(exec_path))) {
    fail(Stage::kSeccompLoad, 0, "filter: execve rule not at the given indices");
  }
  const auto& l = cfg.limits;
  // Hard CPU limit one second past the soft one: SIGXCPU first (catchable),
  // then SIGKILL if the worker ignores it.
  if (set_limit(RLIMIT_AS, l.address_space_bytes, l.address_space_bytes) != 0 ||
      set_limit(RLIMIT_CPU, l.cpu_seconds, l.cpu_seconds == 0 ? 0 : l.cpu_seconds + 1) != 0 ||
      set_limit(RLIMIT_NPROC, l.max_processes, l.max_processes) != 0 ||
      set_limit(RLIMIT_NOFILE, l.max_open_files, l.max_open_files) != 0 ||
      set_limit(RLIMIT_FSIZE, l.max_file_size_bytes, l.max_file_size_bytes) != 0) {
    fail(Stage::kRlimit, errno, "setrlimit failed");
  }
  rlimit no_core{0, 0};
  if (::setrlimit(RLIMIT_CORE, &no_core) != 0) fail(Stage::kRlimit, errno, "RLIMIT_CORE");
  // Everything the worker must not hold is gone before the filter loads:
  // keep 0..3 (1 and 2 now the spec's stdout/stderr), the exec-error pipe
  // (as fd 4, close-on-exec) and the status socket (fd 5, close-on-exec).
  // Pooled: 1..3 stay free for the hand-over (wait_for_hand_over).
  if (cfg.pooled) {
    if (::dup3(exec_pipe, d::kConfigFd, O_CLOEXEC) < 0 ||
        ::fcntl(d::kStatusFd, F_SETFD, FD_CLOEXEC) != 0 ||
        ::close_range(STDOUT_FILENO, d::kBootstrapFd, 0) != 0 ||
        ::close_range(d::kStatusFd + 1, ~0u, 0) != 0) {
      fail(Stage::kConfig, errno, "fd setup failed");
    }
  } else if (::dup2(d::kStdoutFd, STDOUT_FILENO) < 0 || ::dup2(d::kStderrFd, STDERR_FILENO) < 0 ||
             ::dup3(exec_pipe, d::kConfigFd, O_CLOEXEC) < 0 ||
             ::fcntl(d::kStatusFd, F_SETFD, FD_CLOEXEC) != 0 ||
             ::close_range(d::kStatusFd + 1, ~0u, 0) != 0) {
    fail(Stage::kConfig, errno, "fd setup failed");
  }
  // bubblewrap set no_new_privs already; seccomp(2) without CAP_SYS_ADMIN
  // requires it, so make sure rather than depend on it.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    fail(Stage::kSeccompLoad, errno, "PR_SET_NO_NEW_PRIVS");
  }
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(cfg.filter.program.size());
  prog.filter = cfg.filter.program.data();
  // NEW_LISTENER: the filter's SECCOMP_RET_USER_NOTIF calls go to the fd
  // this returns, which only the supervisor will hold.
  long listener = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                            SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0) fail(Stage::kSeccompLoad, errno, "seccomp(SECCOMP_SET_MODE_FILTER)");
  StatusRecord rec;
  rec.type = static_cast<std::uint32_t>(StatusType::kListener);
  send_record(rec, static_cast<int>(listener));
  ::close(static_cast<int>(listener));  // the worker program never holds its own listener
  if (cfg.pooled) wait_for_hand_over();
  ::execve(exec_path, argv, envp);
  int err = errno;
  ssize_t ignored = ::write(d::kConfigFd, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

int main() {
  // Non-dumpable: /proc/1/{mem,fd,environ} and ptrace are closed to the
  // worker even though it runs under the same uid.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Nothing above fd 8 is ours (launcher_protocol.h): fd 9 is our own
  // executable, through which bubblewrap exec'ed us, and whatever else
  // bubblewrap may have left open. The worker child would close them too;
  // pid 1 holds none either.
  ::close_range(d::kStderrFd + 1, ~0u, 0);
  std::vector<std::uint8_t> raw;
  if (!read_config(&raw)) fail(Stage::kConfig, errno, "cannot read config fd");
  auto cfg = d::decode_config(raw);
  if (!cfg) fail(Stage::kConfig, 0, cfg.error().message.c_str());
  std::vector<char*> argv = c_strings(cfg->argv);
  std::vector<char*> envp = c_strings(cfg->env);

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) fail(Stage::kFork, errno, "pipe2");
  ChildArgs args;
  args.cfg = &*cfg;
  args.exec_pipe = pipefd[1];
  args.exec_pipe_read = pipefd[0];
  args.argv = argv.data();
  args.envp = envp.data();
  pid_t child = ::clone(
      [](void* p) -> int {
        auto* a = static_cast<ChildArgs*>(p);
        ::close(a->exec_pipe_read);
        run_worker(*a);
      },
      g_child_stack + sizeof g_child_stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  if (child < 0) fail(Stage::kFork, errno, "clone");
  // The child has exec'ed (or died): the path copy it placed in our shared
  // memory is of no use to us, and its address is best kept nowhere.
  if (args.exec_page != nullptr) ::munmap(args.exec_page, kSpan);
  // The launcher must not hold the worker's bootstrap port, the config or
  // its output pipes (the supervisor sees end-of-file on a kPipe output
  // when the worker's tree has closed it, not when pid 1 exits).
  ::close(pipefd[1]);
  ::close(d::kConfigFd);
  // Pooled: bubblewrap passed no 3, 7 or 8 (and the pipe may sit at 3).
  if (!cfg->pooled) {
    ::close(d::kBootstrapFd);
    ::close(d::kStdoutFd);
    ::close(d::kStderrFd);
  }

  int exec_err = 0;
  ssize_t n;
  while ((n = ::read(pipefd[0], &exec_err, sizeof exec_err)) < 0 && errno == EINTR) {
  }
  ::close(pipefd[0]);
  if (n > 0) {
    ::waitpid(child, nullptr, 0);
    fail(Stage::kExec, exec_err, cfg->program.c_str());
  }
  StatusRecord started;
  started.type = static_cast<std::uint32_t>(StatusType::kStarted);
  send_record(started, -1);

  // Reap everything (orphans are reparented to us) until the worker exits.
  siginfo_t info{};
  for (;;) {
    siginfo_t si{};
    if (::waitid(P_ALL, 0, &si, WEXITED) != 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: cannot happen before the worker is reaped
    }
    if (si.si_pid == child) {
      info = si;
      break;
    }
  }
  rusage ru{};
  ::getrusage(RUSAGE_CHILDREN, &ru);
  StatusRecord exit_rec;
  exit_rec.type = static_cast<std::uint32_t>(StatusType::kExit);
  exit_rec.wait_code = info.si_code;
  exit_rec.wait_status = info.si_status;
  exit_rec.utime_us = static_cast<std::uint64_t>(ru.ru_utime.tv_sec) * 1000000u +
                      static_cast<std::uint64_t>(ru.ru_utime.tv_usec);
  exit_rec.stime_us = static_cast<std::uint64_t>(ru.ru_stime.tv_sec) * 1000000u +
                      static_cast<std::uint64_t>(ru.ru_stime.tv_usec);
  exit_rec.maxrss_kb = static_cast<std::uint64_t>(ru.ru_maxrss);
  send_record(exit_rec, -1);
  // Our exit ends the pid namespace: the kernel SIGKILLs whatever is left.
  if (info.si_code == CLD_EXITED) return info.si_status;
  return 128 + info.si_status;
}
