#include "policy/limits.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

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

// docs/POLICY.md has the one table of limits; its defaults and ranges are
// these, so the page cannot drift from the code.
std::string policy_md() {
  std::ifstream in(std::string(CAPSA_DOCS_DIR) + "/POLICY.md");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string table_row(const std::string& doc, const std::string& first_cell) {
  const std::string start = "\n| " + first_cell;
  auto at = doc.find(start);
  if (at == std::string::npos) return "";
  return doc.substr(at + 1, doc.find('\n', at + 1) - at - 1);
}

TEST(Limits, PolicyMdTableStatesEachDefaultAndRange) {
  const std::string doc = policy_md();
  ASSERT_FALSE(doc.empty()) << CAPSA_DOCS_DIR "/POLICY.md";
  for (const LimitSpec& s : limit_specs()) {
    auto text = [&](std::uint64_t v) { return s.is_size ? format_size(v) : std::to_string(v); };
    const std::string row =
        table_row(doc, "`" + std::string(s.name) + "`" + (s.is_size ? " (size)" : ""));
    ASSERT_FALSE(row.empty()) << s.name << " has no row";
    EXPECT_NE(row.find("| `" + text(s.default_value) + "` | " + text(s.min) + ".." + text(s.max) +
                       " |"),
              std::string::npos)
        << row;
  }
  EXPECT_NE(table_row(doc, "`sandbox.tmpfs_size` (size)")
                .find("| `" + format_size(kDefaultTmpfsBytes) + "` | " + format_size(kMinTmpfsBytes) +
                      ".." + format_size(kMaxTmpfsBytes) + " |"),
            std::string::npos);
  EXPECT_NE(table_row(doc, "file size (not settable)").find("| `" + format_size(kFileSizeLimitBytes) + "` |"),
            std::string::npos);
}

}  // namespace
}  // namespace capsa::policy
