// capsa — rendering the metrics snapshot (metrics.h).
#include "supervisor/metrics.h"

#include <initializer_list>

namespace capsa::supervisor {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default:
        // The format has no escape for other control bytes; a raw \r or NUL
        // could break a scraper's line handling.
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    }
  }
  return out;
}

namespace {

// Plain appends: the core does not link fmt, and this is not a hot path.
void append(std::string& out, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) out += p;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  append(out, {"# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n"});
}

// One family with a sample per worker.
template <typename Get>
void per_worker(std::string& out, const MetricsSnapshot& s, std::string_view name,
                std::string_view type, std::string_view help, Get get) {
  header(out, name, type, help);
  for (const WorkerMetrics& w : s.workers) {
    append(out, {name, "{worker=\"", escape_label_value(w.name), "\"} ",
                 std::to_string(get(w)), "\n"});
  }
}

void sample(std::string& out, std::string_view name, std::uint64_t value) {
  append(out, {name, " ", std::to_string(value), "\n"});
}

// Seconds from nanoseconds, exactly (no floating point rounding surprises
// for the bounds: 0.00001, 0.025, 1).
std::string seconds(std::uint64_t ns) {
  std::string frac = std::to_string(ns % 1'000'000'000u);
  frac.insert(0, 9 - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string s = std::to_string(ns / 1'000'000'000u);
  if (!frac.empty()) s += "." + frac;
  return s;
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& s) {
  std::string out;
  per_worker(out, s, "capsa_worker_running", "gauge", "1 while the worker runs, 0 otherwise.",
             [](const WorkerMetrics& w) { return w.running ? 1 : 0; });
  per_worker(out, s, "capsa_worker_calls_total", "counter",
             "Calls and events of the worker that passed every check and were dispatched.",
             [](const WorkerMetrics& w) { return w.calls; });
  per_worker(out, s, "capsa_worker_denials_total", "counter",
             "Calls of the worker refused (rights, rates, byte budget, calls in flight) and "
             "ungranted names it asked for.",
             [](const WorkerMetrics& w) { return w.denials; });
  per_worker(out, s, "capsa_worker_bad_messages_total", "counter",
             "Messages of the worker that failed validation.",
             [](const WorkerMetrics& w) { return w.bad_messages; });
  per_worker(out, s, "capsa_worker_seccomp_violations_total", "counter",
             "System calls of the worker refused by its seccomp filter (as reported).",
             [](const WorkerMetrics& w) { return w.violations; });
  per_worker(out, s, "capsa_worker_live_grants", "gauge", "Grants the worker holds now.",
             [](const WorkerMetrics& w) { return w.live_grants; });
  per_worker(out, s, "capsa_worker_payload_bytes_total", "counter",
             "Bytes of the worker's calls and of their answers on its grants (request packets, "
             "reply payloads, data a service charged).",
             [](const WorkerMetrics& w) { return w.bytes; });

  header(out, "capsa_workers_running", "gauge", "Workers running now.");
  sample(out, "capsa_workers_running", s.workers_running);
  header(out, "capsa_live_grants", "gauge", "Grants held by workers now.");
  sample(out, "capsa_live_grants", s.live_grants);
  header(out, "capsa_channels", "gauge", "Mediated channels open now.");
  sample(out, "capsa_channels", s.channels);

  constexpr std::string_view kCall = "capsa_call_duration_seconds";
  header(out, kCall, "histogram",
         "Time from dispatching a validated call to sending its answer, per interface and method.");
  for (const MethodLatency& m : s.latency) {
    const std::string labels = "interface=\"" + escape_label_value(m.interface) + "\",method=\"" +
                               escape_label_value(m.method) + "\"";
    const LatencyHistogram& h = m.histogram;
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < LatencyHistogram::kBoundsNs.size(); ++i) {
      cumulative += h.counts[i];
      append(out, {kCall, "_bucket{", labels, ",le=\"", seconds(LatencyHistogram::kBoundsNs[i]),
                   "\"} ", std::to_string(cumulative), "\n"});
    }
    cumulative += h.counts.back();
    const std::string count = std::to_string(cumulative);
    append(out, {kCall, "_bucket{", labels, ",le=\"+Inf\"} ", count, "\n"});
    append(out, {kCall, "_sum{", labels, "} ", seconds(h.sum_ns), "\n"});
    append(out, {kCall, "_count{", labels, "} ", count, "\n"});
  }
  return out;
}

}  // namespace capsa::supervisor
