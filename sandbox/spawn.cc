// spawn(): the host files, bubblewrap's arguments and fds, and the start-up
// handshake with capsa-launcher (the fork itself: bwrap_child.h).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <span>

#include "capabilities/handle.h"
#include "capabilities/sys.h"
#include "sandbox/bwrap_child.h"
#include "sandbox/host_file.h"
#include "sandbox/launcher_protocol.h"
#include "sandbox/mount_plan.h"
#include "sandbox/program_copy.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/status_channel.h"
#include "sandbox/worker_state.h"

namespace capsa::sandbox {
namespace {

namespace d = detail;

// How long spawn() waits for the launcher's handshake. A bound, not a
// timing: a healthy start takes milliseconds.
constexpr int kStartTimeoutMs = 30'000;

// A sealed memfd holding `bytes`, positioned at its start: bubblewrap
// read()s --args from the fd's current offset (the launcher uses pread).
Result<Fd> sealed_memfd(std::string_view name, std::span<const std::byte> bytes) {
  CAPSA_ASSIGN_OR_RETURN(Fd fd, make_blob(bytes, name));
  CAPSA_TRY(sys("lseek", name, [&] { return ::lseek(fd.get(), 0, SEEK_SET); }));
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
    case d::Stage::kHandOver: return std::string("launcher: ") + r.text + err;
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
    CAPSA_TRY(sys("pipe2", what, [&] { return ::pipe2(p, O_CLOEXEC); }));
    out.ours.reset(p[0]);
    out.child.reset(p[1]);
    CAPSA_TRY(sys("fcntl", what, [&] { return ::fcntl(out.ours.get(), F_SETFL, O_NONBLOCK); }));
    return out;
  }
  // kInherit of a closed fd 1/2 (a daemon) falls back to /dev/null rather
  // than failing the spawn or letting the worker's first open() land there.
  int source = where == Output::kInherit && ::fcntl(inherited, F_GETFD) >= 0 ? inherited
                                                                           : devnull.get();
  CAPSA_ASSIGN_OR_RETURN(out.child,
                         sys_fd("fcntl", what, [&] { return ::fcntl(source, F_DUPFD_CLOEXEC, 3); }));
  return out;
}

}  // namespace

Result<Worker> spawn(const Spec& spec, Fd bootstrap) {
  return spawn(spec, std::move(bootstrap), StdioFds{});
}

Result<Worker> spawn(const Spec& spec, Fd bootstrap, StdioFds stdio) {
  CAPSA_ASSIGN_OR_RETURN(const HostFiles files, open_host_files(spec));
  return spawn(spec, files, std::move(bootstrap), std::move(stdio));
}

Result<Worker> spawn(const Spec& spec, const HostFiles& files, Fd bootstrap, StdioFds stdio) {
  return d::start_sandbox(spec, files, std::move(bootstrap), std::move(stdio), /*pooled=*/false);
}

