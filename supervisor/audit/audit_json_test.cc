// The audit log's lines as JSON: every event one valid line with its
// fields, hostile strings escaped (and decoded back), long strings cut;
// and a check that the strict JSON checker itself can fail.
#include "supervisor/audit/audit_log.h"

#include <functional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/audit/audit_log_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::audit_testing;

TEST(AuditJsonChecker, RejectsWhatIsNotStrictJson) {
  // The checker itself must be able to fail, or the tests below prove nothing.
  EXPECT_TRUE(parse_strict(R"({"a":[1,-2.5e3,true,null,"x\u00e9\ud83d\ude00"],"b":{"a":1}})").has_value());
  for (std::string bad : {std::string("{\"a\":\"\x01\"}"), std::string(R"({"a":"\q"})"),
                          std::string(R"({"a":"\ud800"})"), std::string("{\"a\":\"\xff\"}"),
                          std::string("{\"a\":\"\xed\xa0\x80\"}"), std::string(R"({"a":1,})"),
                          std::string(R"({"a":1,"a":2})"), std::string(R"({"a":{"b":1,"b":1}})"),
                          std::string(R"({"a":01})"), std::string(R"({"a":1} x)"),
                          std::string(R"({"a":"unterminated})")}) {
    EXPECT_FALSE(parse_strict(bad).has_value()) << bad;
  }
}

TEST(AuditLog, EveryEventIsOneFlushedValidJsonLine) {
  capsa::testing::FdLeakCheck leaks;
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  {
    auto opened = AuditLog::open(path);
    ASSERT_TRUE(opened.has_value());
    AuditLog& log = **opened;
    std::vector<std::string> rights{"Open", "List"};
    SeccompViolation v{.worker = "w1", .pid = 42, .syscall = "ptrace", .syscall_nr = 101,
                       .args = {1, 2, 0xffffffffffffffffULL, 0, 0, 0}, .action = "killed"};
    std::vector<std::pair<std::string, std::function<Result<std::uint64_t>()>>> events = {
        {"worker_started", [&] { return log.worker_started("w1", 42, "/usr/bin/plugin"); }},
        {"worker_exited", [&] { return log.worker_exited("w1", 42, {.signal = 9, .user_us = 10}); }},
        {"grant_created",
         [&] { return log.grant_created(7, "w1", "fs.Directory", GrantOrigin::kAttenuated, rights, 3); }},
        {"port_transferred", [&] { return log.port_transferred(7, "w1", "w2"); }},
        {"call_denied", [&] { return log.call_denied("w1", 7, "fs.Directory", "Write", "not in rights"); }},
        {"bad_message", [&] { return log.bad_message("w1", 7, "payload verify failed", "close port"); }},
        {"seccomp_violation", [&] { return log.seccomp_violation(v); }},
        {"revoked", [&] { return log.revoked(7, "w2", "operator"); }},
        {"released", [&] { return log.released(7, "w2", "holder closed the port"); }},
        {"custom", [&] { return log.event("custom", AuditFields().str("k", "v").num("n", -1)); }},
    };
    std::uint64_t expect_seq = 2;  // 1 is audit_opened
    for (auto& [name, write] : events) {
      auto seq = write();
      ASSERT_TRUE(seq.has_value()) << seq.error().to_string();
      EXPECT_EQ(*seq, expect_seq);
      // Read back while the writer is alive: the line is already in the file.
      auto lines = read_lines(path);
      ASSERT_EQ(lines.size(), expect_seq);
      Value line = parse_line(lines.back());
      EXPECT_EQ(field(line, "event"), name);
      EXPECT_EQ(field(line, "seq"), std::to_string(expect_seq));
      EXPECT_TRUE(std::regex_match(field(line, "ts"),
                                   std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
      ++expect_seq;
    }
    EXPECT_EQ(log.last_seq(), expect_seq - 1);
    auto lines = read_lines(path);
    Value exited = parse_line(lines[2]);
    EXPECT_EQ(field(exited, "signal"), "9");
    EXPECT_FALSE(exited.contains("exit_code"));
    Value grant = parse_line(lines[3]);
    EXPECT_EQ(field(grant, "origin"), "attenuated");
    EXPECT_EQ(field(grant, "parent_grant"), "3");
    ASSERT_TRUE(grant.contains("rights"));
    EXPECT_EQ(grant["rights"], Value::array({"Open", "List"}));
    Value sc = parse_line(lines[7]);
    EXPECT_EQ(field(sc, "syscall"), "ptrace");
    ASSERT_TRUE(sc.contains("args"));
    EXPECT_EQ(sc["args"].at(2), "0xffffffffffffffff");
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(AuditLog, HostileStringsStayOneValidLine) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log.has_value());
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) all_controls += static_cast<char>(c);
  all_controls += '\x7f';
  struct Case {
    std::string in;
    std::string decoded;
  };
  const std::string fffd = "\xef\xbf\xbd";
  std::vector<Case> cases = {
      {R"(quote " backslash \ slash /)", R"(quote " backslash \ slash /)"},
      {"line\nbreak\r\n{\"event\":\"forged\"}", "line\nbreak\r\n{\"event\":\"forged\"}"},
      {all_controls, all_controls},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"},  // valid UTF-8 kept
      {"\xff", fffd},                                                    // never valid
      {"\xc0\xaf", fffd + fffd},                                         // overlong '/'
      {"\xed\xa0\x80", fffd + fffd + fffd},                              // surrogate
      {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},                   // above U+10FFFF
      {"cut \xe2\x82", "cut " + fffd + fffd},                            // truncated sequence
      {"ls\xe2\x80\xa8ps\xe2\x80\xa9", "ls\xe2\x80\xa8ps\xe2\x80\xa9"},    // escaped, decodes back
      {std::string("nul\0inside", 10), std::string("nul\0inside", 10)},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE((*log)->call_denied(c.in, 1, c.in, c.in, c.in).has_value());
  }
  std::string raw = read_all(path);
  // U+2028/2029 are written escaped, never raw.
  EXPECT_EQ(raw.find("\xe2\x80\xa8"), std::string::npos);
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), cases.size() + 1);  // no string added a line
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Value line = parse_line(lines[i + 1]);
    EXPECT_EQ(field(line, "event"), "call_denied");
    EXPECT_EQ(field(line, "worker"), cases[i].decoded) << "case " << i;
    EXPECT_EQ(field(line, "reason"), cases[i].decoded) << "case " << i;
  }
}

TEST(AuditLog, LongStringsAreCutAtTheLimit) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log.has_value());
  std::string at_limit(kMaxAuditStringBytes, 'a');
  std::string over(kMaxAuditStringBytes + 1, 'b');
  ASSERT_TRUE((*log)->event("x", AuditFields().str("s", at_limit)).has_value());
  ASSERT_TRUE((*log)->event("x", AuditFields().str("s", over)).has_value());
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(field(parse_line(lines[1]), "s"), at_limit);
  EXPECT_EQ(field(parse_line(lines[2]), "s"), std::string(kMaxAuditStringBytes, 'b') + "...[truncated]");
}

}  // namespace
}  // namespace capsa::supervisor
