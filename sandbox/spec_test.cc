#include "sandbox/spec.h"

#include <gtest/gtest.h>

namespace capsa::sandbox {
namespace {

TEST(SpecBuilder, BuildsAValidSpecWithDefaults) {
  auto spec = SpecBuilder().name("w").program("/bin/true").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec->argv, std::vector<std::string>{"true"});  // the file name, no host directory
  EXPECT_TRUE(spec->env.empty());
  EXPECT_EQ(spec->on_violation, ViolationAction::kErrno);
  EXPECT_FALSE(spec->launcher.empty());
}

TEST(SpecBuilder, CollectsEveryError) {
  auto spec = SpecBuilder()
                  .name("")
                  .program("bin/true")
                  .env("A=B", "x")
                  .ro_bind("/does/not/exist", "/x")
                  .ro_bind("/usr", "/proc/x")
                  .ro_bind("/usr/../etc", "/y")
                  .tmpfs_bytes(10)
                  .allow_syscall("no_such_call")
                  .build();
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().code, Errc::kInvalidArgument);
  const std::string& m = spec.error().message;
  for (const char* want : {"name:", "program:", "env: bad key", "source does not exist",
                           "destination is reserved", "without '.', '..'", "tmpfs_bytes",
                           "unknown syscall 'no_such_call'"}) {
    EXPECT_NE(m.find(want), std::string::npos) << "missing '" << want << "' in:\n" << m;
  }
}

TEST(SpecBuilder, RefusesDuplicateEnvAndOversizedArgs) {
  auto dup = SpecBuilder().name("w").program("/bin/true").env("A", "1").env("A", "2").build();
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("set twice"), std::string::npos);
  auto big = SpecBuilder().name("w").program("/bin/true")
                 .args({"/bin/true", std::string(kMaxArgBytes, 'a')}).build();
  ASSERT_FALSE(big);
  auto at_limit = SpecBuilder().name("w").program("/bin/true")
                      .args({std::string(kMaxArgBytes - 1, 'a')}).build();
  EXPECT_TRUE(at_limit) << at_limit.error().to_string();
}

TEST(SpecBuilder, AcceptsKnownExtraSyscalls) {
  auto spec = SpecBuilder().name("w").program("/bin/true").allow_syscall("socket").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec->extra_syscalls, std::vector<std::string>{"socket"});
}

TEST(SpecBuilder, OutputsDefaultToInheritAndCanBeSet) {
  auto def = SpecBuilder().name("w").program("/bin/true").build();
  ASSERT_TRUE(def) << def.error().to_string();
  EXPECT_EQ(def->stdout_to, Output::kInherit);
  EXPECT_EQ(def->stderr_to, Output::kInherit);
  auto set = SpecBuilder().name("w").program("/bin/true").stdout_to(Output::kPipe)
                 .stderr_to(Output::kNull).build();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(set->stdout_to, Output::kPipe);
  EXPECT_EQ(set->stderr_to, Output::kNull);
  auto bad = SpecBuilder().name("w").program("/bin/true").stderr_to(static_cast<Output>(7)).build();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("unknown Output value"), std::string::npos);
}

// Each bind is one fd and one mount on the way into the sandbox: bounded,
// at the limit and one past it.
TEST(SpecBuilder, AtMostKMaxBinds) {
  SpecBuilder b;
  b.name("w").program("/bin/true");
  for (std::size_t i = 0; i < kMaxBinds; ++i) b.ro_bind("/usr", "/b" + std::to_string(i));
  EXPECT_TRUE(b.build());
  b.ro_bind("/usr", "/last");
  auto over = b.build();
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message, "invalid sandbox spec for w\n  ro_bind: 65 binds, at most 64");
}

}  // namespace
}  // namespace capsa::sandbox
