// The Result/Error matchers accept exactly what they say and explain a
// mismatch with the error's text, so a failing test reads like the error.
#include "tests/support/result_matchers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace capsa::testing {
namespace {

using ::testing::DescribeMatcher;
using ::testing::ExplainMatchResult;
using ::testing::HasSubstr;
using ::testing::Matcher;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StringMatchResultListener;

Result<int> fails(Errc code, std::string message) { return make_error(code, std::move(message)); }

// The explanation a matcher gives for `value`, and whether it matched.
template <typename M, typename V>
std::pair<bool, std::string> explain(const M& matcher, const V& value) {
  StringMatchResultListener why;
  bool ok = Matcher<const V&>(matcher).MatchAndExplain(value, &why);
  return {ok, why.str()};
}

TEST(ResultMatchers, IsOkOnValueVoidAndError) {
  EXPECT_THAT(Result<int>(3), IsOk());
  EXPECT_THAT(Result<void>(), IsOk());
  EXPECT_THAT(fails(Errc::kDenied, "no"), Not(IsOk()));
  EXPECT_THAT(Result<void>(make_error(Errc::kFailed, "x")), Not(IsOk()));
  EXPECT_EQ(explain(IsOk(), fails(Errc::kDenied, "method Open")),
            (std::pair<bool, std::string>{false, "which failed with denied: method Open"}));
}

TEST(ResultMatchers, HasValueComparesOrMatchesTheValue) {
  EXPECT_THAT(Result<int>(3), HasValue(3));
  EXPECT_THAT(Result<int>(3), Not(HasValue(4)));
  EXPECT_THAT(Result<std::vector<int>>(std::vector<int>{1, 2}), HasValue(SizeIs(2)));
  EXPECT_THAT(Result<std::string>("hello capsa"), HasValue(HasSubstr("capsa")));
  EXPECT_THAT(fails(Errc::kNotFound, "x"), Not(HasValue(::testing::_)));
  EXPECT_EQ(explain(HasValue(3), fails(Errc::kRevoked, "gone")).second, "which failed with revoked: gone");
  EXPECT_EQ(explain(HasValue(4), Result<int>(3)), (std::pair<bool, std::string>{false, "which holds 3"}));
  EXPECT_EQ(DescribeMatcher<const Result<int>&>(HasValue(4)), "holds a value that is equal to 4");
}

TEST(ResultMatchers, ErrorIsChecksCodeAndMessage) {
  auto r = fails(Errc::kOverloaded, "byte budget of log.Sink exhausted");
  EXPECT_THAT(r, ErrorIs(Errc::kOverloaded));
  EXPECT_THAT(r, ErrorIs(Errc::kOverloaded, HasSubstr("budget")));
  EXPECT_THAT(r, ErrorIs(Errc::kOverloaded, "byte budget of log.Sink exhausted"));
  EXPECT_THAT(r.error(), ErrorIs(Errc::kOverloaded, HasSubstr("log.Sink")));
  // Each half is checked: a wrong code, a wrong message, a value.
  EXPECT_THAT(r, Not(ErrorIs(Errc::kDenied)));
  EXPECT_THAT(r, Not(ErrorIs(Errc::kOverloaded, "byte budget")));
  EXPECT_THAT(r, Not(ErrorIs(Errc::kOverloaded, HasSubstr("quota"))));
  EXPECT_THAT(Result<int>(1), Not(ErrorIs(Errc::kOverloaded)));
  EXPECT_THAT(Result<void>(), Not(ErrorIs(Errc::kOverloaded)));
  EXPECT_EQ(explain(ErrorIs(Errc::kDenied), r).second, "which is overloaded: byte budget of log.Sink exhausted");
  EXPECT_EQ(explain(ErrorIs(Errc::kDenied), Result<int>(1)).second, "which holds a value");
  EXPECT_EQ(DescribeMatcher<const Error&>(ErrorIs(Errc::kDenied, HasSubstr("Open"))),
            "is an error with code denied and a message that has substring \"Open\"");
}

TEST(ResultMatchers, PrintsResultsReadably) {
  EXPECT_EQ(::testing::PrintToString(fails(Errc::kDenied, "no")), "error denied: no");
  EXPECT_EQ(::testing::PrintToString(Result<int>(7)), "value 7");
  EXPECT_EQ(::testing::PrintToString(Result<void>()), "ok");
}

}  // namespace
}  // namespace capsa::testing
