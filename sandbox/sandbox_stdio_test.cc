// The worker's stdout and stderr: inherited, /dev/null, pipes, or fds the
// caller gives, each checked against the object the worker really holds.
// Registered with sandbox_test (as the ctest user and as uid 65534).
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "sandbox/sandbox.h"
#include "sandbox/sandbox_test_util.h"
#include "tests/support/fd_count.h"
#include "tests/support/read_fd.h"

namespace capsa::sandbox {
namespace {

using testing::FdLeakCheck;
using testing::read_to_eof;
using namespace sandbox_test;

// The worker in "stdio write" mode with both outputs to `output`: it
// reports what its fds 1 and 2 are, then writes one line to each.
SpecBuilder writer(Output output) {
  return base("stdio").args({"w", "stdio", "write"}).stdout_to(output).stderr_to(output);
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
  expect_exits_normally(w);
}

TEST(Sandbox, NullOutputsAreDevNull) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    Worker w = start(writer(Output::kNull), std::move(ch.theirs));
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
    expect_exits_normally(w);
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Sandbox, PipedOutputsCarryExactlyTheWorkersBytesThenEof) {
  FdLeakCheck leaks;
  {
    auto ch = channel();
    Worker w = start(writer(Output::kPipe), std::move(ch.theirs));
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
    expect_exits_normally(w);
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
  expect_exits_normally(w);
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

}  // namespace
}  // namespace capsa::sandbox
