#include "policy/jsonc.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

namespace capsa::policy::json {
namespace {

const std::string kFile = "t.json";

Diagnostic parse_error(std::string_view text) {
  auto r = parse(text, kFile);
  EXPECT_FALSE(r.has_value()) << text;
  return r ? Diagnostic{} : r.error();
}

TEST(Jsonc, KeepsPositionsOfKeysAndValues) {
  auto r = parse("{\n  \"a\": [1, \"x\"],\n\t\"b\": {\"c\": true}\n}", kFile);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->members.size(), 2u);
  const Member& a = r->members[0];
  EXPECT_EQ(a.key, "a");
  EXPECT_EQ(a.line, 2u);
  EXPECT_EQ(a.column, 3u);
  EXPECT_EQ(a.value.items[1].kind, Kind::kString);
  EXPECT_EQ(a.value.items[1].line, 2u);
  EXPECT_EQ(a.value.items[1].column, 12u);
  const Member& b = r->members[1];
  EXPECT_EQ(b.line, 3u);
  EXPECT_EQ(b.column, 2u);  // a tab is one column
  EXPECT_EQ(b.value.members[0].value.kind, Kind::kBool);
  EXPECT_TRUE(b.value.members[0].value.boolean);
}

TEST(Jsonc, AcceptsBothCommentStyles) {
  auto r = parse("// head\n{ /* inline\n spans lines */ \"k\": 1 // tail\n}\n/* end */", kFile);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->members[0].value.text, "1");
  EXPECT_EQ(r->members[0].line, 3u);
}

TEST(Jsonc, DecodesEscapesAndSurrogatePairs) {
  auto r = parse(R"(["a\"b\\c\/\n\t", "\u00e9\ud83d\ude00"])", kFile);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->items[0].text, "a\"b\\c/\n\t");
  EXPECT_EQ(r->items[1].text, "\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(Jsonc, AcceptsUtf8TextOfEveryLength) {
  // 2, 3 and 4 byte sequences, in a string and in a comment; the column of
  // an error after them counts bytes, like every other position.
  auto ok = parse("// \xc3\xa9t\xc3\xa9\n[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"]", kFile);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(ok->items.at(0).text, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(parse_error("[\"\xe2\x82\xac\" x]").where.to_string(), "t.json:1:8");
}

TEST(Jsonc, SyntaxErrorsNameTheirPosition) {
  struct Case {
    const char* text;
    const char* where;
    const char* fragment;
  } cases[] = {
      {"{\"a\": 1,}", "t.json:1:9", "trailing comma"},
      {"[1, 2,]", "t.json:1:7", "trailing comma"},
      {"{a: 1}", "t.json:1:2", "quoted key"},
      {"{\"a\" 1}", "t.json:1:6", "expected ':'"},
      {"{\"a\": 1 \"b\": 2}", "t.json:1:9", "expected ',' or '}'"},
      {"\n  \"abc", "t.json:2:3", "unterminated string"},
      {"/* never closed", "t.json:1:1", "unterminated /* comment"},
      {"[01]", "t.json:1:3", "leading zeros"},
      {"[1.]", "t.json:1:4", "digits after '.'"},
      {"[-]", "t.json:1:3", "expected digits"},
      {"[nul]", "t.json:1:2", "expected a value"},
      {"{\"a\": 1, \"a\": 2}", "t.json:1:10", "duplicate key \"a\""},
      {"\"\\u0000\"", "t.json:1:8", "\\u0000 is not allowed"},
      {"\"\\ud800x\"", "t.json:1:8", "unpaired high surrogate"},
      {"\"\\x\"", "t.json:1:4", "unknown escape"},
      {"\"a\tb\"", "t.json:1:3", "control character"},
      {"{} {}", "t.json:1:4", "after the top-level value"},
      {"", "t.json:1:1", "end of the file"},
      // Not UTF-8: refused at the first bad byte, in strings and comments.
      {"{\"a\": \"x\xff\"}", "t.json:1:9", "invalid UTF-8 (byte 0xFF)"},
      {"// caf\xe9\n{}", "t.json:1:7", "invalid UTF-8 (byte 0xE9)"},
      {"[\"\xc0\xaf\"]", "t.json:1:3", "invalid UTF-8 (byte 0xC0)"},      // overlong '/'
      {"[\"\xed\xa0\x80\"]", "t.json:1:3", "invalid UTF-8 (byte 0xED)"},  // a surrogate
      {"[\"\xf4\x90\x80\x80\"]", "t.json:1:3", "invalid UTF-8 (byte 0xF4)"},  // > U+10FFFF
      {"[\n\"\xe2\x82\"]", "t.json:2:2", "invalid UTF-8 (byte 0xE2)"},  // cut short
  };
  for (const Case& c : cases) {
    Diagnostic d = parse_error(c.text);
    EXPECT_EQ(d.where.to_string(), c.where) << c.text << " -> " << d.to_string();
    EXPECT_NE(d.message.find(c.fragment), std::string::npos) << c.text << " -> " << d.to_string();
  }
}

TEST(Jsonc, NestingAtTheLimitParsesAndOneMoreIsRefused) {
  std::string ok = std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']');
  EXPECT_TRUE(parse(ok, kFile));
  std::string deep = std::string(kMaxDepth + 1, '[') + std::string(kMaxDepth + 1, ']');
  Diagnostic d = parse_error(deep);
  EXPECT_NE(d.message.find("nesting deeper than 32"), std::string::npos) << d.to_string();
  EXPECT_EQ(d.where.column, kMaxDepth + 1);
  // A hostile file of a million '[' fails the same way, without recursing.
  EXPECT_FALSE(parse(std::string(kMaxInputBytes, '['), kFile));
}

TEST(Jsonc, SizeLimitAtLimitAndOver) {
  std::string at_limit = "\"" + std::string(kMaxInputBytes - 2, 'a') + "\"";
  ASSERT_EQ(at_limit.size(), kMaxInputBytes);
  EXPECT_TRUE(parse(at_limit, kFile));
  Diagnostic d = parse_error(at_limit + " ");
  EXPECT_NE(d.message.find("larger than 1048576 bytes"), std::string::npos);
}

TEST(Jsonc, ValueCountLimitAtLimitAndOver) {
  auto array_of = [](std::size_t n) {
    std::string s = "[";
    for (std::size_t i = 0; i < n; ++i) s += i ? ",0" : "0";
    return s + "]";
  };
  EXPECT_TRUE(parse(array_of(kMaxValues - 1), kFile));  // + the array itself
  Diagnostic d = parse_error(array_of(kMaxValues));
  EXPECT_NE(d.message.find("too many values"), std::string::npos);
}

TEST(Jsonc, ReadFileRefusesNonRegularAndMissing) {
  auto dir = read_file("/");
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error().find("not a regular file"), std::string::npos);
  auto dev = read_file("/dev/zero");  // would never end if read
  ASSERT_FALSE(dev);
  EXPECT_NE(dev.error().find("not a regular file"), std::string::npos);
  // A FIFO would block an open() for reading until a writer came.
  std::string fifo = "/tmp/capsa-jsonc-fifo-" + std::to_string(::getpid());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto pipe_file = read_file(fifo);
  ::unlink(fifo.c_str());
  ASSERT_FALSE(pipe_file);
  EXPECT_NE(pipe_file.error().find("not a regular file"), std::string::npos);
  auto missing = read_file("/nonexistent/capsa.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("/nonexistent/capsa.json"), std::string::npos);
}

}  // namespace
}  // namespace capsa::policy::json
