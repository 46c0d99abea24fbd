#include "sandbox/bwrap_child.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "capabilities/fd.h"

namespace capsa::sandbox::detail {
namespace {

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

// In the child: what failed, for the parent to report, then out.
[[noreturn]] __attribute__((no_sanitize("address", "undefined"))) void child_fail(ExecJob* job,
                                                                                 int step) {
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
  if (::mount("capsa-stage", kStageDir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k") != 0) {
    child_fail(job, kStepStageTmpfs);
  }
  for (int i = 0; i < job->staged; ++i) {
    if (job->stage_dir[i]) {
      if (::mkdir(job->stage_at[i], 0755) != 0) child_fail(job, kStepMountPoint);
    } else {
      // An empty file to mount on, made without an fd (post-clone code
      // holds none of its own).
      if (::mknod(job->stage_at[i], S_IFREG | 0444, 0) != 0) child_fail(job, kStepMountPoint);
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
  // "0" is the writer itself. Before anything else: the fds may be dup2
  // targets below; and as root, while we may still write the files.
  // Until the exec this child shares the supervisor's memory in a cgroup
  // that holds nothing else: what it allocates (a few kernel pages) is far
  // below any limit, so the cgroup's OOM killer, which would take every
  // process sharing the victim's memory, has no reason to pick it.
  for (int i = 0; i < job->cgroups && i < ExecJob::kMaxCgroups; ++i) {
    if (::write(job->cgroup_procs[i], "0", 1) != 1) child_fail(job, kStepCgroup);
  }
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

}  // namespace

const char* step_name(int step) {
  switch (step) {
    case kStepCgroup: return "joining the worker's cgroup";
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

int clone_bubblewrap(ExecJob& job, const std::vector<int>& sources, pid_t* pid, int* pidfd) {
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
    *pid = ::clone(exec_bwrap, fork_thread().child_stack_top(),
                   CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &job, pidfd);
    clone_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  });
  return *pid < 0 ? clone_errno : 0;
}

}  // namespace capsa::sandbox::detail
