// Real bubblewrap, real seccomp: spawn sandbox_test_worker in its modes and
// assert the exact verdicts. Registered twice (as the ctest user and as uid
// 65534), see sandbox/CMakeLists.txt.
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include "tests/support/fd_count.h"
#include "tests/support/test_programs.h"

namespace capsa::sandbox {
namespace {

using testing::FdLeakCheck;

std::string worker_path() { return testing::test_program("sandbox_test_worker"); }

struct Channel {
  Fd ours;
  Fd theirs;
};

Channel channel() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  return {Fd(sv[0]), Fd(sv[1])};
}

std::string receive(const Fd& fd) {
  char buf[4096];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("<eof>");
}

SpecBuilder base(const std::string& mode, const std::string& name = "test-worker") {
  SpecBuilder b;
  b.name(name).program(worker_path()).args({"sandbox_test_worker", mode});
  return b;
}

Worker start(const SpecBuilder& b, Fd bootstrap) {
  auto spec = b.build();
  if (!spec) {
    ADD_FAILURE() << spec.error().to_string();
    std::abort();
  }
  auto w = spawn(*spec, std::move(bootstrap));
  if (!w) {
    ADD_FAILURE() << w.error().to_string();
    std::abort();  // every later step of the test needs the worker
  }
  return std::move(*w);
}

TEST(Sandbox, WellBehavedWorkerSendsOnBootstrapAndExitsZero) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    Worker w = start(base("hello"), std::move(ch.theirs));
    EXPECT_GT(w.pid(), 0);
    EXPECT_TRUE(w.pidfd().valid());
    EXPECT_TRUE(w.notify_fd().valid());
    // Only 0, 1, 2 and the bootstrap port 3 are open in the worker; it runs
    // as uid 65534 inside.
    EXPECT_EQ(receive(ch.ours), "ready fds=0,1,2,3, uid=65534");
    auto st = w.wait();
    ASSERT_TRUE(st) << st.error().to_string();
    EXPECT_EQ(st->kind, ExitKind::kExited) << st->to_string();
    EXPECT_EQ(st->code, 0);
    EXPECT_TRUE(st->exact);
    EXPECT_GT(st->peak_rss_bytes, 0u);
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, EnvironmentIsExactlyTheSpecs) {
  auto ch = channel();
  Worker w = start(base("env").env("CAPSA_X", "1").env("LANG", "C"), std::move(ch.theirs));
  EXPECT_EQ(receive(ch.ours), "CAPSA_X=1;LANG=C;");
  ASSERT_TRUE(w.wait());
}

TEST(Sandbox, ExitCodesAreExact) {
  for (int code : {0, 3, 137}) {
    auto ch = channel();
    Worker w = start(base("exit").args({"w", "exit", std::to_string(code)}), std::move(ch.theirs));
    auto st = w.wait();
    ASSERT_TRUE(st) << st.error().to_string();
    EXPECT_EQ(st->kind, ExitKind::kExited);
    EXPECT_EQ(st->code, code) << "137 must not be mistaken for SIGKILL";
    EXPECT_EQ(st->signal, 0);
  }
}

TEST(Sandbox, OrdinaryProgramFeaturesWorkUnderTheDefaultFilter) {
  auto ch = channel();
  Worker w = start(base("ports"), std::move(ch.theirs));
  EXPECT_EQ(receive(ch.ours), "ports ok");
  auto st = w.wait();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->kind, ExitKind::kExited) << st->to_string();
}

