// Backpressure instead of refusal: when the service pool is full, a call
// that needs it waits (its port unread) instead of failing `overloaded`,
// and waiting workers are served in turn (pool_waiters.h). A pool of one
// thread and a queue of one, and a service whose pool work waits until the
// test releases it, make every order below deterministic.
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "capabilities/client.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor::testing {
namespace {

// The pool's jobs wait here until the test releases their value (or all).
struct PoolGate {
  std::mutex mu;
  std::condition_variable cv;
  std::set<std::uint64_t> released;
  bool all = false;
  int started = 0;
  std::atomic<int> handled{0};     // calls the service received (loop thread)
  std::atomic<int> destroyed{0};   // service objects gone
  std::vector<std::uint64_t> done;  // values answered, in order (loop thread)

  void release(std::uint64_t value) {
    std::lock_guard lock(mu);
    released.insert(value);
    cv.notify_all();
  }
  void open() {
    std::lock_guard lock(mu);
    all = true;
    cv.notify_all();
  }
  int started_jobs() {
    std::lock_guard lock(mu);
    return started;
  }
};

// capsa.test.Echo whose every call does its work on the pool: the work
// waits for the gate, the answer echoes text and value.
class PoolEcho final : public ServiceObject {
 public:
  explicit PoolEcho(std::shared_ptr<PoolGate> gate) : gate_(std::move(gate)) {}
  ~PoolEcho() override { ++gate_->destroyed; }
  void handle(Call call) override {
    ++gate_->handled;
    const auto* req = call.request().payload_as<capsa::test::EchoRequest>();
    std::string text = req->text() != nullptr ? req->text()->str() : "";
    const std::uint64_t value = req->value();
    call.off_loop<int>(
        [gate = gate_, value] {
          std::unique_lock lock(gate->mu);
          ++gate->started;
          gate->cv.wait(lock, [&] { return gate->all || gate->released.contains(value); });
          return 0;
        },
        [gate = gate_, text, value](Call done, int) {
          gate->done.push_back(value);
          EchoService::answer(done, text, value);
        });
  }
  std::unique_ptr<ServiceObject> clone() const override { return std::make_unique<PoolEcho>(gate_); }

 private:
  std::shared_ptr<PoolGate> gate_;
};

// Polls `done` (bounded: 5 s) and says whether it came true.
template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 5000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

class BackpressureTest : public SupervisorFixture {
 protected:
  void SetUp() override {
    SupervisorFixture::SetUp();
    gate_ = std::make_shared<PoolGate>();
    options_.reactor.pool_threads = 1;
    options_.reactor.pool_queue_limit = 1;
    options_.extra_services[0].make = [gate = gate_](const policy::Grant&,
                                                      const std::shared_ptr<const void>&,
                                                      ServiceHost&) {
      return std::make_unique<PoolEcho>(gate);
    };
  }
  void TearDown() override {
    if (gate_) gate_->open();  // no pool job may wait past the test
  }

  // An attached worker's bootstrap, which a test may close early.
  std::unique_ptr<RawBootstrap> attach_ptr(std::string_view worker) {
    auto p = sup_->attach(worker);
    EXPECT_TRUE(p) << p.error().to_string();
    return p ? std::make_unique<RawBootstrap>(std::move(*p), sup_->registry()) : nullptr;
  }
  // One port of `boot`'s grant "echo", as a client.
  std::unique_ptr<Client> port(RawBootstrap& boot) {
    auto got = boot.get("echo");
    EXPECT_TRUE(got) << got.error().to_string();
    if (!got) return nullptr;
    return std::make_unique<Client>(std::move(got->port), *sup_->registry().find("capsa.test.Echo"));
  }
  // Sends Echo(text, value); its outcome lands in results_[value].
  void send(Client& c, const std::string& text, std::uint64_t value) {
    auto& fbb = c.payload_builder();
    fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString(text), value));
    ASSERT_TRUE(c.submit(0, c.payload_bytes(), {}, [this, value](Result<Message> m) {
      results_[value] = m ? m->payload_as<capsa::test::EchoReply>()->text()->str()
                          : "error:" + std::string(errc_name(m.error().code));
    }));
  }
  // Sends, then waits until the supervisor handed the call to the service
  // (so it went to the pool or was parked, in the order sent).
  void send_handled(Client& c, const std::string& text, std::uint64_t value) {
    const int before = gate_->handled.load();
    send(c, text, value);
    ASSERT_TRUE(eventually([&] { return gate_->handled.load() == before + 1; }));
  }
  // The first job: sent, then running on the pool's only thread, so the
  // next call finds the pool's queue empty.
  void send_running(Client& c, const std::string& text, std::uint64_t value) {
    send_handled(c, text, value);
    ASSERT_TRUE(eventually([&] { return gate_->started_jobs() == 1; }));
  }
  // Reads `c`'s answers until the call `value` completed.
  void await(Client& c, std::uint64_t value) {
    // A closed port fails its outstanding calls, then reports kClosed.
    while (!results_.contains(value)) {
      auto r = c.on_readable();
      ASSERT_TRUE(r || results_.contains(value)) << "call " << value << ": " << r.error().to_string();
    }
  }
  std::size_t waiting(LoopThread& loop) {
    return loop.on_loop([&] { return sup_->pool_waiting(); });
  }

  std::shared_ptr<PoolGate> gate_;
  std::map<std::uint64_t, std::string> results_;
};

