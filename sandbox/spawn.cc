// spawn(): bubblewrap's arguments, the fork on a long-lived thread, and the
// start-up handshake with capsa-launcher.
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstring>
#include <functional>
#include <mutex>
#include <span>
#include <thread>

#include "capabilities/handle.h"
#include "capabilities/sys.h"
#include "sandbox/launcher_protocol.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/status_channel.h"
#include "sandbox/worker_state.h"

namespace capsa::sandbox {
namespace {

namespace d = detail;

// The uid/gid bubblewrap runs as when the supervisor is root. Never the
// sandbox as kernel uid 0: root's processes are exempt from RLIMIT_NPROC
// (so a fork bomb would not be bounded) and a kernel escape would land as
// root. The sandbox sees uid/gid 65534 inside in every case.
constexpr uid_t kUnprivilegedId = 65534;
// How long spawn() waits for the launcher's handshake. A bound, not a
// timing: a healthy start takes milliseconds.
constexpr int kStartTimeoutMs = 30'000;

// The fork happens on one thread that lives as long as the process: the
// parent-death signal of bubblewrap (PR_SET_PDEATHSIG) fires when the
// *thread* that forked it exits, so forking on a caller's short-lived
// thread would kill the sandbox when that thread ends. Jobs are tiny (one
// clone), run one at a time; the thread also owns the stack the clone child
// runs on.
class ForkThread {
 public:
  ForkThread() { std::thread([this] { loop(); }).detach(); }
  void run(const std::function<void()>& job) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return job_ == nullptr; });
    job_ = &job;
    cv_.notify_all();
    cv_.wait(lock, [&] { return job_ != &job; });
  }
  // Only used from jobs (one at a time), so one stack is enough. The child
  // runs a few raw syscalls and needs well under 1 KiB of it.
  char* child_stack_top() noexcept { return stack_ + sizeof stack_; }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ != nullptr; });
      (*job_)();
      job_ = nullptr;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void()>* job_ = nullptr;
  alignas(64) char stack_[64 * 1024];
};

ForkThread& fork_thread() {
  // Deliberately never destroyed: the thread must outlive every worker.
  static ForkThread* t = new ForkThread;
  return *t;
}

// What the clone child needs, prepared by the parent: after the clone it
// shares the parent's memory (CLONE_VM) and must not allocate, lock or
// touch anything but this.
struct ExecJob {
  static constexpr int kMax = 8;
  int count = 0;
  int moved[kMax];    // sources, already dup'ed above the targets (close-on-exec)
  int targets[kMax];  // the fd numbers bubblewrap gets them as
  int keep_below = 0;  // everything >= this is closed
  bool drop = false;   // setgroups(0) + setres[gu]id(65534) before exec
  const char* path = nullptr;
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
};

// The child of clone(CLONE_VM | CLONE_VFORK): posix_spawn's technique. The
// parent thread is suspended until this execs or exits, so the shared
// memory is not racing; this only makes raw syscalls. Not instrumented: it
// runs on the fork thread's private stack, which sanitizers do not know.
__attribute__((no_sanitize("address", "undefined"))) int exec_bwrap(void* arg) {
  const auto* job = static_cast<const ExecJob*>(arg);
  for (int i = 0; i < job->count; ++i) {
    if (job->moved[i] < 0 || ::dup2(job->moved[i], job->targets[i]) < 0) ::_exit(125);
  }
  ::close_range(static_cast<unsigned>(job->keep_below), ~0u, 0);
  // Signal handlers are the parent's code, which must never run in this
  // child (it shares the parent's memory). CLONE_VM without CLONE_SIGHAND
  // gives the child its own copy of the dispositions: reset every handled
  // one to the default before unblocking (exec would reset them anyway;
  // ignored ones stay ignored, as across exec).
  struct KernelSigaction {  // the kernel's struct sigaction on x86_64
    std::uintptr_t handler;  // 0 = SIG_DFL, 1 = SIG_IGN
    unsigned long flags;
    std::uintptr_t restorer;
    std::uint64_t mask;
  };
  for (int sig = 1; sig <= 64; ++sig) {
    KernelSigaction old{};
    if (::syscall(SYS_rt_sigaction, sig, nullptr, &old, sizeof old.mask) != 0) continue;
    if (old.handler == 0 || old.handler == 1) continue;
    KernelSigaction dfl{};
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  }
  if (job->drop &&
      (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
       ::syscall(SYS_setresgid, kUnprivilegedId, kUnprivilegedId, kUnprivilegedId) != 0 ||
       ::syscall(SYS_setresuid, kUnprivilegedId, kUnprivilegedId, kUnprivilegedId) != 0)) {
    ::_exit(125);
  }
  std::uint64_t none = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none);
  ::execve(job->path, const_cast<char* const*>(job->argv), const_cast<char* const*>(job->envp));
  ::_exit(125);
}