TEST(Sandbox, MissingProgramIsAPreciseError) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    auto spec = SpecBuilder().name("missing").program("/usr/bin/capsa-no-such-program").build();
    ASSERT_TRUE(spec);
    auto w = spawn(*spec, std::move(ch.theirs));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().message, "program not found in sandbox: /usr/bin/capsa-no-such-program");
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, DeniedCallsFailWithEpermAndAreReported) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    Worker w = start(base("denied"), std::move(ch.theirs));
    std::vector<Violation> seen;
    std::string reply;
    // Answer notifications until the worker reports (it is blocked in each
    // denied call until we answer).
    std::jthread reader([&] { reply = receive(ch.ours); });
    while (seen.size() < 6) {
      pollfd p{w.notify_fd().get(), POLLIN, 0};
      ASSERT_EQ(::poll(&p, 1, -1), 1);
      auto v = w.handle_violation();
      ASSERT_TRUE(v) << v.error().to_string();
      if (*v) seen.push_back(**v);
    }
    reader.join();
    EXPECT_EQ(reply,
              "inet:errno=Operation not permitted;socket:errno=Operation not permitted;"
              "newuser:errno=Operation not permitted;clonens:errno=Operation not permitted;"
              "tiocsti:errno=Operation not permitted;tiocsti_hi:errno=Operation not permitted;");
    ASSERT_EQ(seen.size(), 6u);
    const char* names[] = {"socketpair", "socket", "unshare", "clone", "ioctl", "ioctl"};
    for (std::size_t i = 0; i < 6; ++i) {
      EXPECT_EQ(seen[i].syscall, names[i]);
      EXPECT_EQ(seen[i].worker, "test-worker");
      EXPECT_EQ(seen[i].action, ViolationAction::kErrno);
    }
    EXPECT_EQ(seen[0].args[0], static_cast<std::uint64_t>(AF_INET));
    auto st = w.wait();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->kind, ExitKind::kExited);
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, KillActionKillsTheSandboxAndClassifiesViolation) {
  auto ch = channel();
  Worker w = start(base("ptrace").on_violation(ViolationAction::kKill), std::move(ch.theirs));
  pollfd p{w.notify_fd().get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, -1), 1);
  auto v = w.handle_violation();
  ASSERT_TRUE(v && *v);
  EXPECT_EQ((*v)->syscall, "ptrace");
  EXPECT_EQ((*v)->action, ViolationAction::kKill);
  auto st = w.wait();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->kind, ExitKind::kViolation) << st->to_string();
  EXPECT_EQ(receive(ch.ours), "<eof>") << "the worker must never return from the call";
}

TEST(Sandbox, OtherAbisAreKilledNotNotified) {
  for (const char* mode : {"x32", "int80"}) {
    auto ch = channel();
    Worker w = start(base(mode), std::move(ch.theirs));
    auto st = w.wait();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->kind, ExitKind::kViolation) << mode << ": " << st->to_string();
    EXPECT_EQ(st->signal, SIGSYS);
    EXPECT_EQ(receive(ch.ours), "<eof>");
  }
}

TEST(Sandbox, CpuLimitIsClassified) {
  auto ch = channel();
  Limits l;
  l.cpu_seconds = 1;
  Worker w = start(base("spin").limits(l), std::move(ch.theirs));
  auto st = w.wait();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->kind, ExitKind::kLimitCpu) << st->to_string();
  // rusage and the CPU-limit check tick differently: only "it ran".
  EXPECT_GT(st->cpu_time, std::chrono::milliseconds(500)) << st->to_string();
}

TEST(Sandbox, WallDeadlineIsClassified) {
  auto ch = channel();
  Limits l;
  l.wall_seconds = 1;
  Worker w = start(base("sleep").limits(l), std::move(ch.theirs));
  ASSERT_TRUE(w.deadline());
  EXPECT_EQ(receive(ch.ours), "sleeping");
  auto st = w.wait();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->kind, ExitKind::kLimitWall) << st->to_string();
}

TEST(Sandbox, MemoryLimitIsClassified) {
  auto ch = channel();
  Limits l;
  l.address_space_bytes = 256ull << 20;
  Worker w = start(base("alloc").limits(l), std::move(ch.theirs));
  auto st = w.wait();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->kind, ExitKind::kLimitMemory) << st->to_string();
  EXPECT_EQ(st->signal, SIGABRT);
}

TEST(Sandbox, KillIsClassifiedAndTryReapDoesNotBlock) {
  auto ch = channel();
  Worker w = start(base("sleep"), std::move(ch.theirs));
  EXPECT_EQ(receive(ch.ours), "sleeping");
  auto r = w.try_reap();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  ASSERT_TRUE(w.kill());
  pollfd p{w.pidfd().get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, -1), 1);
  r = w.try_reap();
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ((*r)->kind, ExitKind::kKilled);
}

TEST(Sandbox, ForkBombIsBoundedByMaxProcesses) {
  auto ch = channel();
  Limits l;
  l.max_processes = 16;
  Worker w = start(base("forkbomb").limits(l), std::move(ch.theirs));
  std::string reply = receive(ch.ours);
  // The launcher and the worker count too, so fewer than 16 forks succeed.
  ASSERT_EQ(reply.rfind("forks=", 0), 0u) << reply;
  EXPECT_LT(std::stoi(reply.substr(6)), 16) << reply;
  EXPECT_NE(reply.find("Resource temporarily unavailable"), std::string::npos) << reply;
  auto st = w.wait();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->kind, ExitKind::kExited);
}

