#include "supervisor/services/rate_limit.h"

#include <gtest/gtest.h>

#include <limits>

namespace capsa::supervisor::services {
namespace {

using namespace std::chrono_literals;

// A clock that only moves when the test says so.
struct FakeClock {
  SteadyClock::time_point now{};
  ClockFn fn() {
    return [this] { return now; };
  }
};

RateLimiter make(FakeClock& clock, std::uint32_t per_second, std::uint32_t burst) {
  auto r = RateLimiter::create(per_second, burst, clock.fn());
  EXPECT_TRUE(r.has_value());
  return std::move(*r);
}

void expect_overloaded(const Result<void>& r) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kOverloaded);
}

TEST(RateLimiter, RejectsZeroRateOrBurst) {
  EXPECT_EQ(RateLimiter::create(0, 1).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(RateLimiter::create(1, 0).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(RateLimiter::create(1, 1, ClockFn()).error().code, Errc::kInvalidArgument);
}

TEST(RateLimiter, BurstThenOneTokenPerInterval) {
  FakeClock clock;
  RateLimiter limiter = make(clock, 10, 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.try_acquire().has_value()) << i;
  expect_overloaded(limiter.try_acquire());  // burst + 1
  clock.now += 99ms;
  expect_overloaded(limiter.try_acquire());
  clock.now += 1ms;  // one interval after the burst started refilling
  EXPECT_TRUE(limiter.try_acquire().has_value());
  expect_overloaded(limiter.try_acquire());
}

TEST(RateLimiter, IdleTimeRefillsOnlyUpToTheBurst) {
  FakeClock clock;
  RateLimiter limiter = make(clock, 10, 3);
  clock.now += 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.try_acquire().has_value()) << i;
  expect_overloaded(limiter.try_acquire());
}

TEST(RateLimiter, IntervalIsRoundedUpSoTheRateIsNeverExceeded) {
  FakeClock clock;
  RateLimiter limiter = make(clock, 3, 1);  // 333'333'333.33 ns -> 333'333'334
  EXPECT_TRUE(limiter.try_acquire().has_value());
  clock.now += 333'333'333ns;
  expect_overloaded(limiter.try_acquire());
  clock.now += 1ns;
  EXPECT_TRUE(limiter.try_acquire().has_value());
}

TEST(RateLimiter, SustainedCallsAreHeldToTheRate) {
  FakeClock clock;
  RateLimiter limiter = make(clock, 10, 1);
  int accepted = 0;
  // A caller trying every millisecond for 10 s (both ends included).
  for (int ms = 0; ms <= 10'000; ++ms) {
    if (limiter.try_acquire()) ++accepted;
    clock.now += 1ms;
  }
  EXPECT_EQ(accepted, 101);
}

TEST(ByteBudget, RefusedChargeCountsNothing) {
  ByteBudget budget(100);
  EXPECT_TRUE(budget.charge(60).has_value());
  expect_overloaded(budget.charge(41));  // limit + 1
  EXPECT_EQ(budget.used(), 60u);
  EXPECT_TRUE(budget.charge(40).has_value());  // exactly at the limit
  EXPECT_EQ(budget.remaining(), 0u);
  EXPECT_TRUE(budget.charge(0).has_value());
  expect_overloaded(budget.charge(1));
}

TEST(ByteBudget, HugeClaimsCannotWrapTheCounter) {
  ByteBudget small(10);
  EXPECT_TRUE(small.charge(5).has_value());
  expect_overloaded(small.charge(std::numeric_limits<std::uint64_t>::max()));
  EXPECT_EQ(small.used(), 5u);
  ByteBudget unlimited(std::numeric_limits<std::uint64_t>::max());
  EXPECT_TRUE(unlimited.charge(std::numeric_limits<std::uint64_t>::max()).has_value());
  expect_overloaded(unlimited.charge(1));
}

}  // namespace
}  // namespace capsa::supervisor::services
