#include "policy/limits.h"

#include <array>
#include <cstdlib>

namespace capsa::policy {
namespace {

constexpr std::uint64_t kKiB = 1ull << 10;
constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;

// Ranges: a minimum below which a worker cannot even start (the launcher
// needs stdio and the bootstrap port, the loader a few MiB), a maximum that
// catches typos (an extra zero) before they reach the kernel.
constexpr std::array<LimitSpec, 11> kSpecs{{
    {LimitKind::kMemory, "memory", 256 * kMiB, 16 * kMiB, 64 * kGiB, true},
    {LimitKind::kCpuSeconds, "cpu_seconds", 10, 1, 86'400, false},
    {LimitKind::kWallSeconds, "wall_seconds", 60, 1, 7 * 86'400, false},
    {LimitKind::kProcesses, "processes", 16, 1, 4096, false},
    {LimitKind::kOpenFiles, "open_files", 64, 8, 65'536, false},
    {LimitKind::kMessageBytes, "message_bytes", 64 * kKiB, 256, 16 * kMiB, true},
    {LimitKind::kCallsInFlight, "calls_in_flight", 16, 1, 1024, false},
    {LimitKind::kMessagesPerSecond, "messages_per_second", 1000, 1, 1'000'000, false},
    // A program probing for features makes a handful of refused calls at
    // start; hundreds a second is a loop (or a fuzzer) costing supervisor CPU.
    {LimitKind::kViolationsPerSecond, "violations_per_second", 100, 1, 1'000'000, false},
    // 0 is allowed: every line of output is dropped (and counted).
    {LimitKind::kOutputBytes, "output_bytes", 1 * kMiB, 0, 1 * kGiB, true},
    // Each costs the supervisor a grant record and its service's state (an
    // fs.File: one open fd): bounded per worker like ports, but far above
    // open_files, which is what objects are for. 0: none at all.
    {LimitKind::kObjects, "objects", 4096, 0, 65'536, false},
}};

}  // namespace

std::span<const LimitSpec> limit_specs() noexcept { return kSpecs; }

const LimitSpec& limit_spec(LimitKind kind) noexcept {
  for (const LimitSpec& s : kSpecs) {
    if (s.kind == kind) return s;
  }
  std::abort();  // every LimitKind has a row; a missing one is our bug
}

std::uint64_t Limits::get(LimitKind kind) const noexcept {
  switch (kind) {
    case LimitKind::kMemory: return memory;
    case LimitKind::kCpuSeconds: return cpu_seconds;
    case LimitKind::kWallSeconds: return wall_seconds;
    case LimitKind::kProcesses: return processes;
    case LimitKind::kOpenFiles: return open_files;
    case LimitKind::kMessageBytes: return message_bytes;
    case LimitKind::kCallsInFlight: return calls_in_flight;
    case LimitKind::kMessagesPerSecond: return messages_per_second;
    case LimitKind::kViolationsPerSecond: return violations_per_second;
    case LimitKind::kOutputBytes: return output_bytes;
    case LimitKind::kObjects: return objects;
  }
  std::abort();
}

void Limits::set(LimitKind kind, std::uint64_t value) noexcept {
  switch (kind) {
    case LimitKind::kMemory: memory = value; return;
    case LimitKind::kCpuSeconds: cpu_seconds = value; return;
    case LimitKind::kWallSeconds: wall_seconds = value; return;
    case LimitKind::kProcesses: processes = value; return;
    case LimitKind::kOpenFiles: open_files = value; return;
    case LimitKind::kMessageBytes: message_bytes = value; return;
    case LimitKind::kCallsInFlight: calls_in_flight = value; return;
    case LimitKind::kMessagesPerSecond: messages_per_second = value; return;
    case LimitKind::kViolationsPerSecond: violations_per_second = value; return;
    case LimitKind::kOutputBytes: output_bytes = value; return;
    case LimitKind::kObjects: objects = value; return;
  }
  std::abort();
}

std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  unsigned shift = 0;
  switch (text.back()) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: break;
  }
  if (shift != 0) text.remove_suffix(1);
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  if (shift != 0 && v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<std::pair<unsigned, char>, 4> kUnits{
      {{40, 'T'}, {30, 'G'}, {20, 'M'}, {10, 'K'}}};
  if (bytes != 0) {
    for (auto [shift, suffix] : kUnits) {
      std::uint64_t unit = 1ull << shift;
      if (bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
    }
  }
  return std::to_string(bytes);
}

}  // namespace capsa::policy
