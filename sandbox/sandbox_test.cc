// Real bubblewrap, real seccomp: spawn sandbox_test_worker in its modes and
// assert the exact verdicts (outputs: sandbox_stdio_test.cc). Registered twice (as the ctest user and as uid
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

#include "sandbox/sandbox_test_util.h"
#include "sandbox/testdata/test_limits.h"
#include "tests/support/fd_count.h"

namespace capsa::sandbox {
namespace {

using testing::FdLeakCheck;
using namespace sandbox_test;
using testing::sandbox_test_limits;

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
    ExitStatus st = ended(w);
    EXPECT_EQ(st.kind, ExitKind::kExited) << st.to_string();
    EXPECT_EQ(st.code, 0);
    EXPECT_TRUE(st.exact);
    EXPECT_GT(st.peak_rss_bytes, 0u);
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
    ExitStatus st = ended(w);
    EXPECT_EQ(st.kind, ExitKind::kExited);
    EXPECT_EQ(st.code, code) << "137 must not be mistaken for SIGKILL";
    EXPECT_EQ(st.signal, 0);
  }
}

TEST(Sandbox, OrdinaryProgramFeaturesWorkUnderTheDefaultFilter) {
  auto ch = channel();
  Worker w = start(base("ports"), std::move(ch.theirs));
  EXPECT_EQ(receive(ch.ours), "ports ok");
  expect_exits_normally(w);
}

// A Spec whose limits were changed after build() is refused by spawn():
// an unset limit would reach the launcher as no limit at all.
TEST(Sandbox, SpawnRefusesASpecWithAnUnsetLimit) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    auto spec = SpecBuilder().name("unset").program("/usr/bin/true").limits(sandbox_test_limits()).build();
    ASSERT_TRUE(spec) << spec.error().to_string();
    spec->limits.max_open_files = kUnsetLimit;
    auto w = spawn(*spec, std::move(ch.theirs));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code, Errc::kInvalidArgument);
    EXPECT_EQ(w.error().message,
              "spawn: limits.max_open_files is not set (the sandbox has no default limits)");
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, MissingProgramIsAPreciseError) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    auto spec = SpecBuilder()
                    .name("missing")
                    .program("/usr/bin/capsa-no-such-program")
                    .limits(sandbox_test_limits())
                    .build();
    ASSERT_TRUE(spec);
    auto w = spawn(*spec, std::move(ch.theirs));
    ASSERT_FALSE(w);
    // The supervisor opens the program itself, before anything is started.
    EXPECT_EQ(w.error().message, "program /usr/bin/capsa-no-such-program does not exist");
    EXPECT_EQ(w.error().code, Errc::kNotFound);
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
    ExitStatus st = ended(w);
    EXPECT_EQ(st.kind, ExitKind::kExited);
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
  ExitStatus st = ended(w);
  EXPECT_EQ(st.kind, ExitKind::kViolation) << st.to_string();
  EXPECT_EQ(receive(ch.ours), "<eof>") << "the worker must never return from the call";
}

TEST(Sandbox, OtherAbisAreKilledNotNotified) {
  for (const char* mode : {"x32", "int80"}) {
    auto ch = channel();
    Worker w = start(base(mode), std::move(ch.theirs));
    ExitStatus st = ended(w);
    EXPECT_EQ(st.kind, ExitKind::kViolation) << mode << ": " << st.to_string();
    EXPECT_EQ(st.signal, SIGSYS);
    EXPECT_EQ(receive(ch.ours), "<eof>");
  }
}

TEST(Sandbox, CpuLimitIsClassified) {
  auto ch = channel();
  Limits l = sandbox_test_limits();
  l.cpu_seconds = 1;
  Worker w = start(base("spin").limits(l), std::move(ch.theirs));
  ExitStatus st = ended(w);
  EXPECT_EQ(st.kind, ExitKind::kLimitCpu) << st.to_string();
  // rusage and the CPU-limit check tick differently: only "it ran".
  EXPECT_GT(st.cpu_time, std::chrono::milliseconds(500)) << st.to_string();
}

TEST(Sandbox, WallDeadlineIsClassified) {
  auto ch = channel();
  Limits l = sandbox_test_limits();
  l.wall_seconds = 1;
  Worker w = start(base("sleep").limits(l), std::move(ch.theirs));
  ASSERT_TRUE(w.deadline());
  EXPECT_EQ(receive(ch.ours), "sleeping");
  ExitStatus st = ended(w);
  EXPECT_EQ(st.kind, ExitKind::kLimitWall) << st.to_string();
}

TEST(Sandbox, MemoryLimitIsClassified) {
  auto ch = channel();
  Limits l = sandbox_test_limits();
  l.address_space_bytes = 256ull << 20;
  Worker w = start(base("alloc").limits(l), std::move(ch.theirs));
  ExitStatus st = ended(w);
  EXPECT_EQ(st.kind, ExitKind::kLimitMemory) << st.to_string();
  EXPECT_EQ(st.signal, SIGABRT);
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
  Limits l = sandbox_test_limits();
  l.max_processes = 16;
  Worker w = start(base("forkbomb").limits(l), std::move(ch.theirs));
  std::string reply = receive(ch.ours);
  // The launcher and the worker count too, so fewer than 16 forks succeed.
  ASSERT_EQ(reply.rfind("forks=", 0), 0u) << reply;
  EXPECT_LT(std::stoi(reply.substr(6)), 16) << reply;
  EXPECT_NE(reply.find("Resource temporarily unavailable"), std::string::npos) << reply;
  ExitStatus st = ended(w);
  EXPECT_EQ(st.kind, ExitKind::kExited);
}

// Reads a non-blocking pipe until end-of-file, waiting with poll.

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
  // same path (where the program is bound) from the worker's own memory is
  // refused and reported.
  auto ch = channel();
  Worker w = start(base("reexec").args({"w", "reexec", "/.capsa/program"}), std::move(ch.theirs));
  std::vector<Violation> seen;
  auto st = w.wait([&](const Violation& v) { seen.push_back(v); });
  ASSERT_TRUE(st) << st.error().to_string();
  EXPECT_EQ(receive(ch.ours), "reexec errno=Operation not permitted");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].syscall, "execve");
}

}  // namespace
}  // namespace capsa::sandbox
