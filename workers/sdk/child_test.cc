// A real worker process: fork + exec of worker_sdk_child with the bootstrap
// port dup2'ed to fd 3, served by the test peer in this process.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/fd_count.h"
#include "tests/support/temp_dir.h"
#include "workers/sdk/testdata/test_peer.h"

namespace capsa::worker::testing {
namespace {

TEST(SdkChild, WorkerProcessUsesTheSdkOnFd3) {
  capsa::testing::TempDir root("capsa-sdk-child");
  root.write("a.txt", "hello capsa");
  capsa::testing::FdLeakCheck leaks;
  {
    TestSupervisor sup(root.path());
    Port worker_end = sup.take_worker_end();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Post-fork: raw calls only. dup2 clears close-on-exec on fd 3, but
      // dup2(3, 3) is a no-op that leaves it set: clear it by hand then.
      int fd = worker_end.fd().get();
      if (fd == 3) {
        if (::fcntl(3, F_SETFD, 0) != 0) _exit(120);
      } else if (::dup2(fd, 3) != 3) {
        _exit(120);
      }
      const char* argv[] = {CAPSA_WORKER_SDK_CHILD, nullptr};
      ::execv(argv[0], const_cast<char* const*>(argv));
      _exit(121);
    }
    worker_end = Port();  // only the child holds the bootstrap port now
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "see the exit codes in testdata/child_worker.cc";
    EXPECT_EQ(sup.log_lines(), (std::vector<std::string>{"child read: hello capsa"}));
  }  // the child's exit closed its ports, so every service thread has ended
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

}  // namespace
}  // namespace capsa::worker::testing
