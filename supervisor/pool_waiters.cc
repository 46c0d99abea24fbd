// capsa — ports waiting for the service pool (pool_waiters.h).
#include "supervisor/pool_waiters.h"

#include <algorithm>
#include <utility>

namespace capsa::supervisor {

// Lanes are found by a scan: there is one per worker with a job waiting,
// and a turn touches only the front one.
void PoolWaiters::add(const WorkerRecord* worker, PortEndpoint* ep) {
  auto lane = std::find_if(lanes_.begin(), lanes_.end(),
                           [worker](const Lane& l) { return l.worker == worker; });
  if (lane == lanes_.end()) {
    // A worker that had nothing waiting joins at the back of the turn.
    lanes_.push_back(Lane{worker, {}});
    lane = std::prev(lanes_.end());
  }
  lane->ports.push_back(ep);
  ++size_;
}

void PoolWaiters::remove(const PortEndpoint* ep) noexcept {
  for (auto lane = lanes_.begin(); lane != lanes_.end();) {
    const std::size_t before = lane->ports.size();
    std::erase(lane->ports, ep);
    size_ -= before - lane->ports.size();
    lane = lane->ports.empty() ? lanes_.erase(lane) : std::next(lane);
  }
}

PortEndpoint* PoolWaiters::front() const noexcept {
  return lanes_.empty() ? nullptr : lanes_.front().ports.front();
}

void PoolWaiters::pop_front() {
  if (lanes_.empty()) return;
  Lane lane = std::move(lanes_.front());
  lanes_.pop_front();
  lane.ports.pop_front();
  --size_;
  if (!lane.ports.empty()) lanes_.push_back(std::move(lane));
}

}  // namespace capsa::supervisor
