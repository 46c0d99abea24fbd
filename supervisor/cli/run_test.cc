// `capsa run` as an operator runs it: the real binary, the real plugins in
// the real sandbox, the example policies. Output, exit status, the audit
// log, and a clean shutdown on SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/supervisor_test_util.h"

namespace {

using capsa::supervisor::testing::audit_lines;
using capsa::supervisor::testing::count_lines_with;
using capsa::supervisor::testing::TempDir;

struct Ran {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
};

// Runs argv with stdout and stderr into one pipe; returns what it printed.
Ran run(const std::vector<std::string>& args, const std::function<void(pid_t)>& meanwhile = {}) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::dup2(p[1], 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  if (meanwhile) meanwhile(pid);
  Ran r;
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

class CliRunTest : public ::testing::Test {
 protected:
  std::vector<std::string> capsa_run(const std::string& policy) {
    return {CAPSA_BINARY, "run", "--control", "none", "--audit-log", audit(), "--define",
            std::string("bin=") + CAPSA_PLUGIN_DIR, std::string(CAPSA_EXAMPLES_DIR) + "/" + policy};
  }
  std::string audit() const { return tmp_.path() + "/audit.jsonl"; }
  TempDir tmp_;
};

TEST_F(CliRunTest, WordcountPrintsTheTopWordsAndASummaryAndExitsZero) {
  Ran r = run(capsa_run("wordcount.json"));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[wordcount] top 1: the 156\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[wordcount] summary: files 3, words 1693, distinct 456\n"), std::string::npos);
  EXPECT_NE(r.out.find("worker "), std::string::npos);  // the summary table
  EXPECT_NE(r.out.find("wordcount        exited 0"), std::string::npos) << r.out;
  auto a = audit_lines(audit());
  EXPECT_EQ(count_lines_with(a, {"\"worker_exited\"", "\"worker\":\"wordcount\"", "\"status\":\"exited\""}), 1u);
}

TEST_F(CliRunTest, AKilledWorkerMakesTheExitStatusOne) {
  Ran r = run(capsa_run("hostile.json"));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("hostile          killed"), std::string::npos) << r.out;
}

TEST_F(CliRunTest, AnInvalidPolicyStartsNothingAndExitsTwo) {
  std::ofstream(tmp_.path() + "/bad.json") << R"({ "workers": [ { "name": "w", "program": "rel" } ] })";
  Ran r = run({CAPSA_BINARY, "run", "--control", "none", "--audit-log", audit(), tmp_.path() + "/bad.json"});
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("bad.json:1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("invalid policy, not started"), std::string::npos) << r.out;
  // Without ${bin} the example policies say which variable is missing.
  Ran r2 = run({CAPSA_BINARY, "run", "--control", "none", "--audit-log", audit(),
                std::string(CAPSA_EXAMPLES_DIR) + "/wordcount.json"});
  EXPECT_EQ(r2.status, 2);
  EXPECT_NE(r2.out.find("undefined variable ${bin}"), std::string::npos) << r2.out;
}

TEST_F(CliRunTest, SigtermKillsTheWorkersAndClosesTheAuditLogCleanly) {
  Ran r = run(capsa_run("reader.json"), [&](pid_t pid) {
    // The reader logs a line every 300 ms for up to a minute: wait until it
    // has started (its first grant is in the audit log), then stop capsa.
    for (int i = 0; i < 500; ++i) {
      if (count_lines_with(audit_lines(audit()), {"\"grant_created\"", "\"fs.File\""}) == 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGTERM);
  });
  EXPECT_EQ(r.status, 1) << r.out;  // the reader did not exit 0 by itself
  EXPECT_NE(r.out.find("stopping the workers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reader           killed"), std::string::npos) << r.out;
  auto a = audit_lines(audit());
  EXPECT_EQ(count_lines_with(a, {"\"shutdown\"", "SIGTERM"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_exited\"", "\"worker\":\"reader\"", "\"status\":\"killed\""}), 1u);
  // Every grant it held was released.
  EXPECT_EQ(count_lines_with(a, {"\"grant_created\""}), count_lines_with(a, {"\"released\""}));
}

}  // namespace
