#include "policy/explain.h"

#include <gtest/gtest.h>

#include "policy/builder.h"
#include "policy/builtin_apis.h"
#include "policy/jsonc.h"
#include "policy/test_util.h"

namespace capsa::policy {
namespace {

Policy sample(const testing::TempDir& dir) {
  PolicyBuilder b(builtin_api_catalog());
  auto& w = b.worker("wc").program(dir.executable("wc")).env("LANG", "C").pool(3);
  w.limit(LimitKind::kMemory, 128 << 20).allow_syscall("getrandom");
  w.grant("texts", "fs.Directory").right("List").constraint("root", dir.mkdir("t"));
  w.grant("log", "log.Sink").all_rights().rate(10).byte_budget(1 << 20).transferable(true);
  b.worker("other").program(dir.executable("other"));
  b.channel("chat").interface("demo.WordCount").client("wc").server("other");
  auto p = b.try_build();
  if (!p) ADD_FAILURE() << format_diagnostics(p.error());
  return p ? *p : Policy{};
}

TEST(Explain, TextShowsWorkersSandboxLimitsAndGrants) {
  testing::TempDir dir;
  std::string t = explain_text(sample(dir));
  EXPECT_NE(t.find("worker wc\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  program          " + dir.path() + "/wc\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  env              LANG=C\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  on bad message   kill\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  extra syscalls   getrandom\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  warm pool        3 sandboxes started ahead\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  warm pool        none\n"), std::string::npos) << t;  // "other"
  EXPECT_NE(t.find("memory=128M  cpu_seconds=10"), std::string::npos) << t;
  EXPECT_NE(t.find("texts  fs.Directory  List"), std::string::npos) << t;
  EXPECT_NE(t.find("read_only=true"), std::string::npos) << t;
  EXPECT_NE(t.find("log    log.Sink      * = Write"), std::string::npos) << t;
  EXPECT_NE(t.find("chat     demo.WordCount  wc      other"), std::string::npos) << t;
}

TEST(Explain, JsonIsValidAndCarriesTheFacts) {
  testing::TempDir dir;
  std::string j = explain_json(sample(dir));
  auto parsed = json::parse(j, "out.json");
  ASSERT_TRUE(parsed) << parsed.error().to_string() << "\n" << j;
  EXPECT_NE(j.find("\"valid\":true"), std::string::npos);
  EXPECT_NE(j.find("\"memory\":134217728"), std::string::npos) << j;
  EXPECT_NE(j.find("\"rights\":[\"Write\"],\"all_rights\":true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"read_only\":true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"transferable\":true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"output\":\"supervisor\",\"pool\":3,"), std::string::npos) << j;
  EXPECT_NE(j.find("{\"name\":\"chat\",\"interface\":\"demo.WordCount\",\"client\":\"wc\",\"server\":\"other\",\"mode\":\"mediated\"}"),
            std::string::npos) << j;
}

TEST(Explain, DiagnosticsJsonEscapesHostileText) {
  Diagnostics d = {{SourceLoc{"a\"b.json", 3, 4}, "bad \"x\"\n\x01 \\"}};
  std::string j = diagnostics_json(d);
  EXPECT_EQ(j, "{\"valid\":false,\"errors\":[{\"file\":\"a\\\"b.json\",\"line\":3,\"column\":4,"
               "\"message\":\"bad \\\"x\\\"\\u000a\\u0001 \\\\\"}]}\n");
  EXPECT_TRUE(json::parse(j, "out.json"));
}

}  // namespace
}  // namespace capsa::policy