TEST_F(BackpressureTest, MoreCallsThanThePoolHoldsAllCompleteAndNoneIsOverloaded) {
  make([](auto& b) {
    for (const char* w : {"w0", "w1", "w2"}) echo_worker(b, w);
  });
  std::vector<std::unique_ptr<RawBootstrap>> boots;
  for (const char* w : {"w0", "w1", "w2"}) boots.push_back(attach_ptr(w));
  LoopThread loop(*sup_);
  std::vector<std::unique_ptr<Client>> clients;
  for (auto& boot : boots) {
    for (int i = 0; i < 3; ++i) clients.push_back(port(*boot));
  }
  // Two calls on each of 9 ports: 18 calls for a pool of 1 thread + 1 queued.
  for (std::size_t i = 0; i < clients.size(); ++i) {
    send(*clients[i], "first " + std::to_string(i), 2 * i);
    send(*clients[i], "second " + std::to_string(i), 2 * i + 1);
  }
  // Each port's first call reaches the service; its second waits behind it
  // (per-port order), unread while the first is parked.
  // 1 runs, 1 is queued on the pool, 7 wait; or 8, when a call reached the
  // pool's queue before its thread took the first job (the pool was full).
  ASSERT_TRUE(eventually([&] { return gate_->handled.load() == 9 && waiting(loop) >= 7u; }))
      << "handled " << gate_->handled.load() << ", waiting " << waiting(loop);
  EXPECT_LE(waiting(loop), 8u);
  ASSERT_TRUE(eventually([&] { return gate_->started_jobs() == 1; }));
  gate_->open();
  for (std::size_t i = 0; i < clients.size(); ++i) {
    await(*clients[i], 2 * i + 1);
    EXPECT_EQ(results_[2 * i], "first " + std::to_string(i));
    EXPECT_EQ(results_[2 * i + 1], "second " + std::to_string(i));
  }
  EXPECT_EQ(results_.size(), 18u);
  EXPECT_EQ(gate_->handled.load(), 18);
  EXPECT_EQ(waiting(loop), 0u);
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"overloaded"}), 0u);
  EXPECT_EQ(count_lines_with(audit(), {"\"call_denied\""}), 0u);
}

TEST_F(BackpressureTest, WorkersTakeTurnsSoManyPortsCannotStarveOne) {
  make([](auto& b) {
    echo_worker(b, "many");
    echo_worker(b, "one");
  });
  RawBootstrap many = attach("many");
  RawBootstrap one = attach("one");
  LoopThread loop(*sup_);
  std::vector<std::unique_ptr<Client>> ports;
  for (int i = 0; i < 6; ++i) ports.push_back(port(many));
  auto lone = port(one);
  // "many" saturates the pool from 6 ports: 1 runs, 2 is queued, 3-6 wait.
  send_running(*ports[0], "many", 1);
  for (std::uint64_t v = 2; v <= 6; ++v) send_handled(*ports[v - 1], "many", v);
  // Then "one" asks, last of all.
  send_handled(*lone, "one", 100);
  EXPECT_EQ(waiting(loop), 5u);
  gate_->open();
  await(*lone, 100);
  for (std::uint64_t v = 1; v <= 6; ++v) await(*ports[v - 1], v);
  // Turns: "many" (3), then "one", then the rest of "many"'s backlog. In
  // arrival order (per port) it would have come last, after 6.
  const auto done = loop.on_loop([&] { return gate_->done; });
  EXPECT_EQ(done, (std::vector<std::uint64_t>{1, 2, 3, 100, 4, 5, 6}));
  EXPECT_EQ(results_[100], "one");
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"overloaded"}), 0u);
}

