#include "supervisor/reactor/reactor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "capabilities/sys.h"
#include "supervisor/reactor/reactor_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor {
namespace {

using namespace std::chrono_literals;
using capsa::testing::FdLeakCheck;
using namespace reactor_test;

TEST(Reactor, PostsRunInFifoOrderOnTheLoopThread) {
  auto reactor = make();
  std::vector<int> order;
  std::thread::id loop_thread = std::this_thread::get_id();
  bool on_loop = true;
  for (int i = 0; i < 5; ++i) {
    reactor->post([&, i] {
      order.push_back(i);
      on_loop = on_loop && std::this_thread::get_id() == loop_thread;
    });
  }
  reactor->post([&] { reactor->stop(); });
  ASSERT_TRUE(reactor->run().has_value());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(on_loop);
}

TEST(Reactor, ReadableIsLevelTriggeredAndHangupIsReported) {
  FdLeakCheck leaks;
  {
    auto reactor = make();
    Pipe p = make_pipe();
    std::string got;
    bool hung_up = false;
    auto id = reactor->watch(p.read, Interest::kReadable, [&](Events ev) {
      char c;
      if (ev.readable() && ::read(p.read.get(), &c, 1) == 1) got += c;
      else if (ev.hung_up()) hung_up = true;
    });
    ASSERT_TRUE(id.has_value());
    put(p.write, "abc");
    // One byte per callback: the fd stays ready until drained.
    for (int i = 0; i < 3; ++i) ASSERT_EQ(reactor->run_once(-1).value(), 1u);
    EXPECT_EQ(got, "abc");
    EXPECT_EQ(reactor->run_once(0).value(), 0u);
    p.write.reset();
    ASSERT_EQ(reactor->run_once(-1).value(), 1u);
    EXPECT_TRUE(hung_up);
    reactor->unwatch(*id);
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

// Two fds that stay ready, served at most one per turn (as the supervisor
// serves one packet per worker per turn): each turn's batch starts at a
// different place, so neither waits behind the other for ever.
TEST(Reactor, FdsThatStayReadyTakeTurnsBeingFirst) {
  FdLeakCheck leaks;
  {
    auto reactor = make();
    Pipe a = make_pipe();
    Pipe b = make_pipe();
    put(a.write, "aaaaaaaaaa");
    put(b.write, "bbbbbbbbbb");
    std::string got;
    std::uint64_t served_turn = 0;
    auto one_per_turn = [&](const Fd& fd) {
      return [&, fd = fd.get()](Events) {
        if (served_turn == reactor->turn()) return;  // someone had this turn
        served_turn = reactor->turn();
        char c;
        if (::read(fd, &c, 1) == 1) got += c;
      };
    };
    auto ia = reactor->watch(a.read, Interest::kReadable, one_per_turn(a.read));
    auto ib = reactor->watch(b.read, Interest::kReadable, one_per_turn(b.read));
    ASSERT_TRUE(ia && ib);
    for (int i = 0; i < 10; ++i) ASSERT_EQ(reactor->run_once(-1).value(), 2u);
    EXPECT_EQ(std::count(got.begin(), got.end(), 'a'), 5);
    EXPECT_EQ(std::count(got.begin(), got.end(), 'b'), 5);
    reactor->unwatch(*ia);
    reactor->unwatch(*ib);
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(Reactor, WatchingTheSameFdTwiceIsRefused) {
  auto reactor = make();
  Pipe p = make_pipe();
  ASSERT_TRUE(reactor->watch(p.read, Interest::kReadable, [](Events) {}).has_value());
  auto again = reactor->watch(p.read, Interest::kReadable, [](Events) {});
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kInvalidArgument);
  auto bad = reactor->watch(Fd(), Interest::kReadable, [](Events) {});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
}

TEST(Reactor, ModifyChangesWhatAWatchWaitsFor) {
  auto reactor = make();
  Pipe p = make_pipe();
  int writable = 0;
  // A pipe's write end is never readable: nothing happens until the watch
  // asks for writability.
  auto id = reactor->watch(p.write, Interest::kReadable, [&](Events ev) {
    if (ev.writable()) ++writable;
  });
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(reactor->run_once(0).value(), 0u);
  ASSERT_TRUE(reactor->modify(*id, Interest::kWritable).has_value());
  EXPECT_EQ(reactor->run_once(-1).value(), 1u);
  EXPECT_EQ(writable, 1);
  reactor->unwatch(*id);
  auto gone = reactor->modify(*id, Interest::kWritable);
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, Errc::kNotFound);
}

TEST(Reactor, CallbackCanUnwatchItselfAndIsDestroyedAfterReturning) {
  auto reactor = make();
  Pipe p = make_pipe();
  std::atomic<int> live{0};
  int calls = 0;
  int live_inside = -1;
  WatchId id = 0;
  {
    Tracker t(&live);
    id = reactor->watch(p.read, Interest::kReadable, [&, t](Events) {
              ++calls;
              reactor->unwatch(id);
              // Still alive: we are running inside it.
              live_inside = t.live_->load();
            }).value();
  }
  EXPECT_EQ(live.load(), 1);  // only the reactor's copy
  put(p.write, "x");
  EXPECT_EQ(reactor->run_once(-1).value(), 1u);
  EXPECT_EQ(live_inside, 1);
  EXPECT_EQ(live.load(), 0);  // destroyed once it returned
  // Data is still there, but nothing is watching any more.
  EXPECT_EQ(reactor->run_once(0).value(), 0u);
  EXPECT_EQ(calls, 1);
  reactor->unwatch(id);  // already gone: ignored
}

TEST(Reactor, UnwatchOfAnotherFdInTheSameBatchDropsItsPendingEvent) {
  auto reactor = make();
  Pipe a = make_pipe();
  Pipe b = make_pipe();
  std::atomic<int> live{0};
  std::vector<char> ran;
  WatchId ida = 0, idb = 0;
  // Whichever runs first removes the other, whose state (a Tracker and its
  // pipe) is destroyed right then, before its already-fetched event would be
  // dispatched.
  {
    Tracker t(&live);
    ida = reactor->watch(a.read, Interest::kReadable, [&, t](Events) {
                ran.push_back('a');
                reactor->unwatch(idb);
              }).value();
    idb = reactor->watch(b.read, Interest::kReadable, [&, t](Events) {
                ran.push_back('b');
                reactor->unwatch(ida);
              }).value();
  }
  put(a.write, "1");
  put(b.write, "1");
  EXPECT_EQ(reactor->run_once(-1).value(), 1u);
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(live.load(), 1);  // the survivor's callback
  // The survivor is still served (level-triggered, data unread).
  EXPECT_EQ(reactor->run_once(-1).value(), 1u);
  EXPECT_EQ(ran.size(), 2u);
  EXPECT_EQ(ran[0], ran[1]);
}

TEST(Reactor, OneShotTimerFiresOnceAndCancelledTimerNever) {
  FdLeakCheck leaks;
  {
    auto reactor = make();
    int fired = 0, cancelled_fired = 0;
    auto cancelled = reactor->add_timer(0ns, [&] { ++cancelled_fired; });
    ASSERT_TRUE(cancelled.has_value());
    reactor->unwatch(*cancelled);
    ASSERT_TRUE(reactor->add_timer(1ms, [&] {
                  ++fired;
                  reactor->stop();
                }).has_value());
    ASSERT_TRUE(reactor->run().has_value());
    EXPECT_EQ(fired, 1);
    EXPECT_EQ(cancelled_fired, 0);
    // The one-shot removed itself: nothing is left to fire.
    EXPECT_EQ(reactor->run_once(0).value(), 0u);
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(Reactor, PeriodicTimerRepeatsUntilUnwatched) {
  auto reactor = make();
  int fired = 0;
  WatchId id = 0;
  id = reactor->add_periodic_timer(1ms, [&] {
                if (++fired == 3) {
                  reactor->unwatch(id);
                  reactor->stop();
                }
              }).value();
  ASSERT_TRUE(reactor->run().has_value());
  EXPECT_EQ(fired, 3);
  EXPECT_FALSE(reactor->add_periodic_timer(0ns, [] {}).has_value());
}

TEST(Reactor, SignalsArriveThroughTheLoop) {
  // watch_signals() blocks SIGUSR1 in this thread; later tests get the old
  // mask back.
  sigset_t old_mask;
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &old_mask), 0);
  struct Restore {
    sigset_t* mask;
    ~Restore() { pthread_sigmask(SIG_SETMASK, mask, nullptr); }
  } restore{&old_mask};
  auto reactor = make();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  std::vector<std::uint32_t> got;
  auto id = reactor->watch_signals(set, [&](const signalfd_siginfo& info) {
    got.push_back(info.ssi_signo);
    reactor->stop();
  });
  ASSERT_TRUE(id.has_value()) << id.error().to_string();
  // Thread-directed, so it stays pending for this (the loop) thread, which
  // now blocks it: without the signalfd this would kill the test.
  ASSERT_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
  ASSERT_TRUE(reactor->run().has_value());
  EXPECT_EQ(got, (std::vector<std::uint32_t>{SIGUSR1}));
  reactor->unwatch(*id);
}

// How the supervisor learns that a worker exited: a pidfd becomes readable.
TEST(Reactor, ChildExitArrivesThroughAPidfd) {
  FdLeakCheck leaks;
  {
    auto reactor = make();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(7);
    auto pidfd = sys_fd("pidfd_open", "", [&] { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); });
    ASSERT_TRUE(pidfd.has_value()) << pidfd.error().to_string();
    int exit_status = -1;
    WatchId id = 0;
    id = reactor->watch(*pidfd, Interest::kReadable, [&](Events ev) {
                  if (!ev.readable()) return;
                  siginfo_t info{};
                  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd->get()), &info, WEXITED) != 0) return;
                  exit_status = info.si_status;
                  reactor->unwatch(id);
                  reactor->stop();
                }).value();
    ASSERT_TRUE(reactor->run().has_value());
    EXPECT_EQ(exit_status, 7);
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(Reactor, PostFromManyThreadsKeepsEachThreadsOrder) {
  auto reactor = make();
  constexpr int kThreads = 4, kPerThread = 1000;
  std::vector<std::vector<int>> seen(kThreads);
  int total = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        reactor->post([&, t, i] {
          seen[static_cast<std::size_t>(t)].push_back(i);
          if (++total == kThreads * kPerThread) reactor->stop();
        });
      }
    });
  }
  ASSERT_TRUE(reactor->run().has_value());
  for (auto& th : threads) th.join();
  for (const auto& s : seen) {
    ASSERT_EQ(s.size(), static_cast<std::size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) EXPECT_EQ(s[static_cast<std::size_t>(i)], i);
  }
}

