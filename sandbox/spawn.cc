// spawn(): bubblewrap's arguments, the fork on a long-lived thread, and the
// start-up handshake with capsa-launcher.
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/mount.h>
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
#include "sandbox/host_file.h"
#include "sandbox/launcher_protocol.h"
#include "sandbox/mount_plan.h"
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
  // bubblewrap's fds: 0 and 3..8 (launcher_protocol.h), args, the launcher
  // and, without staging, the program and every bind source.
  static constexpr int kMax = d::kFirstBindFd + 1 + static_cast<int>(kMaxBinds);
  // Sources are dup'ed at or above this before the clone, so the dup2
  // sequence cannot clobber a source that sits on a target number.
  static constexpr int kMovedBase = 128;
  int count = 0;
  int moved[kMax];    // sources, already dup'ed above the targets (close-on-exec)
  int targets[kMax];  // the fd numbers bubblewrap gets them as
  int keep_below = 0;  // everything >= this is closed
  bool drop = false;   // setgroups(0) + setres[gu]id(65534) before exec
  // As root: mounts attached in a mount namespace of the child's own before
  // it drops (mount_plan.h). Mount points are made on a fresh tmpfs.
  int staged = 0;
  int stage_tree[kMax];
  const char* stage_at[kMax];
  bool stage_dir[kMax];
  const char* path = nullptr;
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
  // Written by the child before it gives up (it shares our memory); read by
  // the parent once the clone returned. 0 = it exec'ed bubblewrap.
  int failed_step = 0;
  int failed_errno = 0;
  int failed_index = 0;  // the staged mount, for kStepAttach
};

enum ChildStep : int {
  kStepNone = 0, kStepUnshare, kStepPrivate, kStepStageTmpfs, kStepMountPoint, kStepAttach,
  kStepFds, kStepDrop, kStepExec,
};

const char* step_name(int step) {
  switch (step) {
    case kStepUnshare: return "unshare(CLONE_NEWNS)";
    case kStepPrivate: return "making its mounts private";
    case kStepStageTmpfs: return "mounting the staging tmpfs on /tmp";
    case kStepMountPoint: return "making a mount point";
    case kStepFds: return "setting up bubblewrap's fds";
    case kStepDrop: return "dropping to uid 65534";
    case kStepExec: return "exec of bubblewrap";
    default: return "an unknown step";
  }
}

[[noreturn]] void child_fail(ExecJob* job, int step) {
  job->failed_errno = errno;
  job->failed_step = step;
  ::_exit(125);
}

