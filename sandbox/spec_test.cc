#include "sandbox/spec.h"

#include <gtest/gtest.h>

#include "sandbox/testdata/test_limits.h"

namespace capsa::sandbox {
namespace {

using testing::sandbox_test_limits;

// A builder that passes build(): a name, a program and every limit.
SpecBuilder valid() {
  SpecBuilder b;
  b.name("w").program("/bin/true").limits(sandbox_test_limits());
  return b;
}

TEST(SpecBuilder, BuildsAValidSpecWithDefaults) {
  auto spec = valid().build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec->argv, std::vector<std::string>{"true"});  // the file name, no host directory
  EXPECT_TRUE(spec->env.empty());
  EXPECT_EQ(spec->on_violation, ViolationAction::kErrno);
  EXPECT_FALSE(spec->launcher.empty());
}

TEST(SpecBuilder, LimitsHaveNoDefaultsAndBuildNamesEachUnsetOne) {
  const char* const kFields[] = {"address_space_bytes", "cpu_seconds", "wall_seconds",
                                 "max_processes", "max_open_files", "max_file_size_bytes"};
  auto none = SpecBuilder().name("w").program("/bin/true").build();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::kInvalidArgument);
  for (const char* field : kFields) {
    EXPECT_NE(none.error().message.find("limits." + std::string(field) +
                                        ": not set (the sandbox has no default limits; "
                                        "policy/limits.h has them)"),
              std::string::npos)
        << field << " in:\n" << none.error().message;
  }
  Limits partial = sandbox_test_limits();
  partial.max_open_files = kUnsetLimit;
  auto one = valid().limits(partial).build();
  ASSERT_FALSE(one);
  EXPECT_EQ(one.error().message,
            "invalid sandbox spec for w\n  limits.max_open_files: not set (the sandbox has no "
            "default limits; policy/limits.h has them)");
}

TEST(SpecBuilder, LimitsPassThroughAsGivenAndZeroIsAValue) {
  Limits l{.address_space_bytes = 0, .cpu_seconds = 1, .wall_seconds = 0, .max_processes = 2,
           .max_open_files = 9, .max_file_size_bytes = 4096};
  auto spec = valid().limits(l).build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec->limits.address_space_bytes, 0u);
  EXPECT_EQ(spec->limits.cpu_seconds, 1u);
  EXPECT_EQ(spec->limits.wall_seconds, 0u);
  EXPECT_EQ(spec->limits.max_processes, 2u);
  EXPECT_EQ(spec->limits.max_open_files, 9u);
  EXPECT_EQ(spec->limits.max_file_size_bytes, 4096u);
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
  auto dup = valid().env("A", "1").env("A", "2").build();
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("set twice"), std::string::npos);
  auto big = valid()
                 .args({"/bin/true", std::string(kMaxArgBytes, 'a')}).build();
  ASSERT_FALSE(big);
  auto at_limit = valid()
                      .args({std::string(kMaxArgBytes - 1, 'a')}).build();
  EXPECT_TRUE(at_limit) << at_limit.error().to_string();
}

TEST(SpecBuilder, AcceptsKnownExtraSyscalls) {
  auto spec = valid().allow_syscall("socket").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(spec->extra_syscalls, std::vector<std::string>{"socket"});
}

TEST(SpecBuilder, OutputsDefaultToInheritAndCanBeSet) {
  auto def = valid().build();
  ASSERT_TRUE(def) << def.error().to_string();
  EXPECT_EQ(def->stdout_to, Output::kInherit);
  EXPECT_EQ(def->stderr_to, Output::kInherit);
  auto set = valid().stdout_to(Output::kPipe)
                 .stderr_to(Output::kNull).build();
  ASSERT_TRUE(set) << set.error().to_string();
  EXPECT_EQ(set->stdout_to, Output::kPipe);
  EXPECT_EQ(set->stderr_to, Output::kNull);
  auto bad = valid().stderr_to(static_cast<Output>(7)).build();
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("unknown Output value"), std::string::npos);
}

// Each bind is one fd and one mount on the way into the sandbox: bounded,
// at the limit and one past it.
TEST(SpecBuilder, AtMostKMaxBinds) {
  SpecBuilder b = valid();
  for (std::size_t i = 0; i < kMaxBinds; ++i) b.ro_bind("/usr", "/b" + std::to_string(i));
  EXPECT_TRUE(b.build());
  b.ro_bind("/usr", "/last");
  auto over = b.build();
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message, "invalid sandbox spec for w\n  ro_bind: 65 binds, at most 64");
}

}  // namespace
}  // namespace capsa::sandbox
