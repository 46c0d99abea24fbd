#include "supervisor/services/rate_limit.h"

#include <algorithm>
#include <string>

namespace capsa::supervisor::services {

Result<RateLimiter> RateLimiter::create(std::uint32_t per_second, std::uint32_t burst, ClockFn clock) {
  if (per_second == 0) return make_error(Errc::kInvalidArgument, "rate limit must be at least 1 call per second");
  if (burst == 0) return make_error(Errc::kInvalidArgument, "rate limit burst must be at least 1");
  if (!clock) return make_error(Errc::kInvalidArgument, "rate limiter needs a clock");
  return RateLimiter(per_second, burst, std::move(clock));
}

RateLimiter::RateLimiter(std::uint32_t per_second, std::uint32_t burst, ClockFn clock)
    : per_second_(per_second),
      burst_(burst),
      interval_((1'000'000'000LL + per_second - 1) / per_second),
      tolerance_(interval_ * (static_cast<std::int64_t>(burst) - 1)),
      clock_(std::move(clock)),
      tat_(clock_()) {}

Result<void> RateLimiter::try_acquire() {
  SteadyClock::time_point now = clock_();
  SteadyClock::time_point tat = std::max(tat_, now);
  if (tat - now > tolerance_) {
    return make_error(Errc::kOverloaded,
                      "rate limit of " + std::to_string(per_second_) + " calls per second exceeded");
  }
  tat_ = tat + interval_;
  return {};
}

Result<void> ByteBudget::charge(std::uint64_t bytes) {
  if (bytes > limit_ - used_) {
    return make_error(Errc::kOverloaded, "byte budget of " + std::to_string(limit_) + " bytes exhausted (" +
                                             std::to_string(limit_ - used_) + " left, " + std::to_string(bytes) +
                                             " asked)");
  }
  used_ += bytes;
  return {};
}

}  // namespace capsa::supervisor::services
