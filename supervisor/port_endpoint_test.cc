// One served port on its own: the order of checks on a packet (validation,
// rights, limits, calls in flight), one call at a time in order, and what a
// refusal leads to under each bad-message action.
#include "supervisor/port_endpoint.h"

#include <sys/socket.h>

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "capabilities/client.h"
#include "echo_generated.h"
#include "supervisor/core_test_util.h"

namespace capsa::supervisor {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::CoreTest;

constexpr std::uint32_t kEcho = 0;
constexpr std::uint32_t kPut = 1;

class PortEndpointTest : public CoreTest {
 protected:
  // Mints a grant and connects a non-blocking client to it.
  void connect(Rights rights = kAllRights) {
    minted_ = mint(0, rights);
    Port port(std::move(minted_.handle.fd));
    ASSERT_TRUE(port.set_nonblocking(true));
    client_ = std::make_unique<Client>(std::move(port), *echo_);
  }

  // Sends Echo(text) and records its outcome in results_.
  void call_echo(const std::string& text, std::uint32_t method = kEcho) {
    auto& fbb = client_->payload_builder();
    if (method == kEcho) {
      fbb.Finish(test::CreateEchoRequest(fbb, fbb.CreateString(text)));
    } else {
      fbb.Finish(test::CreatePutRequest(fbb));
    }
    auto id = client_->submit(method, client_->payload_bytes(), {}, [this](Result<Message> r) {
      results_.push_back(r ? std::string("ok")
                           : std::string(errc_name(r.error().code)) + ": " + r.error().message);
    });
    ASSERT_TRUE(id) << id.error().message;
  }

  // Serves, then reads every answer the client has.
  void exchange() {
    serve();
    while (client_->on_readable()) {
    }
  }

  void answer_oldest() {
    ASSERT_FALSE(held_.calls.empty());
    Call call = std::move(held_.calls.front());
    held_.calls.erase(held_.calls.begin());
    auto sent = call.reply([](flatbuffers::FlatBufferBuilder& fbb) {
      fbb.Finish(test::CreateEchoReply(fbb));
    });
    ASSERT_TRUE(sent) << sent.error().message;
  }

  std::string held_text(std::size_t i) {
    return held_.calls[i].request().payload_as<test::EchoRequest>()->text()->str();
  }

  GrantTable::Minted minted_;
  std::vector<std::string> results_;  // before client_: its calls end into it
  std::unique_ptr<Client> client_;
};

TEST_F(PortEndpointTest, CallsReachTheServiceOneAtATimeInOrder) {
  connect();
  call_echo("first");
  call_echo("second");
  call_echo("third");
  exchange();
  ASSERT_EQ(held_.calls.size(), 1u) << "the next call waits until this one is answered";
  EXPECT_EQ(held_text(0), "first");
  answer_oldest();
  exchange();
  ASSERT_EQ(held_.calls.size(), 1u);
  EXPECT_EQ(held_text(0), "second");
  answer_oldest();
  exchange();
  EXPECT_EQ(held_text(0), "third");
  answer_oldest();
  exchange();
  EXPECT_THAT(results_, ElementsAre("ok", "ok", "ok"));
  EXPECT_EQ(table_->find(minted_.id)->calls, 3u);
  EXPECT_EQ(worker_.calls, 3u);
}

TEST_F(PortEndpointTest, CallsInFlightAtTheLimitAreServedOneMoreIsOverloaded) {
  profile_.limits.calls_in_flight = 2;
  connect();
  call_echo("a");
  call_echo("b");
  call_echo("c");
  exchange();
  EXPECT_THAT(results_, ElementsAre("overloaded: too many calls in flight"));
  EXPECT_EQ(audit_count("too many calls in flight"), 1u);
  answer_oldest();
  exchange();
  answer_oldest();
  exchange();
  EXPECT_THAT(results_, ElementsAre("overloaded: too many calls in flight", "ok", "ok"));
  EXPECT_TRUE(owner_.released.empty());
}

TEST_F(PortEndpointTest, AMethodOutsideTheRightsIsDeniedAndThePortServesOn) {
  connect(right_of(kEcho));
  call_echo("", kPut);
  exchange();
  EXPECT_THAT(results_, ElementsAre("denied: method outside the grant's rights"));
  EXPECT_EQ(audit_count("\"event\":\"call_denied\""), 1u);
  EXPECT_EQ(table_->find(minted_.id)->denials, 1u);
  EXPECT_EQ(worker_.denials, 1u);
  call_echo("still served");
  exchange();
  ASSERT_EQ(held_.calls.size(), 1u);
  EXPECT_EQ(held_text(0), "still served");
}

TEST_F(PortEndpointTest, TheByteBudgetAndTheRatesRefuseWithOverloaded) {
  connect();
  auto limits = std::make_shared<SharedLimits>();
  limits->budget.emplace(1);  // smaller than any packet
  table_->find(minted_.id)->limits = limits;
  call_echo("x");
  exchange();
  EXPECT_THAT(results_, ElementsAre("overloaded: byte budget exhausted"));
  auto rate = services::RateLimiter::create(1, 1);
  ASSERT_TRUE(rate);
  worker_.message_rate.emplace(std::move(*rate));
  limits->budget.reset();
  call_echo("allowed");
  call_echo("over the worker's rate");
  exchange();
  EXPECT_EQ(results_.back(), "overloaded: rate limit: worker messages_per_second");
  EXPECT_EQ(held_.calls.size(), 1u);
}

// A packet that is not a message at all, under each action.
class BadMessageTest : public PortEndpointTest,
                       public ::testing::WithParamInterface<BadMessageAction> {
 protected:
  void send_garbage() {
    const char junk[] = "not an envelope";
    ASSERT_EQ(::send(client_->port().fd().get(), junk, sizeof junk, 0),
              static_cast<ssize_t>(sizeof junk));
  }
};

TEST_P(BadMessageTest, IsAuditedThenActedOn) {
  profile_.on_bad_message = GetParam();
  connect();
  send_garbage();
  serve();
  EXPECT_EQ(worker_.bad_messages, 1u);
  const std::string action = GetParam() == BadMessageAction::kKill ? "kill_worker"
                                                                    : std::string(to_string(GetParam()));
  EXPECT_EQ(audit_count("\"action\":\"" + action + "\""), 1u);
  switch (GetParam()) {
    case BadMessageAction::kReplyError: {
      EXPECT_TRUE(owner_.released.empty());
      call_echo("after");
      exchange();
      EXPECT_EQ(held_.calls.size(), 1u) << "the port serves on";
      break;
    }
    case BadMessageAction::kClosePort:
      EXPECT_THAT(owner_.released,
                  ElementsAre(std::pair<GrantId, std::string>(minted_.id, "bad message: port closed")));
      EXPECT_EQ(table_->find(minted_.id), nullptr);
      break;
    case BadMessageAction::kKill:
      EXPECT_THAT(owner_.killed, ElementsAre(std::pair<std::string, std::string>("w", "bad message")));
      EXPECT_NE(table_->find(minted_.id), nullptr) << "nothing closes before the kill lands";
      // Being killed: what it sends now is not read.
      call_echo("after the verdict");
      serve();
      EXPECT_TRUE(held_.calls.empty());
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(EachAction, BadMessageTest,
                         ::testing::Values(BadMessageAction::kReplyError,
                                           BadMessageAction::kClosePort, BadMessageAction::kKill),
                         [](const auto& p) {
                           switch (p.param) {
                             case BadMessageAction::kReplyError: return "ReplyError";
                             case BadMessageAction::kClosePort: return "ClosePort";
                             case BadMessageAction::kKill: return "Kill";
                           }
                           return "?";
                         });

TEST_F(PortEndpointTest, AHangUpReleasesTheGrantAndDropsWaitingCalls) {
  connect();
  call_echo("held");
  call_echo("waiting");
  serve();
  ASSERT_EQ(held_.calls.size(), 1u);
  client_.reset();  // the worker closes its end
  serve();
  EXPECT_THAT(owner_.released,
              ElementsAre(std::pair<GrantId, std::string>(minted_.id, "holder closed the port")));
  EXPECT_EQ(table_->find(minted_.id), nullptr);
  // The call the service still holds answers nowhere, and says so.
  Call call = std::move(held_.calls.front());
  held_.calls.clear();
  auto sent = call.reply([](flatbuffers::FlatBufferBuilder& fbb) { fbb.Finish(test::CreateEchoReply(fbb)); });
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, Errc::kRevoked);
}

}  // namespace
}  // namespace capsa::supervisor