// A sealed memfd holding `bytes`, positioned at its start: bubblewrap
// read()s --args from the fd's current offset (the launcher uses pread).
Result<Fd> sealed_memfd(std::string_view name, std::span<const std::byte> bytes) {
  auto fd = make_blob(bytes, name);
  if (!fd) return fd;
  auto rc = sys("lseek", name, [&] { return ::lseek(fd->get(), 0, SEEK_SET); });
  if (!rc) return std::unexpected(std::move(rc.error()));
  return fd;
}

bool under(std::string_view path, std::string_view dir) {
  return path.starts_with(dir) && path.size() > dir.size() && path[dir.size()] == '/';
}

std::vector<std::string> bwrap_args(const Spec& spec) {
  std::vector<std::string> a = {
      "--die-with-parent", "--new-session", "--as-pid-1",
      "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
      "--unshare-cgroup", "--uid", "65534", "--gid", "65534", "--hostname", "capsa",
      "--cap-drop", "ALL", "--clearenv",
      "--ro-bind", "/usr", "/usr"};
  // Merged-/usr systems have /bin -> usr/bin etc.; older ones real dirs.
  for (const char* p : {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}) {
    char target[256];
    ssize_t n = ::readlink(p, target, sizeof target - 1);
    if (n > 0) {
      a.insert(a.end(), {"--symlink", std::string(target, static_cast<std::size_t>(n)), p});
    } else {
      a.insert(a.end(), {"--ro-bind-try", p, p});
    }
  }
  a.insert(a.end(), {"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
                     "--proc", "/proc", "--dev", "/dev",
                     "--size", std::to_string(spec.tmpfs_bytes), "--tmpfs", "/tmp",
                     "--ro-bind", spec.launcher, d::kLauncherInSandbox});
  bool system = false;
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib64"}) system |= under(spec.program, dir);
  if (!system) a.insert(a.end(), {"--ro-bind", spec.program, spec.program});
  for (const auto& b : spec.ro_binds) a.insert(a.end(), {"--ro-bind", b.source, b.dest});
  // The root tmpfs bubblewrap builds would otherwise be writable.
  // The command itself must follow on the real argv: bubblewrap takes only
  // options from --args. It is a constant, so nothing from the spec is on argv.
  a.insert(a.end(), {"--remount-ro", "/", "--chdir", "/"});
  return a;
}

std::string start_error(const d::StatusRecord& r, const Spec& spec) {
  auto stage = static_cast<d::Stage>(r.stage);
  std::string err = r.err != 0 ? std::string(": ") + std::strerror(r.err) : "";
  switch (stage) {
    case d::Stage::kExec:
      if (r.err == ENOENT) return "program not found in sandbox: " + spec.program;
      if (r.err == EACCES) return "program not executable in sandbox: " + spec.program;
      return "exec of " + spec.program + " failed" + err;
    case d::Stage::kSeccompLoad: return std::string("seccomp load failed: ") + r.text + err;
    case d::Stage::kFilter: return std::string("seccomp filter build failed: ") + r.text;
    case d::Stage::kExecPath: return std::string("launcher: ") + r.text + err;
    case d::Stage::kRlimit: return std::string("setting rlimits failed: ") + r.text + err;
    case d::Stage::kConfig: return std::string("launcher config: ") + r.text + err;
    default: return std::string("launcher failed: ") + r.text + err;
  }
}