namespace detail {

Result<Worker> start_sandbox(const Spec& spec, const HostFiles& files, Fd bootstrap,
                             StdioFds stdio, bool pooled) {
  auto started = std::chrono::steady_clock::now();
  if (!pooled && !bootstrap.valid()) {
    return make_error(Errc::kInvalidArgument, "spawn: no bootstrap fd");
  }
  if (spec.ro_binds.size() > kMaxBinds) {
    return make_error(Errc::kInvalidArgument, "spawn: more than kMaxBinds ro_binds");
  }
  // A Spec made without SpecBuilder::build() (or changed after it) must not
  // reach the launcher with an unset limit: that would be no limit at all.
  if (auto unset = unset_limits(spec.limits); !unset.empty()) {
    return make_error(Errc::kInvalidArgument,
                      "spawn: limits." + std::string(unset.front()) +
                          " is not set (the sandbox has no default limits)");
  }
  const bool as_root = ::geteuid() == 0;
  // The program is bound from a copy under a neutral name, made once per
  // distinct program (program_copy.h): a bind's mountinfo line would show
  // the operator's path. `copy.hold` keeps the copy's name until we return,
  // after bubblewrap has bound it.
  CAPSA_ASSIGN_OR_RETURN(const d::ProgramCopy copy, d::program_copy(files.program, spec.program));
  CAPSA_ASSIGN_OR_RETURN(auto plan, d::plan_mounts(spec, files, copy.fd, as_root));
  // Compiled once per distinct syscall set, then shared (seccomp_policy.h).
  CAPSA_ASSIGN_OR_RETURN(const auto filter, d::cached_filter(spec.extra_syscalls));
  const std::vector<std::uint8_t> config_bytes = d::encode_config(spec, *filter, pooled);
  CAPSA_ASSIGN_OR_RETURN(Fd config, sealed_memfd("config", std::as_bytes(std::span(config_bytes))));
  std::string args_blob;
  for (const auto& s : plan.args) args_blob.append(s).push_back('\0');
  CAPSA_ASSIGN_OR_RETURN(Fd args, sealed_memfd("bwrap-args", std::as_bytes(std::span(args_blob))));
  int sv[2];
  CAPSA_TRY(sys("socketpair", "launcher status", [&] {
    return ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
  }));
  Fd status(sv[0]), status_child(sv[1]);
  CAPSA_ASSIGN_OR_RETURN(Fd devnull, sys_fd("open", "/dev/null", [] {
                           return ::open("/dev/null", O_RDWR | O_CLOEXEC);
                         }));
  // Pooled: the outputs are the worker's and come at the hand-over.
  OutputFds out, err;
  if (!pooled) {
    CAPSA_ASSIGN_OR_RETURN(out, output_fds(spec.stdout_to, std::move(stdio.out), STDOUT_FILENO,
                                           devnull, "worker stdout"));
    CAPSA_ASSIGN_OR_RETURN(err, output_fds(spec.stderr_to, std::move(stdio.err), STDERR_FILENO,
                                           devnull, "worker stderr"));
  }

  // Everything that can fail or allocate happens before the clone, so that
  // once bubblewrap runs the only way out of spawn() is through a Worker
  // (whose destructor kills and reaps it).
  auto state = std::make_unique<Worker::State>();
  state->name = spec.name;
  state->limits = spec.limits;
  state->action = spec.on_violation;
  state->started = started;
  state->pooled_idle = pooled;
  if (!pooled && spec.limits.wall_seconds != 0) {
    state->deadline = started + std::chrono::seconds(spec.limits.wall_seconds);
  }
  state->stdout_pipe = std::move(out.ours);
  state->stderr_pipe = std::move(err.ours);
  // The memory limit is the sandbox's whole: address space of each process
  // stays RLIMIT_AS; the cgroup adds what no rlimit sees (memfds, /tmp's
  // pages, kernel memory, all processes together). Tasks: the worker's
  // processes and threads plus bubblewrap and the launcher.
  const std::uint64_t tasks = spec.limits.max_processes == 0 ? 0 : spec.limits.max_processes + 2;
  CAPSA_ASSIGN_OR_RETURN(state->cgroup,
                         d::Cgroup::create({spec.limits.address_space_bytes, tasks}));
  if (spec.require_cgroup && state->cgroup.kind() == CgroupKind::kNone) {
    return make_error(Errc::kFailed, "worker " + spec.name + " requires a cgroup (require_cgroup) "
                                     "and none can be made: " + state->cgroup.reason());
  }
  const std::vector<int> cgroup_procs = state->cgroup.procs_fds();

  // The fds bubblewrap inherits, and nothing else: every one of ours is
  // close-on-exec, and the child dup2()s these onto their numbers (clearing
  // the flag) only in itself, then closes everything above them.
  static constexpr int kArgsFd = 6;
  // Pooled: no 3, 7 and 8 (the worker's own fds come at the hand-over).
  std::vector<int> sources = {devnull.get(), config.get(), status_child.get(), args.get()};
  std::vector<int> targets = {0, d::kConfigFd, d::kStatusFd, kArgsFd};
  if (!pooled) {
    sources.insert(sources.end(), {bootstrap.get(), out.child.get(), err.child.get()});
    targets.insert(targets.end(), {d::kBootstrapFd, d::kStdoutFd, d::kStderrFd});
  }
  sources.push_back(files.launcher.get());
  targets.push_back(d::kLauncherFd);
  for (std::size_t i = 0; i < plan.passed.size(); ++i) {
    sources.push_back(plan.passed[i]);
    targets.push_back(d::kFirstBindFd + static_cast<int>(i));
  }
  const std::string args_fd_str = std::to_string(kArgsFd);
  const char* const argv[] = {"bwrap", "--args", args_fd_str.c_str(), "--",
                              d::kLauncherInSandbox, nullptr};
  const char* const envp[] = {nullptr};
  d::ExecJob job;
  if (sources.size() > static_cast<std::size_t>(d::ExecJob::kMax) ||
      plan.staged.size() > static_cast<std::size_t>(d::ExecJob::kMax)) {
    return make_error(Errc::kInvalidArgument, "spawn: too many fds for bubblewrap");
  }
  job.count = static_cast<int>(sources.size());
  for (int i = 0; i < job.count; ++i) job.targets[i] = targets[static_cast<std::size_t>(i)];
  job.keep_below = targets.back() + 1;
  job.staged = static_cast<int>(plan.staged.size());
  for (int i = 0; i < job.staged; ++i) {
    const d::StagedMount& m = plan.staged[static_cast<std::size_t>(i)];
    job.stage_tree[i] = m.tree.get();
    job.stage_at[i] = m.at.c_str();
    job.stage_dir[i] = m.dir;
  }
  job.cgroups = static_cast<int>(cgroup_procs.size());
  for (int i = 0; i < job.cgroups && i < d::ExecJob::kMaxCgroups; ++i) {
    job.cgroup_procs[i] = cgroup_procs[static_cast<std::size_t>(i)];
  }
  job.drop = as_root;
  job.path = CAPSA_BWRAP_PATH;
  job.argv = argv;
  job.envp = envp;

  pid_t pid = -1;
  int pidfd = -1;
  int clone_errno = d::clone_bubblewrap(job, sources, &pid, &pidfd);
  if (pid < 0) return make_error(Errc::kFailed, "clone for bubblewrap failed", clone_errno);
  state->pid = pid;
  state->pidfd.reset(pidfd);
  // From here on, dropping `worker` kills and reaps bubblewrap.
  Worker worker = WorkerAccess::make(std::move(state));
  Worker::State& s = WorkerAccess::state(worker);
  // bubblewrap holds its copies now: ours go (the staged trees are attached
  // in the child's namespace, or dissolved with their last fd if it failed).
  status_child.reset();
  bootstrap.reset();
  out.child.reset();
  err.child.reset();
  if (job.failed_step != d::kStepNone) {
    // The child gave up before bubblewrap ran; ~Worker reaps it.
    std::string step = d::step_name(job.failed_step);
    if (job.failed_step == d::kStepAttach) {
      // The kernel attaches no mount of a file deleted since we opened it.
      step = "attaching " + plan.staged[static_cast<std::size_t>(job.failed_index)].what +
             (job.failed_errno == ENOENT ? " (deleted since it was opened)" : "");
    }
    return make_error(Errc::kFailed,
                      "starting bubblewrap for " + spec.name + " failed: " + step + ": " +
                          std::strerror(job.failed_errno),
                      job.failed_errno);
  }
  plan.staged.clear();
  s.status = d::status_port(std::move(status));

  for (;;) {
    pollfd p{s.status.fd().get(), POLLIN, 0};
    CAPSA_ASSIGN_OR_RETURN(const int ready,
                           sys("poll", spec.name, [&] { return ::poll(&p, 1, kStartTimeoutMs); }));
    if (ready == 0) return make_error(Errc::kFailed, "sandbox " + spec.name + " did not start in time");
    CAPSA_ASSIGN_OR_RETURN(auto rec, d::read_status_record(s.status));
    if (!rec) {
      int st = 0;
      // On error ~Worker kills and reaps.
      CAPSA_TRY(sys("waitpid", spec.name, [&] { return ::waitpid(s.pid, &st, 0); }));
      s.pid = -1;
      std::string how = WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st))
                                      : "signal " + std::to_string(WTERMSIG(st));
      return make_error(Errc::kFailed, "bubblewrap failed (" + how + ") before the launcher "
                                       "reported for " + spec.name + ": see its stderr");
    }
    auto type = static_cast<d::StatusType>(rec->record.type);
    if (type == d::StatusType::kListener && !s.notify.valid()) {
      s.notify = std::move(rec->fd);
      // Pooled: filter and limits are installed, the child now waits for
      // its hand-over; the status socket stays blocking until then.
      if (pooled) return worker;
    } else if (type == d::StatusType::kError) {
      return make_error(Errc::kFailed, start_error(rec->record, spec), rec->record.err);
    } else if (type == d::StatusType::kStarted && s.notify.valid()) {
      break;
    } else {
      return make_error(Errc::kFailed, "launcher status: record out of order");
    }
  }
  CAPSA_TRY(s.status.set_nonblocking(true));
  return worker;
}

