#include "supervisor/reactor/reactor.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "capabilities/sys.h"

namespace capsa::supervisor {
namespace {

// epoll data for the eventfd that post() and stop() write. Real watches
// start at 1 and count up, so they never collide with it.
constexpr WatchId kWakeId = 0;

constexpr std::uint32_t kAlwaysReported = EPOLLRDHUP;  // HUP and ERR are implicit

struct Entry {
  int fd = -1;
  Fd owned;  // timerfd / signalfd the reactor created; empty for borrowed fds
  Reactor::FdCallback cb;
};

}  // namespace

struct Reactor::Impl {
  ReactorOptions options;
  Fd epoll;
  Fd wake;  // eventfd
  WatchId next_id = 1;
  // Owned by the loop thread. shared_ptr so that dispatch can keep the entry
  // (and the callback being run) alive while the callback unwatches itself.
  std::unordered_map<WatchId, std::shared_ptr<Entry>> watches;
  std::atomic<bool> stop_requested{false};
  std::uint64_t turn = 0;  // run_once calls; loop thread only
  // epoll_wait's output, allocated once: a fresh vector per turn (malloc,
  // zero-fill of max_events_per_wait entries, free) cost about 600
  // instructions per served call. `in_turn` guards against a callback that
  // runs run_once() itself, which then gets a buffer of its own.
  std::vector<epoll_event> ready;
  bool in_turn = false;

  std::mutex post_mu;
  std::vector<Task> posted;

  mutable std::mutex pool_mu;
  std::condition_variable pool_cv;
  std::deque<Task> jobs;
  bool pool_stopping = false;
  std::vector<std::thread> threads;

  void pool_main() {
    for (;;) {
      Task job;
      {
        std::unique_lock lock(pool_mu);
        pool_cv.wait(lock, [&] { return pool_stopping || !jobs.empty(); });
        if (pool_stopping) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      job();
    }
  }

  void wake_loop() noexcept {
    std::uint64_t one = 1;
    // Cannot fail short of the counter reaching 2^64-1, which would need
    // that many posts without the loop ever reading it.
    [[maybe_unused]] auto rc = ::write(wake.get(), &one, sizeof(one));
  }

  Result<WatchId> add(WatchId id, int fd, Fd owned, std::uint32_t events, FdCallback cb) {
    epoll_event ev{};
    ev.events = events | kAlwaysReported;
    ev.data.u64 = id;
    auto rc = sys("epoll_ctl(ADD)", "fd " + std::to_string(fd),
                  [&] { return ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev); });
    if (!rc) {
      if (rc.error().sys_errno == EEXIST) {
        return make_error(Errc::kInvalidArgument, "fd " + std::to_string(fd) + " is already watched");
      }
      return std::unexpected(std::move(rc).error());
    }
    auto entry = std::make_shared<Entry>();
    entry->fd = fd;
    entry->owned = std::move(owned);
    entry->cb = std::move(cb);
    watches.emplace(id, std::move(entry));
    return id;
  }

