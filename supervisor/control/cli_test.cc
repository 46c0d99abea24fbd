// `capsa audit` and `capsa revoke` end to end: the real `capsa` binary runs
// a policy whose worker (control_test_worker) is sandboxed, and the same
// binary, as separate processes, audits and revokes through the control
// socket. What the worker saw comes back through `capsa run`'s output.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "supervisor/cli/test_util.h"
#include "supervisor/control/test_util.h"
#include "tests/support/test_programs.h"
#include "supervisor/supervisor_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

using capsa::cli::testing::Ran;
using capsa::cli::testing::slurp;
using capsa::cli::testing::spawn;
using capsa::cli::testing::wait_exit;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    capsa_ = capsa::testing::test_bin_dir() + "/capsa";
    root_ = tmp_.path() + "/root";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    policy_ = tmp_.path() + "/policy.json";
    std::ofstream(policy_) << R"({ "workers": [ { "name": "sw", "program": ")" << capsa::testing::test_bin_dir()
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
    return capsa::cli::testing::run(args, tmp_.path());
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
  auto parsed = nlohmann::json::parse(json.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(parsed.is_object()) << json.out;
  ASSERT_EQ(parsed.value("grants", nlohmann::json()).size(), 3u) << json.out;
  std::string dir_id;
  for (const auto& g : parsed["grants"]) {
    EXPECT_EQ(g.value("kernel", ""), "held") << g.dump();
    if (g.value("name", "") == "dir") dir_id = std::to_string(g.value("id", 0));
  }
  ASSERT_FALSE(dir_id.empty()) << json.out;

  // By name: the worker's policy grant "dir"; a name it does not hold is an
  // error naming the ones it does.
  Ran unknown = run({"revoke", "--control", sock_, "sw/nothing"});
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.err.find("worker \"sw\" holds no live grant \"nothing\" (its named grants: "),
            std::string::npos) << unknown.err;
  Ran revoked = run({"revoke", "--control", sock_, "--reason", "end to end", "sw/dir"});
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
  EXPECT_EQ(run({"revoke", "--control", sock_, "/dir"}).status, 2);
}

}  // namespace
}  // namespace capsa::supervisor
