// Hostile workers against other processes: the supervisor, another worker,
// every process at once, and the terminal the worker was given.
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/sandbox/fixture.h"

namespace capsa::sandbox::testing {
namespace {

// A second, well-behaved worker in `mode` for an attacker to aim at. Fails
// the test (and returns an error) when it cannot start.
Result<Running> start_victim(std::string_view mode) {
  auto spec = hostile_spec(mode).name("victim").build();
  if (!spec) {
    ADD_FAILURE() << spec.error().to_string();
    return std::unexpected(spec.error());
  }
  return start(*spec);
}

// kill(-1) reaches every process the caller may signal except its pid
// namespace's init and itself: in the sandbox, nothing at all.
TEST_F(HostileTest, KillAllReachesNothing) {
  Outcome out = run_attack("kill_all");
  expect_verdict(out, "kill_all kill=ESRCH");
  EXPECT_EQ(out.status.code, 0);
}

// The supervisor's pid names nothing in the worker's pid namespace.
TEST_F(HostileTest, KillOfTheSupervisorPidReachesNothing) {
  Outcome out = run_attack("kill_pid", {std::to_string(::getpid())});
  expect_verdict(out, "kill_pid kill=ESRCH");
}

// Two workers: the attacker is given the other's host pid. It cannot name it
// (separate pid namespaces) and ptrace is refused by the filter anyway; the
// victim keeps serving.
TEST_F(HostileTest, PtraceOfAnotherWorkerFails) {
  auto victim = start_victim("hello");
  ASSERT_TRUE(victim);
  expect_verdict(run_attack("ptrace", {std::to_string(victim->worker.pid())}),
                 "ptrace kill0=ESRCH attach=EPERM attach_pid1=EPERM", {"ptrace", "ptrace"});
  Outcome served = finish(*victim, [](const std::string& report, Port& port) {
    if (report == "hello ready") {
      auto sent = port.send(std::as_bytes(std::span("ping", 4)));
      EXPECT_TRUE(sent) << sent.error().to_string();
    }
  });
  EXPECT_EQ(served.reports, (std::vector<std::string>{"hello ready", "pong"}));
  EXPECT_EQ(served.status.kind, ExitKind::kExited) << served.status.to_string();
  EXPECT_TRUE(served.violations.empty());
}

// Same for process_vm_readv of another worker.
TEST_F(HostileTest, ProcessVmReadvOfAnotherWorkerFails) {
  auto victim = start_victim("wall");
  ASSERT_TRUE(victim);
  Outcome attack = run_attack("process_vm_readv", {std::to_string(victim->worker.pid())});
  EXPECT_EQ(attack.reports,
            std::vector<std::string>{"process_vm_readv read=EPERM read_pid1=EPERM"});
  ASSERT_TRUE(victim->worker.kill());
  Outcome killed = finish(*victim);
  EXPECT_EQ(killed.status.kind, ExitKind::kKilled) << killed.status.to_string();
}

// TIOCSTI on a terminal the worker holds would type into the supervisor's
// terminal. The filter allows only read-only tty ioctls, so TIOCSTI is a
// violation; /dev/tty is refused too (a new session has no controlling
// terminal); nothing reaches the pty. The pty is lent to the worker as its
// stderr through spawn()'s StdioFds.
TEST_F(HostileTest, TiocstiCannotInjectInput) {
  Fd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(master.valid());
  ASSERT_EQ(::grantpt(master.get()), 0);
  ASSERT_EQ(::unlockpt(master.get()), 0);
  const char* slave_name = ::ptsname(master.get());
  ASSERT_NE(slave_name, nullptr);
  Fd slave(::open(slave_name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(slave.valid());
  Fd lent(::fcntl(slave.get(), F_DUPFD_CLOEXEC, 3));
  ASSERT_TRUE(lent.valid());

  auto spec = hostile_spec("tiocsti").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto running = start(*spec, StdioFds{Fd(), std::move(lent)});
  ASSERT_TRUE(running);
  Outcome out = finish(*running);

  EXPECT_EQ(out.reports, std::vector<std::string>{"tiocsti tty_fd=2 ioctl=EPERM dev_tty=ENXIO"});
  ASSERT_EQ(syscall_names(out.violations), std::vector<std::string>{"ioctl"});
  EXPECT_EQ(out.violations[0].args[0], 2u);
  EXPECT_EQ(out.violations[0].args[1], static_cast<std::uint64_t>(TIOCSTI));
  // Nothing was pushed into the terminal's input queue.
  pollfd p{slave.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
}

}  // namespace
}  // namespace capsa::sandbox::testing
