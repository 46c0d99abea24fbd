// `capsa check` as an operator runs it: the built binary, its exit status
// (0 valid, 1 invalid, 2 usage) and the lines it prints.
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/test_util.h"
#include "supervisor/cli/test_util.h"

namespace capsa::cli {
namespace {

using testing::Ran;

class CliCheckTest : public ::testing::Test {
 protected:
  policy::testing::TempDir dir;

  Ran capsa(std::vector<std::string> args) {
    args.insert(args.begin(), CAPSA_BINARY);
    return testing::run(args, dir.path());
  }

  std::string bin() {
    for (const char* p : {"wordcount", "asker", "counter", "hostile"}) dir.executable(p);
    return "bin=" + dir.path();
  }
  static std::string example(const char* name) { return std::string(CAPSA_EXAMPLES_DIR) + "/" + name; }
};

TEST_F(CliCheckTest, ValidPolicyExitsZeroAndExplains) {
  Ran r = capsa({"check", "--define", bin(), example("wordcount.json")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("wordcount.json: valid policy, 1 worker, 0 channels\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("worker wordcount\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  program          " + dir.path() + "/wordcount\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("texts  fs.Directory  Open, OpenFile, List, Stat"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("memory=128M"), std::string::npos) << r.out;
}

TEST_F(CliCheckTest, JsonOutputParsesAndNamesTheChannel) {
  Ran r = capsa({"check", "--json", "-D", bin(), example("pair.json")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out, nullptr, false).is_discarded()) << r.out;
  EXPECT_NE(r.out.find("\"interface\":\"demo.WordCount\",\"client\":\"asker\",\"server\":\"counter\""),
            std::string::npos) << r.out;
}

TEST_F(CliCheckTest, InvalidPolicyExitsOneWithEveryErrorAndItsPosition) {
  std::string p = dir.write("bad.json",
                            "{\"workers\": [{\"name\": \"w\", \"program\": \"rel\",\n"
                            "  \"grants\": [{\"name\": \"g\", \"api\": \"fs.Dir\", \"rights\": [\"*\"]}],\n"
                            "  \"limits\": {\"memry\": 1}}]}\n");
  Ran r = capsa({"check", p});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find(p + ":1:39: error: program \"rel\" must be an absolute path"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ":2:35: error: unknown API \"fs.Dir\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ":3:14: error: unknown field \"memry\" in Limits"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(p + ": invalid policy, 3 errors\n"), std::string::npos) << r.err;

  Ran j = capsa({"check", "--json", p});
  EXPECT_EQ(j.status, 1);
  EXPECT_FALSE(nlohmann::json::parse(j.out, nullptr, false).is_discarded()) << j.out;
  EXPECT_NE(j.out.find("{\"valid\":false,\"errors\":[{\"file\":\"" + p + "\",\"line\":1,\"column\":39,"),
            std::string::npos) << j.out;
}

// A policy that is not UTF-8 is refused at its first bad byte, and --json
// stays JSON (its bytes would otherwise be copied into the output).
TEST_F(CliCheckTest, PolicyThatIsNotUtf8IsInvalidAndJsonStaysJson) {
  std::string p = dir.write("latin1.json", "{\"workers\": [{\"name\": \"caf\xe9\", \"program\": \"/bin/true\"}]}\n");
  Ran r = capsa({"check", "--no-fs-checks", p});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find(p + ":1:27: error: invalid UTF-8 (byte 0xE9): a policy must be UTF-8 text"),
            std::string::npos) << r.err;
  Ran j = capsa({"check", "--json", "--no-fs-checks", p});
  EXPECT_EQ(j.status, 1);
  auto doc = nlohmann::json::parse(j.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << j.out;
  EXPECT_EQ(doc["valid"], false);
  EXPECT_EQ(doc["errors"][0]["line"], 1);
  EXPECT_EQ(doc["errors"][0]["column"], 27);
}

TEST_F(CliCheckTest, MissingProgramIsAnErrorUnlessFsChecksAreOff) {
  std::string nowhere = "bin=/nonexistent/capsa-bin";
  Ran strict = capsa({"check", "--define", nowhere, example("hostile.json")});
  EXPECT_EQ(strict.status, 1);
  EXPECT_NE(strict.err.find("program /nonexistent/capsa-bin/hostile does not exist"), std::string::npos) << strict.err;
  Ran relaxed = capsa({"check", "--no-fs-checks", "--define", nowhere, example("hostile.json")});
  EXPECT_EQ(relaxed.status, 0) << relaxed.err;
}

TEST_F(CliCheckTest, UsageErrorsExitTwo) {
  EXPECT_EQ(capsa({}).status, 2);
  EXPECT_EQ(capsa({"check"}).status, 2);
  EXPECT_EQ(capsa({"check", "--bogus", example("hostile.json")}).status, 2);
  EXPECT_EQ(capsa({"frobnicate"}).status, 2);
  Ran bad_define = capsa({"check", "--define", "novalue", example("hostile.json")});
  EXPECT_EQ(bad_define.status, 2);
  EXPECT_NE(bad_define.err.find("--define wants NAME=VALUE"), std::string::npos) << bad_define.err;
  EXPECT_EQ(capsa({"check", "--help"}).status, 0);
}

// README's `capsa check -D bin=build/plugins ...`: a relative value used as
// a path is taken from the current directory; elsewhere (args) it is kept.
TEST_F(CliCheckTest, RelativeDefineIsAPathFromTheCurrentDirectory) {
  std::string bin_dir = (bin(), dir.path());
  std::string rel = std::filesystem::relative(bin_dir, std::filesystem::current_path()).string();
  ASSERT_NE(rel.front(), '/');
  Ran r = capsa({"check", "-D", "bin=" + rel, example("wordcount.json")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("  program          " + bin_dir + "/wordcount\n"), std::string::npos) << r.out;
  std::string p = dir.write("args.json", R"({"workers": [{"name": "w", "program": "${bin}/wordcount",
                                               "args": ["${bin}"]}]})");
  Ran a = capsa({"check", "--json", "-D", "bin=" + rel, p});
  EXPECT_EQ(a.status, 0) << a.out;
  EXPECT_NE(a.out.find("\"args\":[\"" + rel + "\"]"), std::string::npos) << a.out;
}

// What `capsa run` would refuse when it starts the worker, check refuses:
// a bind over one of the sandbox's own mount points.
TEST_F(CliCheckTest, ASandboxSpecRunWouldRefuseIsInvalid) {
  bin();
  std::string p = dir.write("bind.json", R"({"workers": [{"name": "w", "program": "${bin}/wordcount",
                                               "sandbox": {"ro_binds": ["/dev/shm"]}}]})");
  for (bool fs : {true, false}) {
    std::vector<std::string> args{"check", "-D", "bin=" + dir.path(), p};
    if (!fs) args.insert(args.begin() + 1, "--no-fs-checks");
    Ran r = capsa(args);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find(p + ":2:73: error: read-only bind \"/dev/shm\" is at or below a mount point the "
                             "sandbox makes itself (/, /proc, /dev, /tmp, /.capsa); bind a directory elsewhere\n"),
              std::string::npos) << r.err;
  }
}

TEST_F(CliCheckTest, VersionIsTheProjectVersion) {
  Ran r = capsa({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(std::regex_match(r.out, std::regex("capsa [0-9]+\\.[0-9]+\\.[0-9]+\n"))) << r.out;
}

TEST_F(CliCheckTest, UnreadablePolicyIsInvalidNotUsage) {
  Ran r = capsa({"check", dir.path() + "/missing.json"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot read policy " + dir.path() + "/missing.json"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace capsa::cli