TEST_F(BackpressureTest, AWorkerPastItsOwnCallsInFlightIsStillOverloaded) {
  make([](auto& b) {
    echo_worker(b, "hog");
    echo_worker(b, "w").limit(policy::LimitKind::kCallsInFlight, 2);
  });
  RawBootstrap hog = attach("hog");
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto h1 = port(hog);
  auto h2 = port(hog);
  auto c = port(boot);
  send_running(*h1, "h1", 1);
  send_handled(*h2, "h2", 2);
  send_handled(*c, "one", 10);  // parked: the port is no longer read
  EXPECT_EQ(waiting(loop), 1u);
  send(*c, "two", 11);    // waits in the kernel
  send(*c, "three", 12);  // one past w's limit of 2
  // The pool frees; 10 goes to it (and waits for its release), the port is
  // read again: 11 waits behind 10, 12 is refused.
  gate_->release(1);
  gate_->release(2);
  await(*c, 12);
  EXPECT_EQ(results_[12], "error:overloaded");
  EXPECT_FALSE(results_.contains(10));
  gate_->release(10);
  gate_->release(11);
  await(*c, 11);
  EXPECT_EQ(results_[10], "one");
  EXPECT_EQ(results_[11], "two");
  await(*h2, 2);
  await(*h1, 1);
  EXPECT_EQ(results_[1], "h1");
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"call_denied\"", "too many calls in flight"}), 1u);
  EXPECT_EQ(count_lines_with(audit(), {"service pool"}), 0u);
}

TEST_F(BackpressureTest, RevokedClosedAndKilledWaitersLeaveNothingBehind) {
  make([](auto& b) {
    echo_worker(b, "hog");
    echo_worker(b, "w");
    echo_worker(b, "doomed");  // on_bad_message: kill (the default)
  });
  RawBootstrap hog = attach("hog");
  RawBootstrap boot = attach("w");
  auto doomed = attach_ptr("doomed");
  LoopThread loop(*sup_);
  const std::size_t grants_before = loop.on_loop([&] { return sup_->live_grants(); });
  capsa::testing::FdLeakCheck fds;
  auto h1 = port(hog);
  auto h2 = port(hog);
  auto revoked = port(boot);
  auto closed = port(boot);
  auto kept = port(boot);
  auto victim = port(*doomed);
  auto got = doomed->get("echo");
  ASSERT_TRUE(got);
  std::optional<Port> weapon(std::move(got->port));
  send_running(*h1, "h1", 1);
  send_handled(*h2, "h2", 2);
  send_handled(*revoked, "revoked", 3);
  send_handled(*closed, "closed", 4);
  send_handled(*kept, "kept", 5);
  send_handled(*victim, "victim", 6);
  EXPECT_EQ(waiting(loop), 4u);

  // Revoked while waiting: its call fails `revoked` at the holder.
  const GrantId id = loop.on_loop([&] {
    for (const GrantView& g : sup_->grants()) {
      if (g.worker == "w" && g.interface == "capsa.test.Echo") return g.id;
    }
    return GrantId{0};
  });
  ASSERT_NE(id, 0u);
  revoked->set_peer_closed_error(Errc::kRevoked, "revoked");
  ASSERT_TRUE(loop.on_loop([&] { return sup_->revoke(id, "test"); }));
  await(*revoked, 3);
  EXPECT_EQ(results_[3], "error:revoked");
  EXPECT_EQ(waiting(loop), 3u);
  // Closed while waiting: an unread port still reports its hang-up.
  closed.reset();
  ASSERT_TRUE(eventually([&] { return waiting(loop) == 2u; }));
  // Its holder killed while waiting (a bad message on another port).
  const char junk[] = "junk";
  ASSERT_TRUE(weapon->send(std::as_bytes(std::span(junk))));
  ASSERT_TRUE(eventually([&] { return waiting(loop) == 1u; }));

  gate_->open();
  await(*kept, 5);
  EXPECT_EQ(results_[5], "kept");
  await(*h1, 1);
  await(*h2, 2);
  // What waited on a gone port never ran.
  EXPECT_EQ(loop.on_loop([&] { return gate_->done; }), (std::vector<std::uint64_t>{1, 2, 5}));
  // The supervisor keeps serving afterwards.
  send(*kept, "again", 7);
  await(*kept, 7);
  EXPECT_EQ(results_[7], "again");

  h1.reset();
  h2.reset();
  revoked.reset();
  kept.reset();
  victim.reset();
  weapon.reset();
  doomed.reset();
  // Every Echo grant is gone, and so is the killed worker's bootstrap.
  ASSERT_TRUE(eventually([&] {
    return loop.on_loop([&] { return sup_->live_grants(); }) == grants_before - 1;
  }));
  EXPECT_EQ(waiting(loop), 0u);
  EXPECT_EQ(gate_->destroyed.load(), 7);
  loop.stop();
  // Both ends of the killed worker's bootstrap (opened before the count)
  // are closed; nothing else opened since stays open.
  EXPECT_EQ(fds.leaked(), -2) << capsa::testing::describe_open_fds();
}

}  // namespace
}  // namespace capsa::supervisor::testing