  void run_posted(std::size_t& ran) {
    std::uint64_t count = 0;
    // Drain first: a post() after the swap below writes the eventfd again,
    // so nothing posted can be left without a wake-up.
    [[maybe_unused]] auto rc = ::read(wake.get(), &count, sizeof(count));
    std::vector<Task> batch;
    {
      std::lock_guard lock(post_mu);
      batch.swap(posted);
    }
    for (auto& task : batch) {
      task();
      ++ran;
    }
  }
};

Reactor::Reactor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Reactor>> Reactor::create(ReactorOptions options) {
  if (options.max_events_per_wait <= 0) {
    return make_error(Errc::kInvalidArgument, "max_events_per_wait must be positive");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->ready.resize(static_cast<std::size_t>(options.max_events_per_wait));
  CAPSA_ASSIGN_OR_RETURN(impl->epoll,
                         sys_fd("epoll_create1", "", [] { return ::epoll_create1(EPOLL_CLOEXEC); }));
  CAPSA_ASSIGN_OR_RETURN(impl->wake, sys_fd("eventfd", "", [] {
                           return ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
                         }));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  CAPSA_TRY(sys("epoll_ctl(ADD)", "eventfd",
                [&] { return ::epoll_ctl(impl->epoll.get(), EPOLL_CTL_ADD, impl->wake.get(), &ev); }));

  std::unique_ptr<Reactor> reactor(new Reactor(std::move(impl)));
  // Pool threads inherit the creating thread's signal mask: block every
  // signal while creating them, so a process-directed signal can only be
  // taken by a thread that chose to (the loop, through its signalfd).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  Result<void> started;
  try {
    for (std::size_t i = 0; i < options.pool_threads; ++i) {
      Impl* p = reactor->impl_.get();
      reactor->impl_->threads.emplace_back([p] { p->pool_main(); });
    }
  } catch (const std::system_error& e) {
    started = make_error(Errc::kFailed, std::string("cannot start pool thread: ") + e.what());
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  CAPSA_TRY(std::move(started));  // on error ~Reactor joins the started ones
  return reactor;
}

Reactor::~Reactor() {
  std::deque<Task> dropped;
  {
    std::lock_guard lock(impl_->pool_mu);
    impl_->pool_stopping = true;
    dropped.swap(impl_->jobs);
  }
  impl_->pool_cv.notify_all();
  for (auto& t : impl_->threads) t.join();
  // `dropped` and the posted tasks die here, after every thread that could
  // post has been joined.
}

Result<WatchId> Reactor::watch(const Fd& fd, Interest interest, FdCallback cb) {
  if (!fd.valid()) return make_error(Errc::kInvalidArgument, "watch: invalid fd");
  return impl_->add(impl_->next_id++, fd.get(), Fd(), static_cast<std::uint32_t>(interest), std::move(cb));
}

Result<void> Reactor::modify(WatchId id, Interest interest) {
  auto it = impl_->watches.find(id);
  if (it == impl_->watches.end()) return make_error(Errc::kNotFound, "modify: no watch " + std::to_string(id));
  epoll_event ev{};
  ev.events = static_cast<std::uint32_t>(interest) | kAlwaysReported;
  ev.data.u64 = id;
  CAPSA_TRY(sys("epoll_ctl(MOD)", "fd " + std::to_string(it->second->fd),
                [&] { return ::epoll_ctl(impl_->epoll.get(), EPOLL_CTL_MOD, it->second->fd, &ev); }));
  return {};
}

void Reactor::unwatch(WatchId id) {
  auto it = impl_->watches.find(id);
  if (it == impl_->watches.end()) return;
  // Errors are ignored on purpose: the only ones possible mean the fd is no
  // longer registered, which is the state we want.
  ::epoll_ctl(impl_->epoll.get(), EPOLL_CTL_DEL, it->second->fd, nullptr);
  // If this entry's callback is running, dispatch holds another reference
  // and the callback is destroyed when it returns.
  impl_->watches.erase(it);
}

namespace {

Result<Fd> make_timerfd(std::chrono::nanoseconds first, std::chrono::nanoseconds period) {
  CAPSA_ASSIGN_OR_RETURN(Fd fd, sys_fd("timerfd_create", "", [] {
                           return ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
                         }));
  auto to_ts = [](std::chrono::nanoseconds d) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(d.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(d.count() % 1'000'000'000);
    return ts;
  };
  itimerspec spec{};
  // A zero it_value disarms a timerfd; "now" is the closest thing to zero.
  spec.it_value = to_ts(std::max(first, std::chrono::nanoseconds(1)));
  spec.it_interval = to_ts(period);
  CAPSA_TRY(sys("timerfd_settime", "", [&] { return ::timerfd_settime(fd.get(), 0, &spec, nullptr); }));
  return fd;
}

}  // namespace

Result<WatchId> Reactor::add_timer(std::chrono::nanoseconds delay, TimerCallback cb) {
  CAPSA_ASSIGN_OR_RETURN(Fd fd, make_timerfd(delay, std::chrono::nanoseconds(0)));
  WatchId id = impl_->next_id++;
  int raw = fd.get();
  return impl_->add(id, raw, std::move(fd), EPOLLIN,
                    [this, id, raw, cb = std::move(cb)](Events) mutable {
                      std::uint64_t expirations = 0;
                      if (::read(raw, &expirations, sizeof(expirations)) != sizeof(expirations)) return;
                      unwatch(id);  // the lambda (and cb) stay alive until we return
                      cb();
                    });
}

Result<WatchId> Reactor::add_periodic_timer(std::chrono::nanoseconds period, TimerCallback cb) {
  if (period <= std::chrono::nanoseconds(0)) {
    return make_error(Errc::kInvalidArgument, "periodic timer needs a positive period");
  }
  CAPSA_ASSIGN_OR_RETURN(Fd fd, make_timerfd(period, period));
  int raw = fd.get();
  return impl_->add(impl_->next_id++, raw, std::move(fd), EPOLLIN,
                    [raw, cb = std::move(cb)](Events) mutable {
                      std::uint64_t expirations = 0;
                      if (::read(raw, &expirations, sizeof(expirations)) != sizeof(expirations)) return;
                      cb();
                    });
}

Result<WatchId> Reactor::watch_signals(const sigset_t& signals, SignalCallback cb) {
  auto masked = pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (masked != 0) return std::unexpected(sys_error("pthread_sigmask", "", masked));
  CAPSA_ASSIGN_OR_RETURN(Fd fd, sys_fd("signalfd", "", [&] {
                           return ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
                         }));
  int raw = fd.get();
  // One signal per dispatch: the watch is level-triggered, so more pending
  // signals come back at once, and a callback that unwatches this signal
  // set is not handed another one afterwards.
  return impl_->add(impl_->next_id++, raw, std::move(fd), EPOLLIN,
                    [raw, cb = std::move(cb)](Events) mutable {
                      signalfd_siginfo info{};
                      if (::read(raw, &info, sizeof(info)) != sizeof(info)) return;
                      cb(info);
                    });
}

Result<std::size_t> Reactor::run_once(int timeout_ms) {
  std::vector<epoll_event> nested;
  if (impl_->in_turn) nested.resize(static_cast<std::size_t>(impl_->options.max_events_per_wait));
  std::vector<epoll_event>& events = impl_->in_turn ? nested : impl_->ready;
  const bool outer = !std::exchange(impl_->in_turn, true);
  struct EndTurn {  // on every return, errors included
    Impl& impl;
    bool outer;
    ~EndTurn() {
      if (outer) impl.in_turn = false;
    }
  } end_turn{*impl_, outer};
  CAPSA_ASSIGN_OR_RETURN(const int n, sys("epoll_wait", "", [&] {
                           return ::epoll_wait(impl_->epoll.get(), events.data(),
                                               impl_->options.max_events_per_wait, timeout_ms);
                         }));
  std::size_t ran = 0;
  bool woken = false;
  // epoll re-queues a level-triggered fd behind those reported with it in
  // the same order, so without the rotation the first of several fds that
  // stay ready would come first every turn; with one packet per worker per
  // turn (port_endpoint.cc) its other ports would then wait forever.
  const std::uint64_t turn = ++impl_->turn;
  const std::size_t count = n > 0 ? static_cast<std::size_t>(n) : 0;
  const std::size_t start = count > 0 ? static_cast<std::size_t>(turn % count) : 0;
  for (std::size_t k = 0; k < count; ++k) {
    const epoll_event& ev = events[(start + k) % count];
    // Copied out: epoll_event is packed on x86-64, so a reference to its
    // u64 (which find() would bind) is misaligned, undefined behaviour.
    const std::uint64_t id = ev.data.u64;
    const std::uint32_t mask = ev.events;
    if (id == kWakeId) {
      woken = true;
      continue;
    }
    // Looked up again for every event: an earlier callback of this batch
    // may have removed this watch (the event is then stale and dropped).
    auto it = impl_->watches.find(id);
    if (it == impl_->watches.end()) continue;
    std::shared_ptr<Entry> keep = it->second;
    keep->cb(Events{mask});
    ++ran;
  }
  if (woken) impl_->run_posted(ran);
  return ran;
}

std::uint64_t Reactor::turn() const noexcept { return impl_->turn; }

Result<void> Reactor::run() {
  while (!impl_->stop_requested.load(std::memory_order_acquire)) {
    CAPSA_TRY(run_once(-1));
  }
  impl_->stop_requested.store(false, std::memory_order_release);
  return {};
}

void Reactor::stop() noexcept {
  impl_->stop_requested.store(true, std::memory_order_release);
  impl_->wake_loop();
}

void Reactor::post(Task task) {
  {
    std::lock_guard lock(impl_->post_mu);
    impl_->posted.push_back(std::move(task));
  }
  impl_->wake_loop();
}

Result<void> Reactor::submit_job(Task job) {
  {
    std::lock_guard lock(impl_->pool_mu);
    if (impl_->threads.empty()) return make_error(Errc::kOverloaded, "no worker pool");
    if (impl_->jobs.size() >= impl_->options.pool_queue_limit) {
      return make_error(Errc::kOverloaded, "worker pool queue is full (" +
                                               std::to_string(impl_->options.pool_queue_limit) + " jobs)");
    }
    impl_->jobs.push_back(std::move(job));
  }
  impl_->pool_cv.notify_one();
  return {};
}

std::size_t Reactor::pool_queued() const {
  std::lock_guard lock(impl_->pool_mu);
  return impl_->jobs.size();
}

}  // namespace capsa::supervisor
