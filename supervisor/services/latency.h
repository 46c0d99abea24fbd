// capsa — a call latency histogram (docs/SUPERVISOR.md, "Metrics"): how long
// the supervisor took to answer the calls of one method of one interface,
// from the moment a validated call is dispatched to its service to the
// moment its answer is sent.
//
// On the hot path (every answered call) observe() costs one clock read by
// the caller and a scan of 16 bounds: no allocation, no lookup by name. The
// histogram a call feeds is resolved once per grant (GrantTable: by the
// grant's Interface pointer) and once per call by method index.
//
// Loop thread only: nothing here is atomic.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace capsa::supervisor {

struct LatencyHistogram {
  // Upper bounds of the buckets, in nanoseconds: 10 us .. 1 s (Prometheus'
  // `le`, inclusive). A call slower than 1 s counts in +Inf only.
  static constexpr std::array<std::uint64_t, 16> kBoundsNs = {
      10'000,     25'000,     50'000,      100'000,     250'000,     500'000,
      1'000'000,  2'500'000,  5'000'000,   10'000'000,  25'000'000,  50'000'000,
      100'000'000, 250'000'000, 500'000'000, 1'000'000'000};

  // Calls per bucket, NOT cumulative (the text makes them cumulative);
  // counts[kBoundsNs.size()] is the overflow (> 1 s).
  std::array<std::uint64_t, kBoundsNs.size() + 1> counts{};
  std::uint64_t sum_ns = 0;

  void observe(std::chrono::steady_clock::duration d) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    const std::uint64_t v = ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
    std::size_t i = 0;
    while (i < kBoundsNs.size() && v > kBoundsNs[i]) ++i;
    ++counts[i];
    sum_ns += v;
  }
  std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t c : counts) n += c;
    return n;
  }
};

}  // namespace capsa::supervisor
