#include "policy/limits.h"

#include <gtest/gtest.h>

namespace capsa::policy {
namespace {

TEST(Sizes, ParseAcceptsDigitsAndBinarySuffixes) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("64K"), 64u << 10);
  EXPECT_EQ(parse_size("16M"), 16u << 20);
  EXPECT_EQ(parse_size("1G"), 1ull << 30);
  EXPECT_EQ(parse_size("2T"), 2ull << 40);
  EXPECT_EQ(parse_size("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(parse_size("16777215T"), 16777215ull << 40);
}

TEST(Sizes, ParseRefusesEverythingElse) {
  for (const char* bad : {"", "K", "64k", "64MB", "64 M", "-1", "1.5G", "0x10", "18446744073709551616",
                          "16777216T", "99999999999999999999999"}) {
    EXPECT_FALSE(parse_size(bad)) << bad;
  }
}

TEST(Sizes, FormatIsExactAndShortest) {
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(64u << 10), "64K");
  EXPECT_EQ(format_size(1536u << 10), "1536K");
  EXPECT_EQ(format_size(256u << 20), "256M");
  EXPECT_EQ(format_size(4ull << 40), "4T");
}

TEST(Limits, DefaultsAreInsideTheirRanges) {
  Limits l;
  for (const LimitSpec& s : limit_specs()) {
    EXPECT_EQ(l.get(s.kind), s.default_value) << s.name;
    EXPECT_GE(s.default_value, s.min) << s.name;
    EXPECT_LE(s.default_value, s.max) << s.name;
    l.set(s.kind, s.max);
    EXPECT_EQ(l.get(s.kind), s.max) << s.name;
  }
  EXPECT_EQ(limit_spec(LimitKind::kMessageBytes).default_value, 65536u);
  EXPECT_EQ(limit_spec(LimitKind::kMessageBytes).max, 16u << 20);
}

}  // namespace
}  // namespace capsa::policy
