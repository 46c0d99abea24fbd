// capsa — ports waiting for the service pool, served round-robin across
// workers (backpressure instead of refusal; docs/SUPERVISOR.md).
//
// When the reactor's pool queue is full, a call that needs the pool
// (Call::off_loop) is parked on its port's endpoint and that port is no
// longer read: the worker's next requests wait in the kernel's socket
// queue, not in supervisor memory. Each parked job is one entry here, in
// its worker's lane. When a pool job completes, the supervisor hands the
// pool the first job of the lane at the front and moves that lane to the
// back: workers take turns, one job each, whatever number of ports each
// holds, so a worker with many grants cannot starve one with a single port.
//
// Bounds: a port parks at most one job at a time unless its service allows
// the next call before answering (no pool-using service does), and a
// worker holds at most WorkerRecord::max_live() ports, so the entries here
// are bounded by the live grants. An endpoint removes its entries when it
// stops being served (destroyed, its holder killed): nothing here can point
// at a destroyed endpoint.
//
// Threading: the loop thread only.
#pragma once

#include <cstddef>
#include <deque>

namespace capsa::supervisor {

class PortEndpoint;
struct WorkerRecord;

class PoolWaiters {
 public:
  PoolWaiters() = default;
  PoolWaiters(const PoolWaiters&) = delete;
  PoolWaiters& operator=(const PoolWaiters&) = delete;

  // `ep`, held by `worker` (nullptr: an operator session), parked one job.
  void add(const WorkerRecord* worker, PortEndpoint* ep);
  // Every entry of `ep` (it is going away or no longer served).
  void remove(const PortEndpoint* ep) noexcept;
  // The endpoint whose job goes next (nullptr: none waits).
  PortEndpoint* front() const noexcept;
  // front()'s job went to the pool: its entry goes and its worker's lane
  // moves to the back of the turn.
  void pop_front();

  bool empty() const noexcept { return lanes_.empty(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t workers() const noexcept { return lanes_.size(); }

 private:
  struct Lane {
    const WorkerRecord* worker = nullptr;
    std::deque<PortEndpoint*> ports;  // FIFO within one worker
  };
  std::deque<Lane> lanes_;  // front: whose turn it is; no lane is empty
  std::size_t size_ = 0;
};

}  // namespace capsa::supervisor