namespace capsa::supervisor {
namespace {

// Turns go to workers, not ports (issue 15): in one loop turn the
// supervisor reads one packet per worker, however many of its ports are
// ready, and a worker's ready ports take turns among themselves.
TEST_F(PortEndpointTest, OneLoopTurnReadsOnePacketPerWorkerWhateverItsPorts) {
  // Worker w holds four ports, worker v one; each port has one call queued.
  policy::WorkerProfile other_profile;
  other_profile.name = "v";
  WorkerRecord other;
  other.profile = &other_profile;
  other.name = "v";
  other.running = true;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<GrantId> ids;
  for (int i = 0; i < 5; ++i) {
    WorkerRecord& holder = i < 4 ? worker_ : other;
    auto m = table_->mint(holder, spec(0, kAllRights, GrantOrigin::kReturned, "echo"),
                          std::make_unique<testing::HoldingService>(held_));
    ASSERT_TRUE(m) << m.error().message;
    ids.push_back(m->id);
    clients.push_back(std::make_unique<Client>(Port(std::move(m->handle.fd)), *echo_));
    Client& c = *clients.back();
    auto& fbb = c.payload_builder();
    fbb.Finish(test::CreateEchoRequest(fbb, fbb.CreateString(std::to_string(i))));
    ASSERT_TRUE(c.submit(kEcho, c.payload_bytes(), {}, [](Result<Message>) {}));
  }
  auto read = [&] {
    std::vector<std::uint64_t> bytes;
    for (GrantId id : ids) bytes.push_back(table_->find(id)->bytes);
    return static_cast<std::size_t>(std::count_if(bytes.begin(), bytes.end(), [](auto b) { return b != 0; }));
  };
  // Turn 1: one of w's ports and v's port.
  ASSERT_TRUE(reactor_->run_once(0));
  EXPECT_EQ(read(), 2u);
  EXPECT_NE(table_->find(ids[4])->bytes, 0u) << "v is not behind w's four ports";
  // Then one more of w's per turn, none left behind.
  for (std::size_t turn = 2; turn <= 4; ++turn) {
    ASSERT_TRUE(reactor_->run_once(0));
    EXPECT_EQ(read(), turn + 1) << "turn " << turn;
  }
  EXPECT_EQ(held_.calls.size(), 5u);
  held_.calls.clear();
  for (GrantId id : ids) table_->release(id, "test");
}

}  // namespace
}  // namespace capsa::supervisor
