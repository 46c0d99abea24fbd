// No worker process, nor any descendant of one, outlives the supervisor,
// and none dies early because the thread that spawned it exited.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/support/test_programs.h"

namespace {

using capsa::testing::test_program;

// Processes whose environment holds CAPSA_MARKER=<marker>.
int count_marked(const std::string& marker) {
  std::string needle = "CAPSA_MARKER=" + marker;
  int n = 0;
  DIR* d = ::opendir("/proc");
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/environ");
    std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (env.find(needle) != std::string::npos) ++n;
  }
  ::closedir(d);
  return n;
}

// The kernel tears a sandbox down asynchronously: the processes still marked
// once they are all gone or 30 s passed (a generous bound, so that a stuck
// process fails the test instead of hanging it).
int marked_after_teardown(const std::string& marker) {
  int left = count_marked(marker);
  for (int i = 0; i < 3000 && left != 0; ++i) {
    ::usleep(10'000);
    left = count_marked(marker);
  }
  return left;
}

struct Helper {
  pid_t pid;
  FILE* out;
};

Helper run_helper(const std::string& mode, const std::string& marker) {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::string helper = test_program("sandbox_test_supervisor");
  std::string worker = test_program("sandbox_test_worker");
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::execl(helper.c_str(), helper.c_str(), mode.c_str(), worker.c_str(), marker.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(p[1]);
  return {pid, ::fdopen(p[0], "r")};
}

std::string line(FILE* f) {
  char buf[64] = {};
  if (std::fgets(buf, sizeof buf, f) == nullptr) return "<eof>";
  std::string s(buf);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

TEST(Lifetime, SigkilledSupervisorLeavesNoWorkerNorDescendant) {
  std::string marker = "sigkill-" + std::to_string(::getpid());
  Helper h = run_helper("hold", marker);
  ASSERT_EQ(line(h.out), "ready");
  // The worker and its setsid() descendant are there (so this test can fail).
  EXPECT_GE(count_marked(marker), 2);
  ASSERT_EQ(::kill(h.pid, SIGKILL), 0);
  ASSERT_EQ(::waitpid(h.pid, nullptr, 0), h.pid);
  std::fclose(h.out);
  EXPECT_EQ(marked_after_teardown(marker), 0) << "sandbox processes survived their supervisor";
}

TEST(Lifetime, SpawningThreadExitDoesNotKillTheWorker) {
  std::string marker = "thread-" + std::to_string(::getpid());
  Helper h = run_helper("thread", marker);
  EXPECT_EQ(line(h.out), "alive");
  int st = 0;
  ASSERT_EQ(::waitpid(h.pid, &st, 0), h.pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  std::fclose(h.out);
  // The helper exited normally (its Worker's destructor killed the sandbox).
  EXPECT_EQ(marked_after_teardown(marker), 0);
}

}  // namespace
