// capsa — copying the metrics out of the core (metrics.h), on the loop
// thread: counters from each WorkerRecord, bytes and histograms from the
// grant table. Costs O(workers + grants + histograms); only a scrape pays it.
#include <algorithm>

#include "supervisor/metrics.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

MetricsSnapshot Supervisor::Impl::metrics() const {
  MetricsSnapshot s;
  s.workers.reserve(workers_.size());
  for (const auto& w : workers_) {
    WorkerMetrics m;
    m.name = w->name;
    m.running = w->running;
    m.calls = w->calls;
    m.denials = w->denials;
    m.bad_messages = w->bad_messages;
    m.violations = w->violations;
    m.live_grants = w->live;
    m.bytes = table_->bytes_of(*w);
    if (w->running) ++s.workers_running;
    s.workers.push_back(std::move(m));
  }
  s.live_grants = table_->live();
  s.channels = hub_ ? hub_->channels() : 0;
  for (const auto& [iface, lat] : table_->latency()) {
    const auto methods = iface->methods();
    for (std::size_t i = 0; i < methods.size(); ++i) {
      if (lat->methods[i].count() == 0) continue;
      s.latency.push_back(MethodLatency{std::string(iface->name()), methods[i].name, lat->methods[i]});
    }
  }
  // methods() is in ordinal order, and the sort is stable: by interface,
  // then ordinal.
  std::stable_sort(s.latency.begin(), s.latency.end(),
                   [](const MethodLatency& a, const MethodLatency& b) { return a.interface < b.interface; });
  return s;
}

MetricsSnapshot Supervisor::metrics() const { return impl_->metrics(); }

}  // namespace capsa::supervisor
