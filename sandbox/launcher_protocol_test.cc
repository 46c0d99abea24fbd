#include "sandbox/launcher_protocol.h"

#include <gtest/gtest.h>

namespace capsa::sandbox::detail {
namespace {

Spec sample() {
  auto s = SpecBuilder().name("w").program("/bin/echo").args({"echo", "hi"}).env("K", "V")
               .allow_syscall("socket").build();
  EXPECT_TRUE(s);
  return *s;
}

TEST(LauncherConfig, RoundTrips) {
  auto bytes = encode_config(sample());
  auto c = decode_config(bytes);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->program, "/bin/echo");
  EXPECT_EQ(c->argv, (std::vector<std::string>{"echo", "hi"}));
  EXPECT_EQ(c->env, std::vector<std::string>{"K=V"});
  EXPECT_EQ(c->extra_syscalls, std::vector<std::string>{"socket"});
  EXPECT_EQ(c->limits.cpu_seconds, Limits{}.cpu_seconds);
}

TEST(LauncherConfig, RefusesEveryTruncationAndTrailingBytes) {
  auto bytes = encode_config(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto c = decode_config(std::span(bytes).first(n));
    EXPECT_FALSE(c) << "accepted a config truncated to " << n << " bytes";
  }
  bytes.push_back(0);
  EXPECT_FALSE(decode_config(bytes));
}

TEST(LauncherConfig, RefusesHugeCountsAndBadAction) {
  auto bytes = encode_config(sample());
  // The argv count sits after magic, version, 5 limits, action and program.
  std::size_t argv_count = 4 + 4 + 5 * 8 + 4 + 4 + std::string("/bin/echo").size();
  auto huge = bytes;
  huge[argv_count + 3] = 0x7f;
  EXPECT_FALSE(decode_config(huge));
  auto bad_action = bytes;
  bad_action[4 + 4 + 5 * 8] = 9;
  EXPECT_FALSE(decode_config(bad_action));
}

}  // namespace
}  // namespace capsa::sandbox::detail
