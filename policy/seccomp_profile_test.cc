#include "policy/seccomp_profile.h"

#include <gtest/gtest.h>

#include "policy/test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::policy {
namespace {

Checked<ImportedSeccompProfile> import(std::string_view text) {
  return import_seccomp_profile_text(text, "prof.json");
}

TEST(SeccompProfile, ImportsOnlyUnconditionalAllowEntries) {
  auto r = import(R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
      {"names": ["read", "write", "read"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
      {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"},
      {"names": ["not_a_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
      {"name": "getpid", "action": "SCMP_ACT_ALLOW", "args": []}
    ]
  })");
  ASSERT_TRUE(r) << format_diagnostics(r.error());
  EXPECT_EQ(r->allowed, (std::vector<std::string>{"getpid", "read", "write"}));
  EXPECT_EQ(r->skipped, (std::vector<std::string>{"personality (conditional entry)",
                                                  "mount (conditional entry)",
                                                  "not_a_syscall_xyz (unknown to libseccomp)"}));
}

TEST(SeccompProfile, RefusesADenylistProfile) {
  auto r = import("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": []}");
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().size(), 1u);
  EXPECT_EQ(r.error()[0].where.to_string(), "prof.json:1:19");
  EXPECT_NE(r.error()[0].message.find("denylist"), std::string::npos);
}

TEST(SeccompProfile, MalformedEntriesAreAllReportedWithPositions) {
  std::string text =
      "{\"syscalls\": [\n"
      "  7,\n"
      "  {\"names\": \"read\", \"action\": \"SCMP_ACT_ALLOW\"},\n"
      "  {\"names\": [\"Read!\"], \"action\": \"SCMP_ACT_ALLOW\"},\n"
      "  {\"names\": [\"read\"], \"action\": 1}\n"
      "]}";
  auto r = import(text);
  ASSERT_FALSE(r);
  const Diagnostics& d = r.error();
  ASSERT_EQ(d.size(), 5u) << format_diagnostics(d);
  EXPECT_TRUE(testing::has_diag(d, "prof.json:1:1", "missing \"defaultAction\""));
  EXPECT_TRUE(testing::has_diag(d, "prof.json:2:3", "must be an object"));
  EXPECT_TRUE(testing::has_diag(d, "prof.json:3:13", "\"names\" must be an array"));
  EXPECT_TRUE(testing::has_diag(d, "prof.json:4:14", "a syscall name is a string of a-z"));
  EXPECT_TRUE(testing::has_diag(d, "prof.json:5:33", "\"action\" must be a string"));
}

TEST(SeccompProfile, NotAnObjectAndUnreadableFiles) {
  auto r = import("[]");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error()[0].where.to_string(), "prof.json:1:1");
  capsa::testing::FdLeakCheck fds;
  auto missing = import_seccomp_profile("/nonexistent/profile.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error()[0].message.find("/nonexistent/profile.json"), std::string::npos);
  auto dir = import_seccomp_profile("/tmp");
  ASSERT_FALSE(dir);
  EXPECT_NE(dir.error()[0].message.find("not a regular file"), std::string::npos);
  EXPECT_EQ(fds.leaked(), 0);
}

TEST(SeccompProfile, KnownSyscallUsesLibseccompTable) {
  EXPECT_TRUE(is_known_syscall("openat"));
  EXPECT_FALSE(is_known_syscall("openat2x"));
  EXPECT_FALSE(is_known_syscall(""));
}

}  // namespace
}  // namespace capsa::policy