// As root: a mount namespace of the child's own, private (nothing it mounts
// propagates to the host's), a tmpfs on kStageDir there, and each staged
// tree attached on a mount point in it. bubblewrap, started next as uid
// 65534, finds them at paths it can resolve; the host never sees them, and
// they go away with the sandbox's last process.
__attribute__((no_sanitize("address", "undefined"))) void stage_mounts(ExecJob* job) {
  if (::syscall(SYS_unshare, CLONE_NEWNS) != 0) child_fail(job, kStepUnshare);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    child_fail(job, kStepPrivate);
  }
  if (::mount("capsa-stage", d::kStageDir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k") != 0) {
    child_fail(job, kStepStageTmpfs);
  }
  for (int i = 0; i < job->staged; ++i) {
    if (job->stage_dir[i]) {
      if (::mkdir(job->stage_at[i], 0755) != 0) child_fail(job, kStepMountPoint);
    } else {
      int fd = ::open(job->stage_at[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
      if (fd < 0) child_fail(job, kStepMountPoint);
      ::close(fd);
    }
    if (::syscall(SYS_move_mount, job->stage_tree[i], "", AT_FDCWD, job->stage_at[i],
                  MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      job->failed_index = i;
      child_fail(job, kStepAttach);
    }
  }
}

// The child of clone(CLONE_VM | CLONE_VFORK): posix_spawn's technique. The
// parent thread is suspended until this execs or exits, so the shared
// memory is not racing; this only makes raw syscalls. Not instrumented: it
// runs on the fork thread's private stack, which sanitizers do not know.
__attribute__((no_sanitize("address", "undefined"))) int exec_bwrap(void* arg) {
  auto* job = static_cast<ExecJob*>(arg);
  if (job->staged > 0) stage_mounts(job);  // before the fds move: it uses the trees' numbers
  for (int i = 0; i < job->count; ++i) {
    if (job->moved[i] < 0 || ::dup2(job->moved[i], job->targets[i]) < 0) child_fail(job, kStepFds);
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
    child_fail(job, kStepDrop);
  }
  std::uint64_t none = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none);
  ::execve(job->path, const_cast<char* const*>(job->argv), const_cast<char* const*>(job->envp));
  child_fail(job, kStepExec);
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

std::string start_error(const d::StatusRecord& r, const Spec& spec) {
  auto stage = static_cast<d::Stage>(r.stage);
  std::string err = r.err != 0 ? std::string(": ") + std::strerror(r.err) : "";
  switch (stage) {
    // The program itself is bound (spawn() opened it): ENOENT from its exec
    // means what it needs to start is missing in the sandbox.
    case d::Stage::kExec:
      if (r.err == ENOENT) {
        return "program " + spec.program + " cannot start in the sandbox: its interpreter "
               "(#! line) or ELF loader is not there";
      }
      if (r.err == EACCES) {
        return "program " + spec.program + " is not executable in the sandbox (a POSIX ACL, "
               "a security module or a noexec mount)";
      }
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
  auto files = open_host_files(spec);
  if (!files) return std::unexpected(std::move(files.error()));
  return spawn(spec, *files, std::move(bootstrap), std::move(stdio));
}

Result<Worker> spawn(const Spec& spec, const HostFiles& files, Fd bootstrap, StdioFds stdio) {
  auto started = std::chrono::steady_clock::now();
  if (!bootstrap.valid()) return make_error(Errc::kInvalidArgument, "spawn: no bootstrap fd");
  if (spec.ro_binds.size() > kMaxBinds) {
    return make_error(Errc::kInvalidArgument, "spawn: more than kMaxBinds ro_binds");
  }
  const bool as_root = ::geteuid() == 0;
  auto plan = d::plan_mounts(spec, files, as_root);
  if (!plan) return std::unexpected(std::move(plan.error()));
  // Compiled once per distinct syscall set, then shared (seccomp_policy.h).
  auto filter = d::cached_filter(spec.extra_syscalls);
  if (!filter) return std::unexpected(std::move(filter.error()));
  const std::vector<std::uint8_t> config_bytes = d::encode_config(spec, **filter);
  auto config = sealed_memfd("config", std::as_bytes(std::span(config_bytes)));
  if (!config) return std::unexpected(std::move(config.error()));
  std::string args_blob;
  for (const auto& s : plan->args) args_blob.append(s).push_back('\0');
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

  // The fds bubblewrap inherits, and nothing else: every one of ours is
  // close-on-exec, and the child dup2()s these onto their numbers (clearing
  // the flag) only in itself, then closes everything above them.
  static constexpr int kArgsFd = 6;
  std::vector<int> sources = {devnull->get(), bootstrap.get(),  config->get(),
                              status_child.get(), args->get(), out->child.get(),
                              err->child.get(), files.launcher.get()};
  std::vector<int> targets = {0, d::kBootstrapFd, d::kConfigFd, d::kStatusFd,
                              kArgsFd, d::kStdoutFd, d::kStderrFd, d::kLauncherFd};
  for (std::size_t i = 0; i < plan->passed.size(); ++i) {
    sources.push_back(plan->passed[i]);
    targets.push_back(d::kFirstBindFd + static_cast<int>(i));
  }
  const std::string args_fd_str = std::to_string(kArgsFd);
  const char* const argv[] = {"bwrap", "--args", args_fd_str.c_str(), "--",
                              d::kLauncherInSandbox, nullptr};
  const char* const envp[] = {nullptr};
  ExecJob job;
  if (sources.size() > static_cast<std::size_t>(ExecJob::kMax) ||
      plan->staged.size() > static_cast<std::size_t>(ExecJob::kMax)) {
    return make_error(Errc::kInvalidArgument, "spawn: too many fds for bubblewrap");
  }
  job.count = static_cast<int>(sources.size());
  for (int i = 0; i < job.count; ++i) job.targets[i] = targets[static_cast<std::size_t>(i)];
  job.keep_below = targets.back() + 1;
  job.staged = static_cast<int>(plan->staged.size());
  for (int i = 0; i < job.staged; ++i) {
    const d::StagedMount& m = plan->staged[static_cast<std::size_t>(i)];
    job.stage_tree[i] = m.tree.get();
    job.stage_at[i] = m.at.c_str();
    job.stage_dir[i] = m.dir;
  }
  job.drop = as_root;
  job.path = CAPSA_BWRAP_PATH;
  job.argv = argv;
  job.envp = envp;

  pid_t pid = -1;
  int pidfd = -1;
  int clone_errno = 0;
  fork_thread().run([&] {
    // High, distinct numbers first so the dup2 sequence cannot clobber a
    // source that sits on a target number. Owned here: closed when the job
    // ends, whatever the clone did.
    std::vector<Fd> moved;
    moved.reserve(static_cast<std::size_t>(job.count));
    for (int i = 0; i < job.count; ++i) {
      moved.emplace_back(::fcntl(sources[static_cast<std::size_t>(i)], F_DUPFD_CLOEXEC,
                                 ExecJob::kMovedBase));
      job.moved[i] = moved.back().get();
    }
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
  });
  if (pid < 0) return make_error(Errc::kFailed, "clone for bubblewrap failed", clone_errno);
  state->pid = pid;
  state->pidfd.reset(pidfd);
  // From here on, dropping `worker` kills and reaps bubblewrap.
  Worker worker(std::move(state));
  Worker::State& s = *worker.state_;
  // bubblewrap holds its copies now: ours go (the staged trees are attached
  // in the child's namespace, or dissolved with their last fd if it failed).
  status_child.reset();
  bootstrap.reset();
  out->child.reset();
  err->child.reset();
  if (job.failed_step != kStepNone) {
    // The child gave up before bubblewrap ran; ~Worker reaps it.
    std::string step = step_name(job.failed_step);
    if (job.failed_step == kStepAttach) {
      // The kernel attaches no mount of a file deleted since we opened it.
      step = "attaching " + plan->staged[static_cast<std::size_t>(job.failed_index)].what +
             (job.failed_errno == ENOENT ? " (deleted since it was opened)" : "");
    }
    return make_error(Errc::kFailed,
                      "starting bubblewrap for " + spec.name + " failed: " + step + ": " +
                          std::strerror(job.failed_errno),
                      job.failed_errno);
  }
  plan->staged.clear();
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
