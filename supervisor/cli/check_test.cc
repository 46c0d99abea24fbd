// `capsa check` as an operator runs it: the built binary, its exit status
// (0 valid, 1 invalid, 2 usage) and the lines it prints.
#include <spawn.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <fcntl.h>

#include <fstream>
#include <sstream>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "policy/jsonc.h"
#include "policy/test_util.h"

extern char** environ;

namespace capsa::cli {
namespace {

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

class CliCheckTest : public ::testing::Test {
 protected:
  policy::testing::TempDir dir;

  std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  // Runs the capsa binary with stdout and stderr sent to files (no pipes, so
  // no deadlock on large output, and no fd handling in this process).
  Outcome capsa(std::vector<std::string> args) {
    args.insert(args.begin(), CAPSA_BINARY);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string out = dir.path() + "/stdout", err = dir.path() + "/stderr";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    Outcome r;
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn: " << rc;
      return r;
    }
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0) {
      if (errno != EINTR) {
        ADD_FAILURE() << "waitpid: " << std::strerror(errno);
        return r;
      }
    }
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  std::string bin() {
    for (const char* p : {"wordcount", "asker", "counter", "hostile"}) dir.executable(p);
    return "bin=" + dir.path();
  }
  static std::string example(const char* name) { return std::string(CAPSA_EXAMPLES_DIR) + "/" + name; }
};

TEST_F(CliCheckTest, ValidPolicyExitsZeroAndExplains) {
  Outcome r = capsa({"check", "--define", bin(), example("wordcount.json")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("wordcount.json: valid policy, 1 worker, 0 channels\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("worker wordcount\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  program          " + dir.path() + "/wordcount\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("texts  fs.Directory  Open, OpenFile, List, Stat"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("memory=128M"), std::string::npos) << r.out;
}

TEST_F(CliCheckTest, JsonOutputParsesAndNamesTheChannel) {
  Outcome r = capsa({"check", "--json", "-D", bin(), example("pair.json")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(policy::json::parse(r.out, "stdout")) << r.out;
  EXPECT_NE(r.out.find("\"interface\":\"demo.WordCount\",\"client\":\"asker\",\"server\":\"counter\""),
            std::string::npos) << r.out;
}

TEST_F(CliCheckTest, InvalidPolicyExitsOneWithEveryErrorAndItsPosition) {
  std::string p = dir.write("bad.json",
                            "{\"workers\": [{\"name\": \"w\", \"program\": \"rel\",\n"
                            "  \"grants\": [{\"name\": \"g\", \"api\": \"fs.Dir\", \"rights\": [\"*\"]}],\n"
                            "  \"limits\": {\"memry\": 1}}]}\n");
  Outcome r = capsa({"check", p});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(p + ":1:39: error: program \"rel\" must be an absolute path"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ":2:35: error: unknown API \"fs.Dir\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ":3:14: error: unknown field \"memry\" in Limits"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ": invalid policy, 3 errors\n"), std::string::npos) << r.err;

  Outcome j = capsa({"check", "--json", p});
  EXPECT_EQ(j.status, 1);
  EXPECT_TRUE(policy::json::parse(j.out, "stdout")) << j.out;
  EXPECT_NE(j.out.find("{\"valid\":false,\"errors\":[{\"file\":\"" + p + "\",\"line\":1,\"column\":39,"),
            std::string::npos) << j.out;
}

TEST_F(CliCheckTest, MissingProgramIsAnErrorUnlessFsChecksAreOff) {
  std::string nowhere = "bin=/nonexistent/capsa-bin";
  Outcome strict = capsa({"check", "--define", nowhere, example("hostile.json")});
  EXPECT_EQ(strict.status, 1);
  EXPECT_NE(strict.err.find("program /nonexistent/capsa-bin/hostile does not exist"), std::string::npos) << strict.err;
  Outcome relaxed = capsa({"check", "--no-fs-checks", "--define", nowhere, example("hostile.json")});
  EXPECT_EQ(relaxed.status, 0) << relaxed.err;
}

TEST_F(CliCheckTest, UsageErrorsExitTwo) {
  EXPECT_EQ(capsa({}).status, 2);
  EXPECT_EQ(capsa({"check"}).status, 2);
  EXPECT_EQ(capsa({"check", "--bogus", example("hostile.json")}).status, 2);
  EXPECT_EQ(capsa({"frobnicate"}).status, 2);
  Outcome bad_define = capsa({"check", "--define", "novalue", example("hostile.json")});
  EXPECT_EQ(bad_define.status, 2);
  EXPECT_NE(bad_define.err.find("--define wants NAME=VALUE"), std::string::npos) << bad_define.err;
  EXPECT_EQ(capsa({"check", "--help"}).status, 0);
}

TEST_F(CliCheckTest, UnreadablePolicyIsInvalidNotUsage) {
  Outcome r = capsa({"check", dir.path() + "/missing.json"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot read policy " + dir.path() + "/missing.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace capsa::cli
