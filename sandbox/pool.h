// capsa::sandbox — a warm pool: sandboxes of one Spec started ahead, each
// waiting in its launcher with limits, cgroup and seccomp filter installed,
// for the fds of the one worker it will serve (docs/SANDBOX.md, "Warm
// pool").
//
// take() hands the first live idle sandbox the worker's bootstrap port and
// outputs; its launcher's child checks them (exactly three fds, at 1, 2 and
// 3, outputs writable, bootstrap a socket) and execs the program: the
// worker starts as from spawn(), minus bubblewrap's start. Each sandbox
// serves one worker, once: a handed-over sandbox leaves the pool with its
// Worker and is never returned to it. A background thread refills the pool
// off the caller's path, and replaces an idle sandbox that ended (killed,
// OOM) without handing it out. With no live idle sandbox, take() spawns
// cold, so a caller never waits for a refill.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "sandbox/host_file.h"
#include "sandbox/sandbox.h"
#include "sandbox/spec.h"

namespace capsa::sandbox {

class Pool {
 public:
  // What the pool has done so far.
  struct Stats {
    std::uint64_t filled = 0;     // pooled sandboxes started
    std::uint64_t handed = 0;     // workers taken from the pool
    std::uint64_t cold = 0;       // workers take() spawned cold (pool empty)
    std::uint64_t replaced = 0;   // idle sandboxes found ended, never handed out
    std::uint64_t fill_errors = 0;
    std::string last_fill_error;  // the latest fill failure, "" if none
  };

  // How long after the latest take() the pool waits before it refills:
  // a fill is a whole bubblewrap start (milliseconds of CPU), which would
  // otherwise run while the workers just handed over start, on the same
  // CPUs. During a burst the pool empties and take() spawns cold; it
  // refills when the burst is over.
  static constexpr std::chrono::milliseconds kDefaultRefillDelay{10};

  // Opens the spec's host files once (open_host_files: every sandbox of the
  // pool, and every cold spawn of take(), binds exactly those files) and
  // starts `size` sandboxes in the background. size 0 is refused.
  static Result<std::unique_ptr<Pool>> create(
      Spec spec, std::size_t size, std::chrono::milliseconds refill_delay = kDefaultRefillDelay);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // Stops refilling, then kills and reaps every idle sandbox (and drains and
  // removes its cgroup): no process, fd or cgroup of the pool remains.
  ~Pool();

  // A running worker of the pool's spec named `name` (the spec's name if
  // empty), with `bootstrap` as fd 3 and `stdio` as in spawn(); consumed
  // either way. From the pool when a live idle sandbox is there (its wall
  // deadline and wall time start now), else a cold spawn(). Thread-safe.
  Result<Worker> take(Fd bootstrap, StdioFds stdio = {}, const std::string& name = {});

  std::size_t size() const noexcept { return size_; }
  std::size_t ready() const;  // idle sandboxes now
  // The bubblewrap pids of the idle sandboxes, oldest first (diagnostics,
  // and tests that kill one while it waits).
  std::vector<int> idle_pids() const;
  Stats stats() const;
  // Blocks until ready() == size() or `timeout` passed or a fill failed
  // since the last take(). For tests, benchmarks and a supervisor that
  // wants its pool full before it starts work. True when full.
  bool wait_full(std::chrono::milliseconds timeout);

 private:
  Pool(Spec spec, HostFiles files, std::size_t size, std::chrono::milliseconds refill_delay,
       Fd wake);
  void fill_loop();
  void wake() const noexcept;

  const Spec spec_;
  const HostFiles files_;
  const std::size_t size_;
  const std::chrono::milliseconds refill_delay_;
  const Fd wake_;  // eventfd: take() and ~Pool wake the filler

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Worker> idle_;
  std::vector<Worker> ended_;  // found ended; reaped by the filler, off take()'s path
  bool stop_ = false;
  bool fill_failed_ = false;   // no refill until the next take()
  std::chrono::steady_clock::time_point last_take_{};
  Stats stats_;
  std::thread filler_;
};

}  // namespace capsa::sandbox
