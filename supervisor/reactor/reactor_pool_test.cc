// The reactor's worker pool: bounded queue, results back on the loop, and
// the loop kept serving fds while a job is slow.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "capabilities/sys.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/reactor/reactor_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor {
namespace {

using namespace std::chrono_literals;
using capsa::testing::FdLeakCheck;
using namespace reactor_test;

TEST(ReactorPool, PoolQueueIsBoundedAndRecovers) {
  auto reactor = make({.pool_threads = 1, .pool_queue_limit = 2});
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  std::vector<int> done;
  ASSERT_TRUE(reactor->run_off_loop<int>(
                  [&started, released] {
                    started.set_value();
                    released.wait();
                    return 0;
                  },
                  [&](int v) { done.push_back(v); })
                  .has_value());
  // The only pool thread is now busy: the next two jobs queue, the third
  // is refused.
  started.get_future().wait();
  auto job = [](int v) { return std::move_only_function<int()>([v] { return v; }); };
  auto then = [&] { return std::move_only_function<void(int)>([&](int v) { done.push_back(v); }); };
  ASSERT_TRUE(reactor->run_off_loop<int>(job(1), then()).has_value());
  ASSERT_TRUE(reactor->run_off_loop<int>(job(2), then()).has_value());
  EXPECT_EQ(reactor->pool_queued(), 2u);
  auto refused = reactor->run_off_loop<int>(job(3), then());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Errc::kOverloaded);
  release.set_value();
  while (done.size() < 3) ASSERT_TRUE(reactor->run_once(-1).has_value());
  EXPECT_EQ(done, (std::vector<int>{0, 1, 2}));  // one pool thread: FIFO
  // Drained: accepted again.
  ASSERT_TRUE(reactor->run_off_loop<int>(job(4), then()).has_value());
  while (done.size() < 4) ASSERT_TRUE(reactor->run_once(-1).has_value());
  EXPECT_EQ(done.back(), 4);
}

TEST(ReactorPool, WithoutAPoolOffLoopWorkIsOverloaded) {
  auto reactor = make({.pool_threads = 0});
  auto r = reactor->run_off_loop<int>([] { return 1; }, [](int) {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kOverloaded);
}

// A job that blocks until an fd callback has run can only finish if the
// loop keeps serving fds while the job is in progress. The job gives up
// after a generous safety bound so a broken loop fails the test instead of
// hanging it; no timing is asserted.
TEST(ReactorPool, SlowJobDoesNotStallOtherFds) {
  auto reactor = make({.pool_threads = 1});
  Pipe p = make_pipe();
  std::promise<void> fd_served;
  std::shared_future<void> served = fd_served.get_future().share();
  std::promise<void> job_started;
  std::vector<std::string> order;
  ASSERT_TRUE(reactor->run_off_loop<bool>(
                  [served, &job_started] {
                    job_started.set_value();
                    return served.wait_for(60s) == std::future_status::ready;
                  },
                  [&](bool was_released) {
                    order.push_back(was_released ? "job done" : "job timed out");
                    reactor->stop();
                  })
                  .has_value());
  ASSERT_TRUE(reactor->watch(p.read, Interest::kReadable, [&](Events) {
                char c;
                if (::read(p.read.get(), &c, 1) != 1) return;
                order.push_back("fd served");
                fd_served.set_value();
              }).has_value());
  job_started.get_future().wait();
  put(p.write, "x");
  ASSERT_TRUE(reactor->run().has_value());
  EXPECT_EQ(order, (std::vector<std::string>{"fd served", "job done"}));
}

TEST(ReactorPool, MoveOnlyResultsComeBackToTheLoop) {
  FdLeakCheck leaks;
  {
    auto reactor = make();
    bool got_fd = false;
    ASSERT_TRUE(reactor->run_off_loop<Result<Fd>>(
                    [] { return sys_fd("open", "/dev/null", [] { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }); },
                    [&](Result<Fd> fd) {
                      got_fd = fd.has_value() && fd->valid();
                      reactor->stop();
                    })
                    .has_value());
    ASSERT_TRUE(reactor->run().has_value());
    EXPECT_TRUE(got_fd);
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

// Whether the queued jobs ran or were dropped depends on the pool's timing;
// either way no callback copy and no fd may outlive the reactor.
TEST(ReactorPool, DestroyingWithQueuedJobsLeaksNothing) {
  FdLeakCheck leaks;
  std::atomic<int> live{0};
  {
    auto reactor = make({.pool_threads = 1, .pool_queue_limit = 8});
    std::promise<void> started, release;
    std::shared_future<void> released = release.get_future().share();
    ASSERT_TRUE(reactor->run_off_loop<int>(
                    [&started, released] {
                      started.set_value();
                      released.wait();
                      return 0;
                    },
                    [](int) {})
                    .has_value());
    started.get_future().wait();
    Tracker t(&live);
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(reactor->run_off_loop<int>([t] { return 1; }, [t](int) {}).has_value());
    }
    release.set_value();
  }
  EXPECT_EQ(live.load(), 0);
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

}  // namespace
}  // namespace capsa::supervisor