bool pooled_sandbox_ended(const Worker::State& s) noexcept {
  if (!s.pidfd.valid() || !s.status.fd().valid()) return true;
  pollfd p[2] = {{s.pidfd.get(), POLLIN, 0}, {s.status.fd().get(), POLLIN, 0}};
  if (::poll(p, 2, 0) < 0) return true;
  return p[0].revents != 0 || p[1].revents != 0;
}

Result<void> hand_over(Worker& w, const Spec& spec, const Fd& bootstrap, const StdioFds& stdio) {
  Worker::State& s = WorkerAccess::state(w);
  if (!s.pooled_idle) return make_error(Errc::kInvalidArgument, "hand_over: not an idle pooled sandbox");
  if (!bootstrap.valid()) return make_error(Errc::kInvalidArgument, "hand_over: no bootstrap fd");
  if (pooled_sandbox_ended(s)) {
    return make_error(Errc::kClosed, "pooled sandbox " + s.name + " ended while idle");
  }
  CAPSA_ASSIGN_OR_RETURN(Fd devnull, sys_fd("open", "/dev/null", [] {
                           return ::open("/dev/null", O_RDWR | O_CLOEXEC);
                         }));
  // The caller's fds are lent as they are; the spec's outputs are made here
  // (a kPipe's read end is ours, the write end goes to the worker).
  OutputFds out, err;
  if (!stdio.out.valid()) {
    CAPSA_ASSIGN_OR_RETURN(out, output_fds(spec.stdout_to, Fd(), STDOUT_FILENO, devnull,
                                           "worker stdout"));
  }
  if (!stdio.err.valid()) {
    CAPSA_ASSIGN_OR_RETURN(err, output_fds(spec.stderr_to, Fd(), STDERR_FILENO, devnull,
                                           "worker stderr"));
  }
  const int fds[kHandOverFds] = {stdio.out.valid() ? stdio.out.get() : out.child.get(),
                                 stdio.err.valid() ? stdio.err.get() : err.child.get(),
                                 bootstrap.get()};
  HandOverRecord rec;
  iovec iov{&rec, sizeof rec};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  // The worker's time starts with its hand-over, not with the pool's fill.
  const auto handed = std::chrono::steady_clock::now();
  ssize_t sent;
  while ((sent = ::sendmsg(s.status.fd().get(), &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  if (sent < 0) {
    if (errno == EPIPE || errno == ECONNRESET) {
      return make_error(Errc::kClosed, "pooled sandbox " + s.name + " ended before its hand-over");
    }
    return make_error(Errc::kFailed, "hand-over to " + s.name + ": sendmsg: " + std::strerror(errno),
                      errno);
  }
  bool accepted = false;
  for (;;) {
    pollfd p{s.status.fd().get(), POLLIN, 0};
    CAPSA_ASSIGN_OR_RETURN(const int ready,
                           sys("poll", s.name, [&] { return ::poll(&p, 1, kStartTimeoutMs); }));
    if (ready == 0) return make_error(Errc::kFailed, "sandbox " + s.name + " did not start in time");
    CAPSA_ASSIGN_OR_RETURN(auto got, d::read_status_record(s.status));
    const auto type = got ? static_cast<StatusType>(got->record.type) : StatusType::kExit;
    if (!accepted && (!got || type == StatusType::kStarted || type == StatusType::kExit)) {
      // The child ended before it took the fds (killed while idle, just
      // now): the fds reached no worker.
      return make_error(Errc::kClosed, "pooled sandbox " + s.name + " ended before its hand-over");
    }
    if (!got) {
      return make_error(Errc::kFailed, "sandbox " + s.name + " ended before its program started");
    }
    if (type == StatusType::kError) {
      return make_error(Errc::kFailed, start_error(got->record, spec), got->record.err);
    }
    if (type == StatusType::kAccepted && !accepted) {
      accepted = true;
    } else if (type == StatusType::kStarted && accepted) {
      break;
    } else {
      return make_error(Errc::kFailed, "launcher status: record out of order");
    }
  }
  CAPSA_TRY(s.status.set_nonblocking(true));
  s.pooled_idle = false;
  s.started = handed;
  if (s.limits.wall_seconds != 0) s.deadline = handed + std::chrono::seconds(s.limits.wall_seconds);
  s.stdout_pipe = std::move(out.ours);
  s.stderr_pipe = std::move(err.ours);
  return {};
}

}  // namespace detail
}  // namespace capsa::sandbox
