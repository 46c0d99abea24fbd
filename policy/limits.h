// capsa policy — the resource limits of a worker: names, defaults, ranges.
//
// Each limit is defined once, here: its name in the policy file, its default,
// and the range a policy may set. docs/POLICY.md repeats the table with the
// security consequence of each. Defaults are deliberately tight: a worker
// that needs more says so in its policy, where a reviewer sees it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace capsa::policy {

enum class LimitKind : std::uint8_t {
  kMemory,             // bytes of address space (RLIMIT_AS)
  kCpuSeconds,         // RLIMIT_CPU
  kWallSeconds,        // real time before the supervisor kills the worker
  kProcesses,          // RLIMIT_NPROC inside the sandbox's user namespace
  kOpenFiles,          // RLIMIT_NOFILE
  kMessageBytes,       // largest packet the supervisor accepts from the worker
  kCallsInFlight,      // unanswered calls per port
  kMessagesPerSecond,  // messages the worker may send per second, all ports
  kViolationsPerSecond,  // seccomp violations per second before on_violation_flood
  kOutputBytes,          // bytes of stdout + stderr the supervisor logs for the worker
  kObjects,              // live associated objects (docs/PROTOCOL.md section 8)
};

struct LimitSpec {
  LimitKind kind;
  std::string_view name;  // field name in the policy file
  std::uint64_t default_value;
  std::uint64_t min;
  std::uint64_t max;
  bool is_size;  // printed and accepted as "64M"
};

std::span<const LimitSpec> limit_specs() noexcept;
const LimitSpec& limit_spec(LimitKind kind) noexcept;

struct Limits {
  std::uint64_t memory = 256ull << 20;
  std::uint64_t cpu_seconds = 10;
  std::uint64_t wall_seconds = 60;
  std::uint64_t processes = 16;
  std::uint64_t open_files = 64;
  std::uint64_t message_bytes = 64ull << 10;
  std::uint64_t calls_in_flight = 16;
  std::uint64_t messages_per_second = 1000;
  std::uint64_t violations_per_second = 100;
  std::uint64_t output_bytes = 1ull << 20;
  std::uint64_t objects = 4096;

  std::uint64_t get(LimitKind kind) const noexcept;
  void set(LimitKind kind, std::uint64_t value) noexcept;
};

// RLIMIT_FSIZE of every worker: the largest file it can write (in its
// /tmp); SIGXFSZ past it. Not settable by a policy (yet): one value for all.
inline constexpr std::uint64_t kFileSizeLimitBytes = 16ull << 20;

// Range of the private /tmp tmpfs (a sandbox setting, not an rlimit).
inline constexpr std::uint64_t kDefaultTmpfsBytes = 16ull << 20;
inline constexpr std::uint64_t kMinTmpfsBytes = 1ull << 20;  // the sandbox's own minimum
inline constexpr std::uint64_t kMaxTmpfsBytes = 4ull << 30;
// A worker profile's "pool" (warm sandboxes kept started ahead): each holds
// a sandbox's processes, cgroup and kernel memory while it waits.
inline constexpr std::uint64_t kMaxPool = 64;

// Per-grant generic constraints. 0 means "no per-grant limit" (the worker's
// messages_per_second and message_bytes still apply).
inline constexpr std::uint64_t kMaxGrantRate = 1'000'000;
inline constexpr std::uint64_t kMaxByteBudget = 1ull << 50;  // 1 PiB

// "64M"-style sizes: a decimal integer with an optional binary suffix K, M,
// G or T (64M = 64 * 2^20). No spaces, no fractions, no negative values.
// nullopt on bad syntax or overflow of 64 bits.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;

// What parse_size() accepts after the digits, for error messages.
inline constexpr char kSizeSuffixes[] = "K, M, G or T (powers of 1024: \"64K\", \"16M\", \"1G\")";

// The shortest exact spelling: 67108864 -> "64M", 1000 -> "1000".
std::string format_size(std::uint64_t bytes);

}  // namespace capsa::policy
