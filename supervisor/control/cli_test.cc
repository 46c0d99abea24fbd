// `capsa audit` and `capsa revoke` end to end: the real `capsa` binary runs
// a policy whose worker (control_test_worker) is sandboxed, and the same
// binary, as separate processes, audits and revokes through the control
// socket. What the worker saw comes back through `capsa run`'s output.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "policy/jsonc.h"
#include "supervisor/supervisor_test_util.h"

extern char** environ;

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

std::string bin_dir() {
  if (const char* d = std::getenv("CAPSA_TEST_BIN_DIR"); d != nullptr && *d != '\0') return d;
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Starts `argv` with stdout and stderr in files.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out, const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

int wait_exit(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct Ran {
  int status = -1;
  std::string out, err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    capsa_ = bin_dir() + "/capsa";
    root_ = tmp_.path() + "/root";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    policy_ = tmp_.path() + "/policy.json";
    std::ofstream(policy_) << R"({ "workers": [ { "name": "sw", "program": ")" << bin_dir()
                           << R"(/control_test_worker", "limits": { "wall_seconds": 120 },
        "grants": [ { "name": "log", "api": "log.Sink", "rights": ["Write"] },
                    { "name": "dir", "api": "fs.Directory", "rights": ["List", "Stat"],
                      "constraints": { "root": ")" << root_ << R"(" } } ] } ] })";
    sock_ = tmp_.path() + "/ctl.sock";
  }
  void TearDown() override {
    if (run_pid_ > 0) {  // a failed test: do not leave `capsa run` behind
      ::kill(run_pid_, SIGTERM);
      wait_exit(run_pid_);
    }
  }
  Ran run(std::vector<std::string> args) {
    args.insert(args.begin(), capsa_);
    Ran r;
    pid_t pid = spawn(args, tmp_.path() + "/cmd.out", tmp_.path() + "/cmd.err");
    if (pid < 0) return r;
    r.status = wait_exit(pid);
    r.out = slurp(tmp_.path() + "/cmd.out");
    r.err = slurp(tmp_.path() + "/cmd.err");
    return r;
  }
  template <typename F>
  static bool eventually(F pred) {
    for (int i = 0; i < 6000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }

  TempDir tmp_;
  std::string capsa_, root_, policy_, sock_;
  pid_t run_pid_ = -1;
};

TEST_F(CliTest, AuditAndRevokeARunningCapsaRun) {
  std::string run_out = tmp_.path() + "/run.out", run_err = tmp_.path() + "/run.err";
  std::string audit_log = tmp_.path() + "/audit.jsonl";
  run_pid_ = spawn({capsa_, "run", "--audit-log", audit_log, "--control", sock_, policy_}, run_out,
                   run_err);
  ASSERT_GT(run_pid_, 0);
  ASSERT_TRUE(eventually([&] { return slurp(run_out).find("[sw] ready") != std::string::npos; }))
      << slurp(run_out) << slurp(run_err);

  Ran table = run({"audit", "--control", sock_});
  ASSERT_EQ(table.status, 0) << table.err;
  // Three live grants (bootstrap, log, dir), each held inside the sandbox.
  std::size_t held = 0;
  std::istringstream lines(table.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.ends_with("  held")) ++held;
  }
  EXPECT_EQ(held, 3u) << table.out;

  Ran json = run({"audit", "--control", sock_, "--json"});
  ASSERT_EQ(json.status, 0) << json.err;
  auto parsed = policy::json::parse(json.out, "audit.json");
  ASSERT_TRUE(parsed) << json.out;
  std::string dir_id;
  for (const auto& m : parsed->members) {
    if (m.key != "grants") continue;
    ASSERT_EQ(m.value.items.size(), 3u) << json.out;
    for (const auto& g : m.value.items) {
      std::string name, id, kernel;
      for (const auto& f : g.members) {
        if (f.key == "name") name = f.value.text;
        if (f.key == "id") id = f.value.text;
        if (f.key == "kernel") kernel = f.value.text;
      }
      EXPECT_EQ(kernel, "held") << name;
      if (name == "dir") dir_id = id;
    }
  }
  ASSERT_FALSE(dir_id.empty()) << json.out;

  Ran revoked = run({"revoke", "--control", sock_, "--reason", "end to end", dir_id});
  EXPECT_EQ(revoked.status, 0) << revoked.err;
  EXPECT_EQ(revoked.out, "revoked " + dir_id + "\n");

  // The worker sees the port close, says so, and exits 0; so does `capsa run`.
  EXPECT_EQ(wait_exit(run_pid_), 0) << slurp(run_out) << slurp(run_err);
  run_pid_ = -1;
  EXPECT_NE(slurp(run_out).find("[sw] dir: revoked"), std::string::npos) << slurp(run_out);
  struct stat st{};
  EXPECT_NE(::lstat(sock_.c_str(), &st), 0) << "the control socket is removed on exit";
  EXPECT_EQ(count_lines_with(audit_lines(audit_log),
                             {"\"revoked\"", "\"grant\":" + dir_id + ",", "): end to end"}),
            1u);

  Ran gone = run({"audit", "--control", sock_});
  EXPECT_EQ(gone.status, 1);
  EXPECT_NE(gone.err.find("cannot reach the supervisor"), std::string::npos) << gone.err;
  EXPECT_EQ(run({"revoke", "--control", sock_}).status, 2) << "ID is required";
  EXPECT_EQ(run({"revoke", "--control", sock_, "not-a-number"}).status, 2);
}

}  // namespace
}  // namespace capsa::supervisor
