// `capsa run` as an operator runs it: the real binary, the real plugins in
// the real sandbox, the example policies. Output, exit status, the audit
// log, and a clean shutdown on SIGTERM.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "supervisor/cli/test_util.h"
#include "supervisor/supervisor_test_util.h"

namespace {

using capsa::supervisor::testing::audit_lines;
using capsa::supervisor::testing::count_lines_with;
using capsa::supervisor::testing::TempDir;

using capsa::cli::testing::Ran;

// Runs argv with stdout and stderr interleaved in one file, as a terminal
// shows them; `meanwhile(pid)` runs while it does.
Ran run(const std::vector<std::string>& args, const TempDir& tmp,
        const std::function<void(pid_t)>& meanwhile = {}) {
  return capsa::cli::testing::run(args, tmp.path(), /*merged=*/true, meanwhile);
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
  Ran r = run(capsa_run("wordcount.json"), tmp_);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[wordcount] top 1: the 156\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[wordcount] summary: files 3, words 1693, distinct 456\n"), std::string::npos);
  EXPECT_NE(r.out.find("\nWORKER     STATUS    CPU"), std::string::npos) << r.out;  // the summary table
  EXPECT_NE(r.out.find("\nwordcount  exited 0  "), std::string::npos) << r.out;
  auto a = audit_lines(audit());
  EXPECT_EQ(count_lines_with(a, {"\"worker_exited\"", "\"worker\":\"wordcount\"", "\"status\":\"exited\""}), 1u);
}

// --warm: the worker starts in the sandbox that waited for it, with the
// same output and status as cold; a count outside 0..64 is a usage error.
TEST_F(CliRunTest, WarmStartsTheWorkerFromItsPoolWithTheSameResult) {
  auto args = capsa_run("wordcount.json");
  args.insert(args.begin() + 2, {"-v", "--warm", "1"});
  Ran r = capsa::cli::testing::run(args, tmp_.path());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find(", from its warm pool)"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("[wordcount] summary: files 3, words 1693, distinct 456\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\nwordcount  exited 0  "), std::string::npos) << r.out;
  auto bad = capsa_run("wordcount.json");
  bad.insert(bad.begin() + 2, {"--warm", "65"});
  Ran b = capsa::cli::testing::run(bad, tmp_.path());
  EXPECT_EQ(b.status, 2) << b.out << b.err;
}

// The hostile example is killed (SIGKILL) on its first bad message: 128 + 9.
TEST_F(CliRunTest, AKilledWorkersStatusIs128PlusTheSignal) {
  Ran r = run(capsa_run("hostile.json"), tmp_);
  EXPECT_EQ(r.status, 128 + SIGKILL) << r.out;
  EXPECT_NE(r.out.find("\nhostile  killed"), std::string::npos) << r.out;
}

TEST_F(CliRunTest, AnInvalidPolicyStartsNothingAndExitsTwo) {
  std::ofstream(tmp_.path() + "/bad.json") << R"({ "workers": [ { "name": "w", "program": "rel" } ] })";
  Ran r = run({CAPSA_BINARY, "run", "--control", "none", "--audit-log", audit(), tmp_.path() + "/bad.json"}, tmp_);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("bad.json:1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("invalid policy, not started"), std::string::npos) << r.out;
  // Without ${bin} the example policies say which variable is missing.
  Ran r2 = run({CAPSA_BINARY, "run", "--control", "none", "--audit-log", audit(),
                std::string(CAPSA_EXAMPLES_DIR) + "/wordcount.json"}, tmp_);
  EXPECT_EQ(r2.status, 2);
  EXPECT_NE(r2.out.find("undefined variable ${bin}"), std::string::npos) << r2.out;
}

TEST_F(CliRunTest, SigtermKillsTheWorkersAndClosesTheAuditLogCleanly) {
  Ran r = run(capsa_run("reader.json"), tmp_, [&](pid_t pid) {
    // The reader logs a line every 300 ms for up to a minute: wait until it
    // has started (its first grant is in the audit log), then stop capsa.
    for (int i = 0; i < 500; ++i) {
      if (count_lines_with(audit_lines(audit()), {"\"grant_created\"", "\"fs.File\""}) == 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGTERM);
  });
  EXPECT_EQ(r.status, 128 + SIGKILL) << r.out;  // the reader was killed, not ended by itself
  EXPECT_NE(r.out.find("stopping the workers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nreader  killed"), std::string::npos) << r.out;
  auto a = audit_lines(audit());
  EXPECT_EQ(count_lines_with(a, {"\"shutdown\"", "SIGTERM"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_exited\"", "\"worker\":\"reader\"", "\"status\":\"killed\""}), 1u);
  // Every grant it held was released.
  EXPECT_EQ(count_lines_with(a, {"\"grant_created\""}), count_lines_with(a, {"\"released\""}));
}

// A worker's exit code passes through; with several workers, the first
// failure in policy order (not the first to end).
TEST_F(CliRunTest, TheExitStatusIsTheFirstFailingWorkersInPolicyOrder) {
  auto policy = [&](const std::vector<int>& codes) {
    std::string workers;
    for (std::size_t i = 0; i < codes.size(); ++i) {
      workers += std::string(i ? "," : "") + R"({"name": "w)" + std::to_string(i) + R"(", "program": ")" +
                 CAPSA_TEST_WORKER + R"(", "args": ["exit", ")" + std::to_string(codes[i]) + "\"]}";
    }
    std::ofstream(tmp_.path() + "/codes.json") << R"({"workers": [)" + workers + "]}";
    return std::vector<std::string>{CAPSA_BINARY, "run", "-q", "--control", "none", "--audit-log", audit(),
                                    tmp_.path() + "/codes.json"};
  };
  EXPECT_EQ(run(policy({3}), tmp_).status, 3);
  EXPECT_EQ(run(policy({0, 0}), tmp_).status, 0);
  Ran r = run(policy({0, 5, 7}), tmp_);
  EXPECT_EQ(r.status, 5) << r.out;
  EXPECT_NE(r.out.find("\nw2      exited 7  "), std::string::npos) << r.out;
}

// --json: the summary is one JSON object, the last line of stdout, and no
// table; its exit_status is the one capsa returns.
TEST_F(CliRunTest, JsonSummaryIsTheLastLineOfStdout) {
  auto args = capsa_run("hostile.json");
  args.insert(args.begin() + 2, {"-q", "--json"});
  Ran r = capsa::cli::testing::run(args, tmp_.path());
  EXPECT_EQ(r.status, 137) << r.err;
  ASSERT_FALSE(r.out.empty());
  std::string last = r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1);
  auto j = nlohmann::json::parse(last, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["exit_status"], 137);
  ASSERT_EQ(j["workers"].size(), 1u);
  EXPECT_EQ(j["workers"][0]["name"], "hostile");
  EXPECT_EQ(j["workers"][0]["status"], "killed");
  EXPECT_EQ(j["workers"][0]["signal"], SIGKILL);
  EXPECT_GT(j["workers"][0]["denials"].get<int>(), 0);
  EXPECT_EQ(r.out.find("WORKER"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("WORKER"), std::string::npos) << r.err;
}

// A policy the sandbox would refuse is refused before anything starts, its
// error printed once (it used to be accepted by check and reported twice by
// run when the worker failed to start).
TEST_F(CliRunTest, ASandboxRefusalIsOnePolicyErrorBeforeAnythingStarts) {
  std::ofstream(tmp_.path() + "/bind.json")
      << R"({"workers": [{"name": "w", "program": ")" CAPSA_TEST_WORKER R"(", "sandbox": {"ro_binds": ["/tmp"]}}]})";
  Ran r = run({CAPSA_BINARY, "run", "--control", "none", "--audit-log", audit(), tmp_.path() + "/bind.json"}, tmp_);
  EXPECT_EQ(r.status, 2) << r.out;
  const std::string error = "read-only bind \"/tmp\" is at or below a mount point";
  auto first = r.out.find(error);
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(error, first + 1), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("invalid policy, not started"), std::string::npos) << r.out;
}

// --log-format json: stdout is JSON Lines only (each line one object with
// time, level, logger, message), worker lines attributed to their worker by
// the supervisor; the summary table goes to stderr.
TEST_F(CliRunTest, JsonLogFormatMakesStdoutJsonLinesWithEachWorkerNamed) {
  auto args = capsa_run("wordcount.json");
  args.insert(args.begin() + 2, {"--log-format", "json"});
  Ran r = capsa::cli::testing::run(args, tmp_.path());
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  std::istringstream lines(r.out);
  std::size_t worker_lines = 0, started = 0;
  bool top = false;
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    for (const char* key : {"time", "level", "logger", "message"}) {
      ASSERT_TRUE(j.contains(key) && j[key].is_string()) << key << " in " << line;
    }
    if (j["logger"] == "worker") {
      ++worker_lines;
      EXPECT_EQ(j.value("worker", ""), "wordcount") << line;
      top = top || j["message"] == "top 1: the 156";
    } else {
      EXPECT_EQ(j["logger"], "capsa") << line;
      EXPECT_FALSE(j.contains("worker")) << line;
      started += j["message"].get<std::string>().starts_with("started wordcount (pid ");
    }
  }
  EXPECT_GT(worker_lines, 1u) << r.out;
  EXPECT_TRUE(top) << r.out;
  EXPECT_EQ(started, 1u) << r.out;
  EXPECT_NE(r.err.find("\nwordcount  exited 0  "), std::string::npos) << r.err;
}

// -q: worker lines and the summary, not the start-up lines; -v: the
// supervisor's debug log on stderr. Both at once, or another format, is a
// usage error.
TEST_F(CliRunTest, QuietAndVerboseSetWhatIsPrinted) {
  auto quiet = capsa_run("wordcount.json");
  quiet.insert(quiet.begin() + 2, "-q");
  Ran q = capsa::cli::testing::run(quiet, tmp_.path());
  EXPECT_EQ(q.status, 0) << q.out << q.err;
  EXPECT_EQ(q.out.find("capsa: "), std::string::npos) << q.out;
  EXPECT_NE(q.out.find("[wordcount] top 1: the 156\n"), std::string::npos) << q.out;
  EXPECT_NE(q.out.find("\nwordcount  exited 0  "), std::string::npos) << q.out;
  EXPECT_EQ(q.err, "");

  Ran plain = capsa::cli::testing::run(capsa_run("wordcount.json"), tmp_.path());
  EXPECT_EQ(plain.status, 0);
  EXPECT_NE(plain.out.find("capsa: started wordcount (pid "), std::string::npos) << plain.out;
  EXPECT_EQ(plain.err.find("[debug]"), std::string::npos) << plain.err;

  auto verbose = capsa_run("wordcount.json");
  verbose.insert(verbose.begin() + 2, "-v");
  Ran v = capsa::cli::testing::run(verbose, tmp_.path());
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_NE(v.err.find("[capsa] [debug] policy " + std::string(CAPSA_EXAMPLES_DIR) +
                       "/wordcount.json: 1 worker, 0 channels\n"),
            std::string::npos)
      << v.err;
  EXPECT_NE(v.out.find("[wordcount] top 1: the 156\n"), std::string::npos) << v.out;

  for (std::vector<std::string> bad : {std::vector<std::string>{"-q", "-v"},
                                       std::vector<std::string>{"--log-format", "xml"}}) {
    auto args = capsa_run("wordcount.json");
    args.insert(args.begin() + 2, bad.begin(), bad.end());
    Ran u = capsa::cli::testing::run(args, tmp_.path());
    EXPECT_EQ(u.status, 2) << bad[0] << "\n" << u.err;
    EXPECT_EQ(u.out.find("[wordcount]"), std::string::npos) << "nothing started";
  }
}

}  // namespace