// stop() from another thread while run() is under way: the stopper waits
// until a posted task proves the loop is running, so the stop cannot land
// before run() starts (that case is the next test). A watchdog turns a lost
// wake-up into a failure instead of a hang.
TEST(Reactor, StopFromAnotherThreadEndsRun) {
  auto reactor = make();
  std::promise<void> running;
  reactor->post([&] { running.set_value(); });
  bool watchdog_fired = false;
  ASSERT_TRUE(reactor->add_timer(10s, [&] {
                        watchdog_fired = true;
                        reactor->stop();
                      }).has_value());
  std::thread stopper([&, seen = running.get_future()] {
    seen.wait();
    reactor->stop();
  });
  ASSERT_TRUE(reactor->run().has_value());
  stopper.join();
  EXPECT_FALSE(watchdog_fired) << "stop() from another thread did not wake the loop";
}

// The documented other half: a stop() with no run() under way ends the next
// run() at once, and only that one.
TEST(Reactor, StopBeforeRunEndsTheNextRunOnly) {
  auto reactor = make();
  std::thread stopper([&] { reactor->stop(); });
  stopper.join();
  bool watchdog_fired = false;
  auto watchdog = reactor->add_timer(10s, [&] {
    watchdog_fired = true;
    reactor->stop();
  });
  ASSERT_TRUE(watchdog.has_value());
  ASSERT_TRUE(reactor->run().has_value());
  EXPECT_FALSE(watchdog_fired);
  // The stop was used up: the next run() serves until its own stop.
  int ran = 0;
  reactor->post([&] { ++ran; });
  reactor->post([&] { reactor->stop(); });
  ASSERT_TRUE(reactor->run().has_value());
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(watchdog_fired);
  reactor->unwatch(*watchdog);
}

}  // namespace
}  // namespace capsa::supervisor