// Reads a non-blocking pipe until end-of-file, waiting with poll.
std::string read_to_eof(const Fd& fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      return out;
    } else if (errno == EAGAIN) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) return out + "<poll failed>";
    } else if (errno != EINTR) {
      return out + "<read failed>";
    }
  }
}

std::string dev_ino_rdev(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "closed";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_rdev);
}

TEST(Sandbox, OutputsAreInheritedByDefault) {
  auto ch = channel();
  Worker w = start(base("stdio"), std::move(ch.theirs));
  EXPECT_FALSE(w.stdout_pipe().valid());
  EXPECT_FALSE(w.stderr_pipe().valid());
  // The very objects behind our own fds 1 and 2 (a pipe, a file or a tty).
  EXPECT_EQ(receive(ch.ours), "fd1=" + dev_ino_rdev(1) + " fd2=" + dev_ino_rdev(2) + " ");
  auto st = w.wait();
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(st->kind, ExitKind::kExited) << st->to_string();
}

TEST(Sandbox, NullOutputsAreDevNull) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    Worker w = start(base("stdio").args({"w", "stdio", "write"}).stdout_to(Output::kNull)
                         .stderr_to(Output::kNull),
                     std::move(ch.theirs));
    EXPECT_FALSE(w.stdout_pipe().valid());
    struct stat null {};
    ASSERT_EQ(::stat("/dev/null", &null), 0);
    std::string report = receive(ch.ours);
    for (const char* fd : {"fd1=", "fd2="}) {
      auto at = report.find(fd);
      ASSERT_NE(at, std::string::npos) << report;
      auto rdev = report.substr(report.rfind(':', report.find(' ', at)) + 1);
      EXPECT_EQ(std::stoull(rdev), null.st_rdev) << fd << " in " << report;
    }
    EXPECT_EQ(receive(ch.ours), "written");
    auto st = w.wait();
    ASSERT_TRUE(st) << st.error().to_string();
    EXPECT_EQ(st->kind, ExitKind::kExited) << st->to_string();
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, PipedOutputsCarryExactlyTheWorkersBytesThenEof) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    Worker w = start(base("stdio").args({"w", "stdio", "write"}).stdout_to(Output::kPipe)
                         .stderr_to(Output::kPipe),
                     std::move(ch.theirs));
    ASSERT_TRUE(w.stdout_pipe().valid());
    ASSERT_TRUE(w.stderr_pipe().valid());
    EXPECT_NE(::fcntl(w.stdout_pipe().get(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(::fcntl(w.stderr_pipe().get(), F_GETFD) & FD_CLOEXEC, 0);
    std::string report = receive(ch.ours);
    EXPECT_EQ(report.find("fd1=closed"), std::string::npos) << report;
    EXPECT_EQ(receive(ch.ours), "written");
    // End-of-file comes when the worker's tree is done with the pipes: the
    // launcher (pid 1) holds no copy.
    EXPECT_EQ(read_to_eof(w.stdout_pipe()), "to stdout\n");
    EXPECT_EQ(read_to_eof(w.stderr_pipe()), "to stderr\n");
    auto st = w.wait();
    ASSERT_TRUE(st) << st.error().to_string();
    EXPECT_EQ(st->kind, ExitKind::kExited) << st->to_string();
    // The read end can be moved out, e.g. into an event loop.
    Fd out = w.take_stdout_pipe();
    EXPECT_TRUE(out.valid());
    EXPECT_FALSE(w.stdout_pipe().valid());
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, PipedOutputsHangUpWhenTheWorkerClosesThemNotWhenTheSandboxEnds) {
  auto ch = channel();
  Worker w = start(base("closeout").stdout_to(Output::kPipe).stderr_to(Output::kPipe),
                   std::move(ch.theirs));
  // The worker closed its only copies before saying so, and neither the
  // launcher (pid 1) nor bubblewrap holds one: the hang-up is already there.
  EXPECT_EQ(receive(ch.ours), "closed");
  for (const Fd* fd : {&w.stdout_pipe(), &w.stderr_pipe()}) {
    pollfd p{fd->get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 0), 1) << "a write end is still open somewhere";
    EXPECT_NE(p.revents & POLLHUP, 0);
  }
  ASSERT_EQ(::send(ch.ours.get(), "bye", 3, 0), 3);
  auto st = w.wait();
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(st->kind, ExitKind::kExited) << st->to_string();
}

TEST(Sandbox, GivenFdsBecomeTheWorkersOutputsAndOverrideTheSpec) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    int out[2], err[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
    Fd out_read(out[0]), err_read(err[0]);
    auto spec = base("stdio").args({"w", "stdio", "write"}).stdout_to(Output::kPipe).build();
    ASSERT_TRUE(spec) << spec.error().to_string();
    auto w = spawn(*spec, std::move(ch.theirs), StdioFds{Fd(out[1]), Fd(err[1])});
    ASSERT_TRUE(w) << w.error().to_string();
    EXPECT_FALSE(w->stdout_pipe().valid()) << "the given fd replaces the spec's pipe";
    EXPECT_FALSE(w->stderr_pipe().valid());
    struct stat ours {};
    ASSERT_EQ(::fstat(out_read.get(), &ours), 0);
    std::string report = receive(ch.ours);
    // The worker's fd 1 is the very pipe we gave (pipes share one device).
    EXPECT_EQ(report.rfind("fd1=" + std::to_string(ours.st_dev) + ":" +
                               std::to_string(ours.st_ino) + ":",
                           0),
              0u)
        << report;
    EXPECT_EQ(receive(ch.ours), "written");
    auto st = w->wait();
    ASSERT_TRUE(st) << st.error().to_string();
    // Only the worker held the write ends: end-of-file once it is gone.
    ASSERT_EQ(::fcntl(out_read.get(), F_SETFL, O_NONBLOCK), 0);
    ASSERT_EQ(::fcntl(err_read.get(), F_SETFL, O_NONBLOCK), 0);
    EXPECT_EQ(read_to_eof(out_read), "to stdout\n");
    EXPECT_EQ(read_to_eof(err_read), "to stderr\n");
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, OnePipeAndOneInheritedOutput) {
  auto ch = channel();
  Worker w = start(base("stdio").stderr_to(Output::kPipe), std::move(ch.theirs));
  EXPECT_FALSE(w.stdout_pipe().valid());
  ASSERT_TRUE(w.stderr_pipe().valid());
  std::string report = receive(ch.ours);
  EXPECT_EQ(report.rfind("fd1=" + dev_ino_rdev(1) + " ", 0), 0u) << report;
  EXPECT_EQ(report.find("fd2=" + dev_ino_rdev(2) + " "), std::string::npos) << report;
  EXPECT_EQ(read_to_eof(w.stderr_pipe()), "");
  ASSERT_TRUE(w.wait());
}

TEST(Sandbox, WaitHandsOverEveryViolationItAnswered) {
  auto ch = channel();
  Worker w = start(base("denied"), std::move(ch.theirs));
  std::vector<Violation> seen;
  auto st = w.wait([&](const Violation& v) { seen.push_back(v); });
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(st->kind, ExitKind::kExited) << st->to_string();
  std::vector<std::string> names;
  for (const auto& v : seen) names.push_back(v.syscall);
  EXPECT_EQ(names, (std::vector<std::string>{"socketpair", "socket", "unshare", "clone", "ioctl",
                                             "ioctl"}));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].worker, "test-worker");
  EXPECT_EQ(seen[0].args[0], static_cast<std::uint64_t>(AF_INET));
  EXPECT_EQ(receive(ch.ours).rfind("inet:errno=Operation not permitted;", 0), 0u);
}

TEST(Sandbox, WaitUnderKillReportsTheFatalViolation) {
  auto ch = channel();
  Worker w = start(base("ptrace").on_violation(ViolationAction::kKill), std::move(ch.theirs));
  std::vector<std::string> names;
  auto st = w.wait([&](const Violation& v) { names.push_back(v.syscall); });
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(st->kind, ExitKind::kViolation) << st->to_string();
  EXPECT_EQ(names, std::vector<std::string>{"ptrace"});
}

TEST(Sandbox, ExecOfTheWorkersOwnProgramIsAViolation) {
  // The launcher's exec is allowed by its pointer, not by the path: the
  // same path from the worker's own memory is refused and reported.
  auto ch = channel();
  Worker w = start(base("reexec").args({"w", "reexec", worker_path()}), std::move(ch.theirs));
  std::vector<Violation> seen;
  auto st = w.wait([&](const Violation& v) { seen.push_back(v); });
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(receive(ch.ours), "reexec errno=Operation not permitted");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].syscall, "execve");
}

}  // namespace
}  // namespace capsa::sandbox