// The fd bubblewrap passes to the launcher as the worker's stdout or stderr
// (launcher_protocol.h, fds 7 and 8), and for kPipe the read end we keep.
struct OutputFds {
  Fd child;
  Fd ours;
};

Result<OutputFds> output_fds(Output where, Fd given, int inherited, const Fd& devnull,
                             const char* what) {
  OutputFds out;
  if (given.valid()) {
    out.child = std::move(given);
    return out;
  }
  if (where == Output::kPipe) {
    int p[2];
    auto rc = sys("pipe2", what, [&] { return ::pipe2(p, O_CLOEXEC); });
    if (!rc) return std::unexpected(std::move(rc.error()));
    out.ours.reset(p[0]);
    out.child.reset(p[1]);
    auto nb = sys("fcntl", what, [&] { return ::fcntl(out.ours.get(), F_SETFL, O_NONBLOCK); });
    if (!nb) return std::unexpected(std::move(nb.error()));
    return out;
  }
  // kInherit of a closed fd 1/2 (a daemon) falls back to /dev/null rather
  // than failing the spawn or letting the worker's first open() land there.
  int source = where == Output::kInherit && ::fcntl(inherited, F_GETFD) >= 0 ? inherited
                                                                           : devnull.get();
  auto dup = sys_fd("fcntl", what, [&] { return ::fcntl(source, F_DUPFD_CLOEXEC, 3); });
  if (!dup) return std::unexpected(std::move(dup.error()));
  out.child = std::move(*dup);
  return out;
}

}  // namespace

Result<Worker> spawn(const Spec& spec, Fd bootstrap) {
  return spawn(spec, std::move(bootstrap), StdioFds{});
}

