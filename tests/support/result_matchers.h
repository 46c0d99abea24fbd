// Test support: gmock matchers for capsa::Result<T> and capsa::Error.
//
//   EXPECT_THAT(r, IsOk());                                  // holds a value (also Result<void>)
//   EXPECT_THAT(r, HasValue(4u));                            // holds a value equal to 4
//   EXPECT_THAT(r, HasValue(SizeIs(2)));                     // ... matching any gmock matcher
//   EXPECT_THAT(r, ErrorIs(Errc::kNotFound));                // holds an error with this code
//   EXPECT_THAT(r, ErrorIs(Errc::kOverloaded, HasSubstr("budget")));  // ... and message
//   EXPECT_THAT(r, ErrorIs(Errc::kDenied, "method Open is not in the rights of grant 7"));
//   EXPECT_THAT(r.error(), ErrorIs(Errc::kDenied));          // a bare Error too
//
// A string given as the message matcher means "equal to". A failure prints
// the error as Error::to_string() ("denied: ...") or the value, never bytes.
// For a value that is needed after the check, keep `ASSERT_TRUE(r) <<
// r.error().to_string()`: a matcher cannot stop the test.
#pragma once

#include <gmock/gmock.h>

#include <expected>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "capabilities/error.h"

namespace capsa {

// Found by argument-dependent lookup, so gtest prints an Error, and a
// Result<T> (whose error type is in this namespace), readably.
inline void PrintTo(const Error& e, std::ostream* os) { *os << e.to_string(); }

template <typename T>
void PrintTo(const std::expected<T, Error>& r, std::ostream* os) {
  if (!r.has_value()) {
    *os << "error " << r.error().to_string();
  } else if constexpr (std::is_void_v<T>) {
    *os << "ok";
  } else {
    *os << "value " << ::testing::PrintToString(*r);
  }
}

namespace testing {
namespace detail {

class IsOkMatcher {
 public:
  using is_gtest_matcher = void;

  template <typename T>
  bool MatchAndExplain(const std::expected<T, Error>& r, std::ostream* os) const {
    if (r.has_value()) return true;
    if (os != nullptr) *os << "which failed with " << r.error().to_string();
    return false;
  }
  void DescribeTo(std::ostream* os) const { *os << "holds a value"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "holds an error"; }
};

class ErrorIsMatcher {
 public:
  using is_gtest_matcher = void;

  ErrorIsMatcher(Errc code, ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  bool MatchAndExplain(const Error& e, std::ostream* os) const {
    ::testing::StringMatchResultListener why;
    bool ok = e.code == code_ && message_.MatchAndExplain(e.message, &why);
    if (os != nullptr) {
      *os << "which is " << e.to_string();
      if (!why.str().empty()) *os << ", " << why.str();
    }
    return ok;
  }
  template <typename T>
  bool MatchAndExplain(const std::expected<T, Error>& r, std::ostream* os) const {
    if (r.has_value()) {
      if (os != nullptr) *os << "which holds a value";
      return false;
    }
    return MatchAndExplain(r.error(), os);
  }
  void DescribeTo(std::ostream* os) const {
    *os << "is an error with code " << errc_name(code_) << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "is not an error with code " << errc_name(code_) << " and a message that ";
    message_.DescribeTo(os);
  }

 private:
  Errc code_;
  ::testing::Matcher<const std::string&> message_;
};

// Polymorphic in the inner matcher: it is cast to `const T&` only once the
// Result<T> it is applied to is known.
template <typename Inner>
class HasValueMatcher {
 public:
  explicit HasValueMatcher(Inner inner) : inner_(std::move(inner)) {}

  template <typename R>
  operator ::testing::Matcher<R>() const {  // NOLINT(google-explicit-constructor): gmock's protocol
    using T = typename std::remove_cvref_t<R>::value_type;
    return ::testing::Matcher<R>(new Impl<R, T>(::testing::SafeMatcherCast<const T&>(inner_)));
  }

 private:
  template <typename R, typename T>
  class Impl : public ::testing::MatcherInterface<R> {
   public:
    explicit Impl(::testing::Matcher<const T&> inner) : inner_(std::move(inner)) {}
    bool MatchAndExplain(R r, ::testing::MatchResultListener* os) const override {
      if (!r.has_value()) {
        *os << "which failed with " << r.error().to_string();
        return false;
      }
      ::testing::StringMatchResultListener why;
      bool ok = inner_.MatchAndExplain(*r, &why);
      *os << "which holds " << ::testing::PrintToString(*r);
      if (!why.str().empty()) *os << ", " << why.str();
      return ok;
    }
    void DescribeTo(std::ostream* os) const override {
      *os << "holds a value that ";
      inner_.DescribeTo(os);
    }
    void DescribeNegationTo(std::ostream* os) const override {
      *os << "holds an error or a value that ";
      inner_.DescribeNegationTo(os);
    }

   private:
    ::testing::Matcher<const T&> inner_;
  };

  Inner inner_;
};

}  // namespace detail

// Matches a Result<T> (any T, void too) that holds a value.
inline detail::IsOkMatcher IsOk() { return {}; }

// Matches a Result<T> whose value matches `inner` (a value means "equal to").
template <typename Inner>
detail::HasValueMatcher<Inner> HasValue(Inner inner) {
  return detail::HasValueMatcher<Inner>(std::move(inner));
}

// Matches an Error, or a Result<T> holding one, with code `code` and a
// message that matches `message` (anything when omitted; a string means
// "equal to").
inline detail::ErrorIsMatcher ErrorIs(Errc code, ::testing::Matcher<const std::string&> message = ::testing::_) {
  return {code, std::move(message)};
}

}  // namespace testing
}  // namespace capsa
