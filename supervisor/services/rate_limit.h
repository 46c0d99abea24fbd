// capsa — per-grant limits: a call rate limiter and a byte budget.
//
// A hostile worker may call as fast as the socket allows; a grant's
// constraints say how much it may cost the host. Both limits answer
// kOverloaded (a wire code: the worker may retry later), never block, and
// use integer arithmetic only, so a test can drive them exactly with an
// injected clock.
//
// Not thread-safe: each grant's limits are used on the reactor's loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "capabilities/error.h"

namespace capsa::supervisor::services {

using SteadyClock = std::chrono::steady_clock;
// Where "now" comes from: SteadyClock::now in the supervisor, a fake in tests.
using ClockFn = std::function<SteadyClock::time_point()>;

// Token bucket of `burst` calls refilled at `per_second` calls per second,
// computed as GCRA (a "theoretical arrival time" instead of a token count):
// one timestamp of state, exact in integers. The interval between calls is
// 1e9 / per_second nanoseconds rounded up, so the limit is never exceeded,
// at worst undershot by under one call per second at a billion calls per
// second. A new limiter starts full (a burst is available at once).
class RateLimiter {
 public:
  // per_second and burst must be at least 1 (kInvalidArgument otherwise).
  static Result<RateLimiter> create(std::uint32_t per_second, std::uint32_t burst,
                                    ClockFn clock = SteadyClock::now);

  // Takes one call's token; kOverloaded if none is available now.
  Result<void> try_acquire();

  std::uint32_t per_second() const noexcept { return per_second_; }
  std::uint32_t burst() const noexcept { return burst_; }

 private:
  RateLimiter(std::uint32_t per_second, std::uint32_t burst, ClockFn clock);
  std::uint32_t per_second_;
  std::uint32_t burst_;
  std::chrono::nanoseconds interval_;
  std::chrono::nanoseconds tolerance_;  // (burst - 1) intervals
  ClockFn clock_;
  SteadyClock::time_point tat_;  // when the bucket will be full again, minus one interval
};

// A total number of bytes a grant may move (read from files, send in
// blobs) over its lifetime. A charge that would exceed the budget is
// refused whole, so the budget is never overdrawn, and the counter cannot
// overflow whatever sizes a worker claims.
class ByteBudget {
 public:
  explicit ByteBudget(std::uint64_t limit) noexcept : limit_(limit) {}
  // Counts `bytes`; kOverloaded (and nothing counted) if they do not fit.
  Result<void> charge(std::uint64_t bytes);
  std::uint64_t used() const noexcept { return used_; }
  std::uint64_t remaining() const noexcept { return limit_ - used_; }
  std::uint64_t limit() const noexcept { return limit_; }

 private:
  std::uint64_t limit_;
  std::uint64_t used_ = 0;
};

}  // namespace capsa::supervisor::services