Result<Worker> spawn(const Spec& spec, Fd bootstrap, StdioFds stdio) {
  auto started = std::chrono::steady_clock::now();
  if (!bootstrap.valid()) return make_error(Errc::kInvalidArgument, "spawn: no bootstrap fd");
  // Compiled once per distinct syscall set, then shared (seccomp_policy.h).
  auto filter = d::cached_filter(spec.extra_syscalls);
  if (!filter) return std::unexpected(std::move(filter.error()));
  const std::vector<std::uint8_t> config_bytes = d::encode_config(spec, **filter);
  auto config = sealed_memfd("config", std::as_bytes(std::span(config_bytes)));
  if (!config) return std::unexpected(std::move(config.error()));
  std::string args_blob;
  for (const auto& s : bwrap_args(spec)) args_blob.append(s).push_back('\0');
  auto args = sealed_memfd("bwrap-args", std::as_bytes(std::span(args_blob)));
  if (!args) return std::unexpected(std::move(args.error()));
  int sv[2];
  if (auto rc = sys("socketpair", "launcher status", [&] {
        return ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
      });
      !rc) {
    return std::unexpected(std::move(rc.error()));
  }
  Fd status(sv[0]), status_child(sv[1]);
  auto devnull = sys_fd("open", "/dev/null", [] { return ::open("/dev/null", O_RDWR | O_CLOEXEC); });
  if (!devnull) return std::unexpected(std::move(devnull.error()));
  auto out = output_fds(spec.stdout_to, std::move(stdio.out), STDOUT_FILENO, *devnull,
                        "worker stdout");
  if (!out) return std::unexpected(std::move(out.error()));
  auto err = output_fds(spec.stderr_to, std::move(stdio.err), STDERR_FILENO, *devnull,
                        "worker stderr");
  if (!err) return std::unexpected(std::move(err.error()));

  // Everything that can fail or allocate happens before the clone, so that
  // once bubblewrap runs the only way out of spawn() is through a Worker
  // (whose destructor kills and reaps it).
  auto state = std::make_unique<Worker::State>();
  state->name = spec.name;
  state->limits = spec.limits;
  state->action = spec.on_violation;
  state->started = started;
  if (spec.limits.wall_seconds != 0) {
    state->deadline = started + std::chrono::seconds(spec.limits.wall_seconds);
  }
  state->stdout_pipe = std::move(out->ours);
  state->stderr_pipe = std::move(err->ours);

  static constexpr int kArgsFd = 6;
  const int sources[] = {devnull->get(), bootstrap.get(),  config->get(),    status_child.get(),
                         args->get(),    out->child.get(), err->child.get()};
  const int targets[] = {0, d::kBootstrapFd, d::kConfigFd, d::kStatusFd,
                         kArgsFd, d::kStdoutFd, d::kStderrFd};
  static_assert(std::size(sources) <= ExecJob::kMax);
  const std::string args_fd_str = std::to_string(kArgsFd);
  const char* const argv[] = {"bwrap", "--args", args_fd_str.c_str(), "--",
                              d::kLauncherInSandbox, nullptr};
  const char* const envp[] = {nullptr};
  ExecJob job;
  job.count = static_cast<int>(std::size(sources));
  for (int i = 0; i < job.count; ++i) job.targets[i] = targets[i];
  job.keep_below = d::kStderrFd + 1;
  job.drop = ::geteuid() == 0;
  job.path = CAPSA_BWRAP_PATH;
  job.argv = argv;
  job.envp = envp;

  pid_t pid = -1;
  int pidfd = -1;
  int clone_errno = 0;
  fork_thread().run([&] {
    // High, distinct numbers first so the dup2 sequence cannot clobber a
    // source that sits on a target number.
    for (int i = 0; i < job.count; ++i) job.moved[i] = ::fcntl(sources[i], F_DUPFD_CLOEXEC, 64);
    // No signal handler may run in the child while it shares our memory:
    // all blocked across the clone (the child unblocks after resetting).
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    // CLONE_VM | CLONE_VFORK: no copy of the supervisor's page tables (a
    // fork of a 200 MiB process costs milliseconds, this ~0.1 ms including
    // the exec); CLONE_PIDFD: the pidfd exists before the pid could be
    // reused by anyone.
    pid = ::clone(exec_bwrap, fork_thread().child_stack_top(),
                  CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &job, &pidfd);
    clone_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    for (int i = 0; i < job.count; ++i) {
      if (job.moved[i] >= 0) ::close(job.moved[i]);
    }
  });
  if (pid < 0) return make_error(Errc::kFailed, "clone for bubblewrap failed", clone_errno);
  state->pid = pid;
  state->pidfd.reset(pidfd);
  // From here on, dropping `worker` kills and reaps bubblewrap.
  Worker worker(std::move(state));
  Worker::State& s = *worker.state_;
  status_child.reset();
  bootstrap.reset();
  out->child.reset();
  err->child.reset();
  s.status = d::status_port(std::move(status));

  for (;;) {
    pollfd p{s.status.fd().get(), POLLIN, 0};
    auto ready = sys("poll", spec.name, [&] { return ::poll(&p, 1, kStartTimeoutMs); });
    if (!ready) return std::unexpected(std::move(ready.error()));
    if (*ready == 0) return make_error(Errc::kFailed, "sandbox " + spec.name + " did not start in time");
    auto rec = d::read_status_record(s.status);
    if (!rec) return std::unexpected(std::move(rec.error()));
    if (!rec->has_value()) {
      int st = 0;
      auto reaped = sys("waitpid", spec.name, [&] { return ::waitpid(s.pid, &st, 0); });
      if (!reaped) return std::unexpected(std::move(reaped.error()));  // ~Worker kills and reaps
      s.pid = -1;
      std::string how = WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st))
                                      : "signal " + std::to_string(WTERMSIG(st));
      return make_error(Errc::kFailed, "bubblewrap failed (" + how + ") before the launcher "
                                       "reported for " + spec.name + ": see its stderr");
    }
    auto type = static_cast<d::StatusType>((*rec)->record.type);
    if (type == d::StatusType::kListener && !s.notify.valid()) {
      s.notify = std::move((*rec)->fd);
    } else if (type == d::StatusType::kError) {
      return make_error(Errc::kFailed, start_error((*rec)->record, spec), (*rec)->record.err);
    } else if (type == d::StatusType::kStarted && s.notify.valid()) {
      break;
    } else {
      return make_error(Errc::kFailed, "launcher status: record out of order");
    }
  }
  if (auto nb = s.status.set_nonblocking(true); !nb) return std::unexpected(std::move(nb.error()));
  return worker;
}

}  // namespace capsa::sandbox
