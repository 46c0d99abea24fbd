// Nothing of a sandbox outlives its supervisor: a worker double-forks a
// setsid grandchild carrying a unique marker, the supervisor (a separate
// mini_supervisor process) is SIGKILLed, and no process with the marker may
// remain. Also: the spawning thread exiting must not kill the worker.
//
// The loops here poll /proc for the marker to disappear and sweep the dead
// supervisor's cgroups until they are gone; each is bounded (10 s) and
// asserts absence, not speed.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/cgroup.h"
#include "sandbox/program_copy.h"
#include "tests/sandbox/cgroup_util.h"
#include "tests/sandbox/fixture.h"

extern char** environ;

namespace capsa::sandbox::testing {
namespace {

std::string unique_marker() {
  return "capsa-grandchild-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::random_device{}());
}

// Polls until no process carries `marker`, at most ~10 s.
std::vector<int> wait_until_gone(const std::string& marker) {
  std::vector<int> left = pids_with_marker(marker);
  for (int i = 0; i < 1000 && !left.empty(); ++i) {
    timespec ts{0, 10'000'000};
    ::nanosleep(&ts, nullptr);
    left = pids_with_marker(marker);
  }
  return left;
}

// Sweeps the dead supervisor `owner`'s cgroups until none is left, at most
// ~10 s. A process whose cmdline is already empty (wait_until_gone no longer
// sees it) may not have left its cgroup yet, and rmdir refuses a populated
// cgroup: on a loaded machine the first sweep can come too early.
std::vector<std::string> sweep_until_gone(pid_t owner) {
  std::vector<std::string> left = leftover_cgroups(owner);
  for (int i = 0; i < 1000 && !left.empty(); ++i) {
    for (const std::string& parent : cgroup_parents()) {
      detail::sweep_dead(Fd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
                         std::chrono::seconds(0));
    }
    left = leftover_cgroups(owner);
    if (left.empty()) break;
    timespec ts{0, 10'000'000};
    ::nanosleep(&ts, nullptr);
  }
  return left;
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Starts mini_supervisor with its stdout on a pipe; returns its pid.
pid_t start_mini(const std::string& mode, const std::string& marker, Fd& out) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  out = Fd(p[0]);
  Fd write_end(p[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  std::string program = helper_path("mini_supervisor");
  std::string worker = helper_path("hostile_worker");
  std::vector<char*> argv{program.data(), const_cast<char*>(mode.c_str()), worker.data(),
                          const_cast<char*>(marker.c_str()), nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// One line from the mini supervisor (blocking; it always prints one).
std::string read_line(const Fd& fd) {
  std::string line;
  char c;
  while (::read(fd.get(), &c, 1) == 1 && c != '\n') line += c;
  return line;
}

class SupervisorKilled : public HostileTestP<std::string> {};

TEST_P(SupervisorKilled, NoGrandchildSurvives) {
  const std::string marker = unique_marker();
  Fd out;
  pid_t mini = start_mini(GetParam(), marker, out);
  ASSERT_GT(mini, 0);
  std::string line = read_line(out);
  // "ready <pid> alive": the sandbox runs, and in thread mode it was not
  // signalled when the spawning thread exited.
  EXPECT_EQ(line.rfind("ready ", 0), 0u) << line;
  EXPECT_TRUE(line.ends_with(" alive")) << line;
  // The worker and its grandchild carry the marker now, in the worker's
  // cgroup where the machine offers one.
  EXPECT_GE(pids_with_marker(marker).size(), 2u);
  EXPECT_EQ(leftover_cgroups(mini).empty(), !machine_offers_cgroup());
  const std::string copies_line = read_line(out);
  ASSERT_TRUE(copies_line.starts_with("copies /")) << copies_line;
  const std::string copies = copies_line.substr(7);
  ASSERT_TRUE(exists(copies)) << copies;

  ASSERT_EQ(::kill(mini, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(mini, &status, 0), mini);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(wait_until_gone(marker), std::vector<int>{});
  // Its worker's cgroup could not be removed by it; the next supervisor
  // removes it (Cgroup::create sweeps those older than a minute; here at
  // once, and a parallel run of this test may have done it already).
  EXPECT_EQ(sweep_until_gone(mini), std::vector<std::string>{});
  // Its program copies stay (no exit handler ran) until a supervisor of
  // the same user makes its cache in the same place: then, their owner
  // being gone, they are removed (here at once).
  detail::sweep_dead_program_copies(copies.substr(0, copies.rfind('/')));
  EXPECT_FALSE(exists(copies)) << copies;
}

// A supervisor that exits normally removes its program copies itself.
TEST_F(HostileTest, SupervisorExitRemovesItsProgramCopies) {
  const std::string marker = unique_marker();
  Fd out;
  pid_t mini = start_mini("exit", marker, out);
  ASSERT_GT(mini, 0);
  const std::string ready = read_line(out);
  EXPECT_EQ(ready.rfind("ready ", 0), 0u) << ready;
  const std::string copies = read_line(out);
  int status = 0;
  ASSERT_EQ(::waitpid(mini, &status, 0), mini);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_TRUE(copies.starts_with("copies /")) << copies;
  EXPECT_NE(copies.find("/capsa-programs-"), std::string::npos) << copies;
  EXPECT_FALSE(exists(copies.substr(7))) << copies;
  EXPECT_EQ(wait_until_gone(marker), std::vector<int>{});
}

INSTANTIATE_TEST_SUITE_P(Hostile, SupervisorKilled, ::testing::Values("process", "thread"),
                         [](const auto& p) { return p.param; });

// The same grandchild under an in-process supervisor: Worker::kill() ends
// the whole tree, not only the worker.
TEST_F(HostileTest, KillEndsTheGrandchildToo) {
  const std::string marker = unique_marker();
  auto spec = hostile_spec("grandchild", {marker}).build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto running = start(*spec);
  ASSERT_TRUE(running);
  bool killed = false;
  Outcome out = finish(*running, [&](const std::string& report, Port&) {
    if (report != "sleeper ready" || killed) return;
    EXPECT_GE(pids_with_marker(marker).size(), 2u);
    auto r = running->worker.kill();
    EXPECT_TRUE(r) << r.error().to_string();
    killed = true;
  });
  EXPECT_TRUE(killed);
  EXPECT_EQ(out.status.kind, ExitKind::kKilled) << out.status.to_string();
  EXPECT_EQ(wait_until_gone(marker), std::vector<int>{});
}

}  // namespace
}  // namespace capsa::sandbox::testing
