// Every policy under examples/ stays valid. The example plugins are built
// later and elsewhere, so ${bin} points at a scratch directory of
// executable placeholders with the programs' names; all filesystem checks
// stay on.
#include <gtest/gtest.h>

#include <filesystem>

#include "policy/builtin_apis.h"
#include "policy/loader.h"
#include "policy/test_util.h"

namespace capsa::policy {
namespace {

class ExamplesTest : public ::testing::Test {
 protected:
  testing::TempDir bin;
  LoadOptions options() {
    for (const char* p : {"wordcount", "asker", "counter", "hostile", "reader", "pywordcount"}) {
      bin.executable(p);
    }
    LoadOptions o;
    o.defines["bin"] = bin.path();
    return o;
  }
  Policy load(const std::string& name) {
    auto p = load_policy_file(std::string(CAPSA_EXAMPLES_DIR) + "/" + name, builtin_api_catalog(), options());
    EXPECT_TRUE(p) << name << ":\n" << (p ? "" : format_diagnostics(p.error()));
    return p ? *p : Policy{};
  }
};

TEST_F(ExamplesTest, EveryExampleLoads) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(CAPSA_EXAMPLES_DIR)) {
    if (e.path().extension() != ".json") continue;
    ++n;
    Policy p = load(e.path().filename().string());
    EXPECT_FALSE(p.workers.empty()) << e.path();
  }
  EXPECT_GE(n, 3);
}

TEST_F(ExamplesTest, WordcountReadsTextsReadOnly) {
  Policy p = load("wordcount.json");
  const WorkerProfile* w = p.find_worker("wordcount");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->program, bin.path() + "/wordcount");
  const Grant* texts = w->find_grant("texts");
  ASSERT_NE(texts, nullptr);
  EXPECT_EQ(texts->api, "fs.Directory");
  EXPECT_EQ(std::get<std::string>(*texts->constraint("root")), std::string(CAPSA_EXAMPLES_DIR) + "/texts");
  EXPECT_EQ(std::get<bool>(*texts->constraint("read_only")), true);
  ASSERT_NE(w->find_grant("log"), nullptr);
  EXPECT_EQ(w->grants.size(), 2u);
}

TEST_F(ExamplesTest, PairHasAWordCountChannel) {
  Policy p = load("pair.json");
  ASSERT_EQ(p.channels.size(), 1u);
  EXPECT_EQ(p.channels[0].interface, "demo.WordCount");
  EXPECT_EQ(p.channels[0].client, "asker");
  EXPECT_EQ(p.channels[0].server, "counter");
  for (const char* w : {"asker", "counter"}) {
    ASSERT_NE(p.find_worker(w), nullptr) << w;
    EXPECT_NE(p.find_worker(w)->find_grant("log"), nullptr) << w;
  }
}

TEST_F(ExamplesTest, HostileGetsALogAndAStatOnlyDirectoryAndIsKilledOnBadMessage) {
  Policy p = load("hostile.json");
  const WorkerProfile* w = p.find_worker("hostile");
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->grants.size(), 2u);
  EXPECT_EQ(w->grants[0].api, "log.Sink");
  EXPECT_EQ(w->grants[1].api, "fs.Directory");
  EXPECT_EQ(w->grants[1].rights, std::vector<std::string>{"Stat"});
  EXPECT_EQ(w->on_bad_message, BadMessageAction::kKill);
}

TEST_F(ExamplesTest, WithoutBinTheExamplesSayWhichVariableIsMissing) {
  auto p = load_policy_file(std::string(CAPSA_EXAMPLES_DIR) + "/hostile.json", builtin_api_catalog());
  ASSERT_FALSE(p);
  EXPECT_NE(format_diagnostics(p.error()).find("undefined variable ${bin}"), std::string::npos);
}

}  // namespace
}  // namespace capsa::policy
