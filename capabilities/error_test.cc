// The propagation macros and with_context(): an error comes back exactly
// (code, message, errno), a value passes through, move-only values are
// moved, and each expression runs once.
#include "capabilities/error.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace capsa {
namespace {

Result<int> value_or_error(bool ok, int* calls = nullptr) {
  if (calls != nullptr) ++*calls;
  if (!ok) return make_error(Errc::kDenied, "not in the rights", EACCES);
  return 42;
}

Result<void> void_or_error(bool ok, int* calls) {
  ++*calls;
  if (!ok) return make_error(Errc::kOverloaded, "budget spent", 0);
  return {};
}

Result<std::unique_ptr<int>> move_only(bool ok) {
  if (!ok) return make_error(Errc::kNotFound, "no such thing", ENOENT);
  return std::make_unique<int>(7);
}

void expect_same(const Error& got, Errc code, const std::string& message, int sys_errno) {
  EXPECT_EQ(got.code, code);
  EXPECT_EQ(got.message, message);
  EXPECT_EQ(got.sys_errno, sys_errno);
}

TEST(CapsaTry, ReturnsTheErrorExactlyAndStopsThere) {
  int calls = 0;
  bool after = false;
  auto f = [&]() -> Result<std::string> {
    CAPSA_TRY(value_or_error(false, &calls));
    after = true;
    return "unreachable";
  };
  auto r = f();
  ASSERT_FALSE(r);
  expect_same(r.error(), Errc::kDenied, "not in the rights", EACCES);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(after);
}

TEST(CapsaTry, PassesOnSuccessAndEvaluatesOnce) {
  int calls = 0;
  auto f = [&]() -> Result<int> {
    CAPSA_TRY(void_or_error(true, &calls));
    CAPSA_TRY(value_or_error(true, &calls));  // value dropped
    return 5;
  };
  EXPECT_EQ(f().value_or(-1), 5);
  EXPECT_EQ(calls, 2);
}

TEST(CapsaTry, VoidResultErrorCrossesIntoAnotherResultType) {
  int calls = 0;
  auto f = [&]() -> Result<std::unique_ptr<int>> {
    CAPSA_TRY(void_or_error(false, &calls));
    return std::make_unique<int>(1);
  };
  auto r = f();
  ASSERT_FALSE(r);
  expect_same(r.error(), Errc::kOverloaded, "budget spent", 0);
  EXPECT_EQ(calls, 1);
}

TEST(CapsaTry, NamedResultIsCopiedNotMovedFrom) {
  const Result<int> kept = value_or_error(false);
  auto f = [&]() -> Result<void> {
    CAPSA_TRY(kept);
    return {};
  };
  auto r = f();
  ASSERT_FALSE(r);
  expect_same(r.error(), Errc::kDenied, "not in the rights", EACCES);
  expect_same(kept.error(), Errc::kDenied, "not in the rights", EACCES);
}

TEST(CapsaTryContext, PrefixesTheMessageKeepsCodeAndErrnoAndBuildsContextOnlyOnError) {
  int built = 0;
  auto context = [&] {
    ++built;
    return std::string("opening the root");
  };
  auto f = [&](bool ok) -> Result<int> {
    CAPSA_TRY_CONTEXT(value_or_error(ok), context());
    return 1;
  };
  ASSERT_TRUE(f(true));
  EXPECT_EQ(built, 0);
  auto r = f(false);
  ASSERT_FALSE(r);
  expect_same(r.error(), Errc::kDenied, "opening the root: not in the rights", EACCES);
  EXPECT_EQ(built, 1);
}

TEST(CapsaAssignOrReturn, DeclaresTheValueAndEvaluatesOnce) {
  int calls = 0;
  auto f = [&]() -> Result<int> {
    CAPSA_ASSIGN_OR_RETURN(int v, value_or_error(true, &calls));
    return v + 1;
  };
  EXPECT_EQ(f().value_or(-1), 43);
  EXPECT_EQ(calls, 1);
}

TEST(CapsaAssignOrReturn, ReturnsTheErrorExactlyAndLeavesTheTargetUntouched) {
  int calls = 0;
  int target = -1;
  auto f = [&]() -> Result<void> {
    CAPSA_ASSIGN_OR_RETURN(target, value_or_error(false, &calls));
    return {};
  };
  auto r = f();
  ASSERT_FALSE(r);
  expect_same(r.error(), Errc::kDenied, "not in the rights", EACCES);
  EXPECT_EQ(target, -1);
  EXPECT_EQ(calls, 1);
}

TEST(CapsaAssignOrReturn, MovesMoveOnlyValuesIntoNewAndExistingVariables) {
  auto declare = []() -> Result<int> {
    CAPSA_ASSIGN_OR_RETURN(std::unique_ptr<int> p, move_only(true));
    return *p;
  };
  ASSERT_TRUE(declare());
  EXPECT_EQ(*declare(), 7);

  std::unique_ptr<int> existing;
  auto assign = [&]() -> Result<void> {
    CAPSA_ASSIGN_OR_RETURN(existing, move_only(true));
    return {};
  };
  ASSERT_TRUE(assign());
  ASSERT_NE(existing, nullptr);
  EXPECT_EQ(*existing, 7);

  auto fail = []() -> Result<int> {
    CAPSA_ASSIGN_OR_RETURN(auto p, move_only(false));
    return *p;
  };
  auto r = fail();
  ASSERT_FALSE(r);
  expect_same(r.error(), Errc::kNotFound, "no such thing", ENOENT);
}

TEST(CapsaAssignOrReturn, TwoInOneScopeDoNotCollide) {
  auto f = []() -> Result<int> {
    CAPSA_ASSIGN_OR_RETURN(int a, value_or_error(true));
    CAPSA_ASSIGN_OR_RETURN(int b, value_or_error(true));
    return a + b;
  };
  EXPECT_EQ(f().value_or(0), 84);
}

TEST(CapsaAssignOrReturnContext, PrefixesOnlyTheError) {
  auto f = [](bool ok) -> Result<int> {
    CAPSA_ASSIGN_OR_RETURN_CONTEXT(int v, value_or_error(ok), "reading the header");
    return v;
  };
  EXPECT_EQ(f(true).value_or(0), 42);
  auto r = f(false);
  ASSERT_FALSE(r);
  expect_same(r.error(), Errc::kDenied, "reading the header: not in the rights", EACCES);
}

TEST(ErrorWithContext, PrefixesAndKeepsCodeAndErrno) {
  const Error e{Errc::kFailed, "openat: No such file", ENOENT};
  const Error c = e.with_context("worker 'wc'");
  expect_same(c, Errc::kFailed, "worker 'wc': openat: No such file", ENOENT);
  expect_same(e, Errc::kFailed, "openat: No such file", ENOENT);  // the original is untouched
  // Contexts nest outermost first, as the error climbs the layers.
  expect_same(c.with_context("spawn"), Errc::kFailed, "spawn: worker 'wc': openat: No such file",
              ENOENT);
  EXPECT_EQ(c.to_string(), "failed: worker 'wc': openat: No such file (" +
                               std::string(std::strerror(ENOENT)) + ")");
}

TEST(ErrorWithContext, EmptyMessageBecomesTheContextAlone) {
  expect_same(Error{Errc::kClosed, "", 0}.with_context("bootstrap port"), Errc::kClosed,
              "bootstrap port", 0);
}

TEST(ErrorWithContext, OnAResultPassesValuesAndPrefixesErrors) {
  auto ok = with_context(move_only(true), "ctx");
  ASSERT_TRUE(ok);
  EXPECT_EQ(**ok, 7);
  auto bad = with_context(move_only(false), "looking it up");
  ASSERT_FALSE(bad);
  expect_same(bad.error(), Errc::kNotFound, "looking it up: no such thing", ENOENT);
  auto void_bad = with_context(Result<void>(make_error(Errc::kRevoked, "gone")), "grant 3");
  ASSERT_FALSE(void_bad);
  expect_same(void_bad.error(), Errc::kRevoked, "grant 3: gone", 0);
  EXPECT_TRUE(with_context(Result<void>{}, "nothing"));
}

}  // namespace
}  // namespace capsa
