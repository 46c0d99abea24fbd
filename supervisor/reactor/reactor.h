// capsa — the supervisor's event loop.
//
// One thread (the loop thread) calls `run()`; everything the supervisor
// reacts to is an fd: ports (readable / peer hung up), pidfds (child exit),
// timerfds (deadlines), a signalfd (SIGINT/SIGTERM/SIGCHLD), seccomp
// notification fds, and an eventfd that other threads use to `post()` work
// back to the loop. Callbacks run on the loop thread only, one at a time, so
// supervisor state touched only from callbacks needs no locks.
//
// A slow service must never stall the loop: it runs on the small worker pool
// (`run_off_loop`), and its reply is posted back to the loop thread. The
// pool's queue is bounded; a full queue is an error (kOverloaded) and the
// job is not run, never unbounded memory (the supervisor parks such calls
// and serves them in turn: supervisor/pool_waiters.h).
//
// Removal is safe at any time on the loop thread, including from inside a
// callback, for the watch being dispatched and for watches whose events are
// in the same epoll batch: an epoll event carries a never-reused 64-bit watch
// id (not an fd number, not a pointer), looked up again before every
// dispatch, and the callback being run is kept alive until it returns. A
// stale event for a removed watch is dropped. Nothing in this file can call a
// destroyed callback, whatever the callbacks do.
//
// Signals: a signalfd only receives a signal that is blocked in every thread
// of the process (otherwise the kernel may deliver it to some thread that
// runs its default action, e.g. terminates on SIGTERM). `watch_signals`
// blocks them in the calling thread; the pool threads are created with all
// signals blocked. The supervisor's main() must block SIGINT, SIGTERM and
// SIGCHLD itself before it creates any other thread (spdlog async sinks,
// ...), so those threads inherit the mask.
#pragma once

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa::supervisor {

// Identifies one registration (fd watch, timer, signal set). Never reused
// within one Reactor, so a stale id refers to nothing rather than to
// somebody else's registration.
using WatchId = std::uint64_t;

// What a watch is interested in. Hang-up and error (EPOLLHUP, EPOLLERR,
// EPOLLRDHUP) are always reported to the callback, whatever is asked.
enum class Interest : std::uint32_t {
  kNone = 0,  // a paused watch: hang-up and error only
  kReadable = EPOLLIN,
  kWritable = EPOLLOUT,
  kReadWrite = EPOLLIN | EPOLLOUT,
};

// The events a callback receives: a bit mask of EPOLLIN, EPOLLOUT, EPOLLHUP,
// EPOLLRDHUP, EPOLLERR. Helpers say what they mean.
struct Events {
  std::uint32_t bits = 0;
  bool readable() const noexcept { return (bits & EPOLLIN) != 0; }
  bool writable() const noexcept { return (bits & EPOLLOUT) != 0; }
  bool hung_up() const noexcept { return (bits & (EPOLLHUP | EPOLLRDHUP)) != 0; }
  bool error() const noexcept { return (bits & EPOLLERR) != 0; }
};

struct ReactorOptions {
  // Threads that run `run_off_loop` work. 0 is allowed: run_off_loop then
  // always fails with kOverloaded (a supervisor without slow services).
  std::size_t pool_threads = 2;
  // Jobs queued and not yet started on the pool. One more is kOverloaded.
  std::size_t pool_queue_limit = 64;
  // Epoll events handled per epoll_wait; a fairness knob, not a limit on
  // watches.
  int max_events_per_wait = 64;
};

class Reactor {
 public:
  using FdCallback = std::move_only_function<void(Events)>;
  using TimerCallback = std::move_only_function<void()>;
  using SignalCallback = std::move_only_function<void(const signalfd_siginfo&)>;
  using Task = std::move_only_function<void()>;

  static Result<std::unique_ptr<Reactor>> create(ReactorOptions options = {});
  // Stops and joins the pool. Jobs still queued are dropped without running
  // their continuation; running jobs finish first (they are not cancelled).
  // Must not be called from a callback or a pool job.
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // --- loop thread only ----------------------------------------------------

  // Calls `cb` when `fd` has one of the `interest` events (level-triggered:
  // it is called again while the condition holds, so a callback may handle
  // one message per call). The fd is borrowed: the caller keeps it open
  // until unwatch(); closing a watched fd first is a bug (epoll keeps
  // watching the open file if it was dup'ed). kInvalidArgument if the fd is
  // already watched. Hang-up is level-triggered too: a callback that sees
  // `hung_up()` must unwatch (or the loop spins on it).
  Result<WatchId> watch(const Fd& fd, Interest interest, FdCallback cb);
  // Changes what a live watch waits for.
  Result<void> modify(WatchId id, Interest interest);
  // Stops a watch (or a timer or a signal watch). Safe from any callback,
  // including the one being dispatched; events already fetched for it are
  // dropped. Its callback is destroyed once it is no longer running. Unknown
  // or already removed ids are ignored.
  void unwatch(WatchId id);

  // A timer on CLOCK_MONOTONIC that fires once after `delay`, then removes
  // itself. Its id is valid for unwatch() until it fired.
  Result<WatchId> add_timer(std::chrono::nanoseconds delay, TimerCallback cb);
  // A timer that fires after `period`, then every `period` until unwatch().
  // If the loop was late and several periods passed, it is called once (the
  // missed count is not replayed: deadlines, not a metronome).
  Result<WatchId> add_periodic_timer(std::chrono::nanoseconds period, TimerCallback cb);

  // Blocks `signals` in the calling thread (which must be the loop thread)
  // and calls `cb` for each one received. See the header comment for the
  // rule on other threads.
  Result<WatchId> watch_signals(const sigset_t& signals, SignalCallback cb);

  // Runs callbacks until stop(). Returns kFailed if epoll_wait fails. Not
  // re-entrant: never called from a callback.
  Result<void> run();
  // Handles what is ready now, once, without blocking (tests and embedding
  // hosts that drive the loop themselves). Returns how many callbacks ran.
  // Each call is one turn: its batch of ready fds is handled starting at a
  // place that moves every turn, so among fds that stay ready (level-
  // triggered) none is always first.
  Result<std::size_t> run_once(int timeout_ms = 0);
  // The turn being handled (counts run_once calls): a callback can tell
  // whether something already happened this turn (the supervisor reads one
  // packet per worker per turn, port_endpoint.cc).
  std::uint64_t turn() const noexcept;

  // --- any thread ----------------------------------------------------------

  // Makes the current run() (or the next one, if none is running) return
  // once the batch of callbacks being handled is done. Tasks posted but not
  // yet run stay queued for a later run().
  void stop() noexcept;

  // Runs `task` on the loop thread, after the callbacks of the current
  // batch. FIFO among posts from one thread. The Reactor must outlive every
  // thread that may still post to it. Callers are supervisor code (a worker cannot
  // post), so the queue is not bounded here; the pool bounds its share.
  void post(Task task);

  // Runs `work` on a pool thread, then `then(result)` on the loop thread.
  // kOverloaded (and neither runs) when the pool's queue is full or there
  // is no pool. `work` must not touch loop-owned state.
  template <typename T>
  Result<void> run_off_loop(std::move_only_function<T()> work,
                            std::move_only_function<void(T)> then) {
    return submit_job([this, work = std::move(work), then = std::move(then)]() mutable {
      T result = work();
      post([then = std::move(then), result = std::move(result)]() mutable {
        then(std::move(result));
      });
    });
  }

  // Jobs queued on the pool and not yet started (for tests and metrics).
  std::size_t pool_queued() const;

 private:
  struct Impl;
  explicit Reactor(std::unique_ptr<Impl> impl);
  Result<void> submit_job(Task job);
  std::unique_ptr<Impl> impl_;
};

}  // namespace capsa::supervisor
