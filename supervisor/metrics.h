// capsa — the supervisor's metrics (docs/SUPERVISOR.md, "Metrics"): a
// snapshot copied out of the core on the loop thread (Supervisor::metrics),
// and its rendering in the Prometheus text exposition format, version 0.0.4
// (what `capsa metrics` prints and the metrics socket serves).
//
// Every metric has HELP and TYPE lines; counters end in `_total` and never
// go down during one supervisor's life (they restart at 0 with it, which
// Prometheus' rate() handles as a counter reset). Label values are escaped
// as the format says (\\, \", \n); any other control byte becomes '?'. Worker
// names are the policy's (a safe alphabet already), but the text must stay
// parseable whatever a name holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "supervisor/services/latency.h"

namespace capsa::supervisor {

struct WorkerMetrics {
  std::string name;
  bool running = false;
  std::uint64_t calls = 0;         // calls and events dispatched to a service
  std::uint64_t denials = 0;       // calls refused + ungranted names asked
  std::uint64_t bad_messages = 0;
  std::uint64_t violations = 0;    // seccomp
  std::uint64_t live_grants = 0;   // grants it holds now
  std::uint64_t bytes = 0;         // payload bytes in and out on its grants
};

// One method's call latency; only methods that were answered at least once.
struct MethodLatency {
  std::string interface;  // "fs.Directory"
  std::string method;     // "Open"
  LatencyHistogram histogram;
};

struct MetricsSnapshot {
  std::vector<WorkerMetrics> workers;  // policy order
  std::uint64_t workers_running = 0;
  std::uint64_t live_grants = 0;       // held by workers (operator sessions excluded)
  std::uint64_t channels = 0;          // mediated channels open
  std::vector<MethodLatency> latency;  // by interface name, then method ordinal
};

// The snapshot in the text exposition format 0.0.4 (ends with a newline).
std::string render_metrics(const MetricsSnapshot& snapshot);

// A label value escaped for the text format (without the quotes).
std::string escape_label_value(std::string_view value);

// The Content-Type of that text.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace capsa::supervisor
