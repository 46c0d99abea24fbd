// `capsa run`'s exit status rule and JSON summary, and its default audit
// log path, on hand-made worker views (the binary is run in run_test.cc).
#include "supervisor/cli/run_summary.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "supervisor/cli/audit_path.h"

namespace capsa::cli {
namespace {

supervisor::WorkerView ended(std::string name, sandbox::ExitKind kind, int code, int signal) {
  supervisor::WorkerView w;
  w.name = std::move(name);
  sandbox::ExitStatus e;
  e.kind = kind;
  e.code = code;
  e.signal = signal;
  e.cpu_time = std::chrono::microseconds(250'000);
  w.exit = e;
  return w;
}

supervisor::WorkerView not_started(std::string name) {
  supervisor::WorkerView w;
  w.name = std::move(name);
  w.start_error = "program: bad";
  return w;
}

TEST(RunExitStatus, OneWorkersStatusPassesThrough) {
  using sandbox::ExitKind;
  EXPECT_EQ(run_exit_status({ended("w", ExitKind::kExited, 0, 0)}), 0);
  EXPECT_EQ(run_exit_status({ended("w", ExitKind::kExited, 3, 0)}), 3);
  EXPECT_EQ(run_exit_status({ended("w", ExitKind::kSignaled, 0, SIGSEGV)}), 128 + SIGSEGV);
  EXPECT_EQ(run_exit_status({ended("w", ExitKind::kKilled, 0, SIGKILL)}), 137);
  EXPECT_EQ(run_exit_status({ended("w", ExitKind::kLimitCpu, 0, SIGXCPU)}), 128 + SIGXCPU);
  EXPECT_EQ(run_exit_status({ended("w", ExitKind::kLimitMemory, 1, 0)}), 1);  // no signal: its code
  EXPECT_EQ(run_exit_status({not_started("w")}), kExitDidNotStart);
  supervisor::WorkerView never_reaped;
  EXPECT_EQ(run_exit_status({never_reaped}), 1);
}

TEST(RunExitStatus, SeveralWorkersGiveTheFirstFailureInPolicyOrder) {
  using sandbox::ExitKind;
  EXPECT_EQ(run_exit_status({ended("a", ExitKind::kExited, 0, 0), ended("b", ExitKind::kExited, 0, 0)}), 0);
  EXPECT_EQ(run_exit_status({ended("a", ExitKind::kExited, 0, 0), ended("b", ExitKind::kExited, 4, 0),
                             ended("c", ExitKind::kKilled, 0, SIGKILL)}),
            4);
  EXPECT_EQ(run_exit_status({not_started("a"), ended("b", ExitKind::kExited, 4, 0)}), kExitDidNotStart);
}

TEST(RunSummaryJson, OneObjectWithEveryWorker) {
  auto text = summary_json({ended("a", sandbox::ExitKind::kExited, 0, 0),
                            ended("b", sandbox::ExitKind::kKilled, 0, SIGKILL), not_started("c")},
                           137);
  ASSERT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find('\n'), text.size() - 1);  // one line
  auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["exit_status"], 137);
  ASSERT_EQ(j["workers"].size(), 3u);
  EXPECT_EQ(j["workers"][0]["status"], "exited");
  EXPECT_EQ(j["workers"][0]["exit_code"], 0);
  EXPECT_TRUE(j["workers"][0]["signal"].is_null());
  EXPECT_EQ(j["workers"][0]["cpu_seconds"], 0.25);
  EXPECT_EQ(j["workers"][1]["status"], "killed");
  EXPECT_TRUE(j["workers"][1]["exit_code"].is_null());
  EXPECT_EQ(j["workers"][1]["signal"], SIGKILL);
  EXPECT_EQ(j["workers"][1]["exit_status"], 137);
  EXPECT_EQ(j["workers"][2]["status"], "did not start");
  EXPECT_EQ(j["workers"][2]["error"], "program: bad");
  EXPECT_EQ(j["workers"][2]["exit_status"], kExitDidNotStart);
}

TEST(DefaultAuditLogPath, RootUsersAndTheXdgRule) {
  EXPECT_EQ(*default_audit_log_path(0, "/x/state", "/root"), "/var/log/capsa/audit.jsonl");
  EXPECT_EQ(*default_audit_log_path(1000, "/x/state", "/home/u"), "/x/state/capsa/audit.jsonl");
  EXPECT_EQ(*default_audit_log_path(1000, nullptr, "/home/u"), "/home/u/.local/state/capsa/audit.jsonl");
  // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
  EXPECT_EQ(*default_audit_log_path(1000, "rel", "/home/u"), "/home/u/.local/state/capsa/audit.jsonl");
  auto none = default_audit_log_path(1000, nullptr, nullptr);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("--audit-log FILE"), std::string::npos);
}

TEST(DefaultAuditLogPath, MissingDirectoriesAreMadeForTheOwnerOnly) {
  char tmpl[] = "/tmp/capsa-audit-path-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string base = tmpl;
  ASSERT_TRUE(make_parent_directories(base + "/state/capsa/audit.jsonl"));
  for (const char* dir : {"/state", "/state/capsa"}) {
    struct stat st {};
    ASSERT_EQ(::stat((base + dir).c_str(), &st), 0) << dir;
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
  }
  ::chmod(base.c_str(), 0755);  // an existing one is left alone
  ASSERT_TRUE(make_parent_directories(base + "/state/capsa/audit.jsonl"));
  struct stat st {};
  ASSERT_EQ(::stat(base.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  // A file in the way is an error that names it.
  ASSERT_EQ(::close(::open((base + "/file").c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  auto blocked = make_parent_directories(base + "/file/capsa/audit.jsonl");
  ASSERT_FALSE(blocked);
  EXPECT_NE(blocked.error().message.find(base + "/file/capsa"), std::string::npos) << blocked.error().message;
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace capsa::cli
