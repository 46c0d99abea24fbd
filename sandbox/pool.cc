// The warm pool: filling off the caller's path, hand-over on it.
#include "sandbox/pool.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "capabilities/sys.h"
#include "sandbox/worker_state.h"

namespace capsa::sandbox {

namespace d = detail;

Result<std::unique_ptr<Pool>> Pool::create(Spec spec, std::size_t size,
                                           std::chrono::milliseconds refill_delay) {
  if (size == 0) return make_error(Errc::kInvalidArgument, "pool: size 0");
  CAPSA_ASSIGN_OR_RETURN(HostFiles files, open_host_files(spec));
  CAPSA_ASSIGN_OR_RETURN(Fd wake, sys_fd("eventfd", "pool", [] {
                           return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                         }));
  std::unique_ptr<Pool> pool(
      new Pool(std::move(spec), std::move(files), size, refill_delay, std::move(wake)));
  pool->filler_ = std::thread([p = pool.get()] { p->fill_loop(); });
  return pool;
}

Pool::Pool(Spec spec, HostFiles files, std::size_t size, std::chrono::milliseconds refill_delay,
           Fd wake)
    : spec_(std::move(spec)),
      files_(std::move(files)),
      size_(size),
      refill_delay_(refill_delay),
      wake_(std::move(wake)) {}

Pool::~Pool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake();
  if (filler_.joinable()) filler_.join();
  // ~Worker of each: SIGKILL to bubblewrap, reap, drain and remove the cgroup.
  idle_.clear();
  ended_.clear();
}

void Pool::wake() const noexcept {
  const std::uint64_t one = 1;
  ssize_t ignored = ::write(wake_.get(), &one, sizeof one);
  (void)ignored;
}

std::size_t Pool::ready() const {
  std::lock_guard lock(mu_);
  return idle_.size();
}

std::vector<int> Pool::idle_pids() const {
  std::lock_guard lock(mu_);
  std::vector<int> out;
  for (const auto& w : idle_) out.push_back(w.pid());
  return out;
}

Pool::Stats Pool::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Pool::wait_full(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return idle_.size() >= size_ || fill_failed_; });
  return idle_.size() >= size_;
}

Result<Worker> Pool::take(Fd bootstrap, StdioFds stdio, const std::string& name) {
  if (!bootstrap.valid()) return make_error(Errc::kInvalidArgument, "pool: no bootstrap fd");
  for (;;) {
    std::optional<Worker> w;
    {
      std::lock_guard lock(mu_);
      fill_failed_ = false;  // a take is a new reason to try filling again
      last_take_ = std::chrono::steady_clock::now();
      if (!idle_.empty()) {
        w.emplace(std::move(idle_.front()));
        idle_.pop_front();
      }
    }
    wake();  // refill (or retry a failed fill) on the filler's thread
    if (!w) break;
    d::WorkerAccess::state(*w).name = name.empty() ? spec_.name : name;
    auto handed = d::hand_over(*w, spec_, bootstrap, stdio);
    if (handed) {
      std::lock_guard lock(mu_);
      ++stats_.handed;
      return std::move(*w);
    }
    if (handed.error().code != Errc::kClosed) return std::unexpected(std::move(handed).error());
    // It ended while idle: never handed out. Its reaping (and the cgroup's
    // drain) is the filler's job, off this path; try the next one.
    std::lock_guard lock(mu_);
    ++stats_.replaced;
    ended_.push_back(std::move(*w));
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.cold;
  }
  if (name.empty()) return spawn(spec_, files_, std::move(bootstrap), std::move(stdio));
  Spec named = spec_;
  named.name = name;
  return spawn(named, files_, std::move(bootstrap), std::move(stdio));
}

void Pool::fill_loop() {
  // Process signals (SIGINT, SIGTERM a supervisor takes through signalfd
  // on its loop thread) must never be delivered to this thread.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    bool need = false;
    int timeout_ms = -1;
    std::vector<Worker> reap;
    std::vector<pollfd> watch{{wake_.get(), POLLIN, 0}};
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      // An idle sandbox that ended (killed from outside, OOM, a failed
      // child) is dropped here and replaced below; take() checks again
      // before every hand-over, so one that ends after this check is not
      // handed out either.
      for (auto it = idle_.begin(); it != idle_.end();) {
        if (d::pooled_sandbox_ended(d::WorkerAccess::state(*it))) {
          ++stats_.replaced;
          reap.push_back(std::move(*it));
          it = idle_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& w : ended_) reap.push_back(std::move(w));
      ended_.clear();
      need = !fill_failed_ && idle_.size() < size_;
      // Not while workers are being taken: a fill is bubblewrap's whole
      // start (milliseconds of CPU) and would compete with the workers just
      // handed over, on the CPU they start on. It waits until no take came
      // for refill_delay.
      if (need) {
        const auto quiet = last_take_ + refill_delay_ - std::chrono::steady_clock::now();
        if (quiet > std::chrono::steady_clock::duration::zero()) {
          need = false;
          timeout_ms = static_cast<int>(
              std::chrono::ceil<std::chrono::milliseconds>(quiet).count());
        }
      }
      if (!need) {
        // The fds stay open while the Worker is in idle_; one taken
        // meanwhile wakes us through the eventfd, and every wake-up checks
        // again under the lock, so a stale fd costs at most a spurious wake.
        for (auto& w : idle_) {
          auto& s = d::WorkerAccess::state(w);
          watch.push_back({s.pidfd.get(), POLLIN, 0});
          watch.push_back({s.status.fd().get(), POLLIN, 0});
        }
      }
    }
    changed_.notify_all();
    reap.clear();  // ~Worker: reap, drain and remove the cgroup
    if (need) {
      auto w = d::start_sandbox(spec_, files_, Fd(), StdioFds{}, /*pooled=*/true);
      std::lock_guard lock(mu_);
      if (w) {
        ++stats_.filled;
        idle_.push_back(std::move(*w));
      } else {
        ++stats_.fill_errors;
        stats_.last_fill_error = w.error().to_string();
        fill_failed_ = true;
      }
      continue;
    }
    if (::poll(watch.data(), watch.size(), timeout_ms) < 0 && errno != EINTR) return;
    if (watch[0].revents != 0) {
      std::uint64_t n;
      ssize_t ignored = ::read(wake_.get(), &n, sizeof n);
      (void)ignored;
    }
  }
}

}  // namespace capsa::sandbox
