// Associated objects on the wire (docs/PROTOCOL.md section 8): the
// validator asks the receiver's ObjectResolver for the target of a message
// that names an object, and refuses what names one where none can be; the
// Client matches each answer to its call's object and drops the answers of
// calls it abandoned.
#include <optional>

#include "capabilities/client.h"
#include "capabilities/testdata/wire_test_util.h"

namespace capsa::testing {
namespace {

// Object 7 speaks the Echo interface with Echo only (ordinal 0); every
// other id is unknown.
class OneObject final : public ObjectResolver {
 public:
  explicit OneObject(const Interface& iface) : iface_(&iface) {}
  Result<ObjectTarget> resolve(const EnvelopeInfo& info) const override {
    if (info.object != 7 || info.control) {
      return make_error(Errc::kNotFound, "no object " + std::to_string(info.object) + " here");
    }
    return ObjectTarget{iface_, right_of(0)};
  }

 private:
  const Interface* iface_;
};

std::vector<std::uint8_t> echo_reply(std::string_view text) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreateEchoReply(fbb, fbb.CreateString(text.data(), text.size()), 1));
  return finished(fbb);
}

class ObjectsWireTest : public WireTest {
 protected:
  Header on_object(std::uint32_t method, const char* table, std::uint64_t object,
                   bool control = false) {
    Header h = call(method, table, 1);
    h.object = object;
    h.control = control;
    return h;
  }
  // An answer from the serving side (b_) to call `id`, naming `object`.
  void answer(std::uint64_t id, std::uint64_t object) {
    Header h{MessageKind::kReply, id, 0, hash("capsa.test.EchoReply"), Errc::kFailed, {}, object};
    ASSERT_TRUE(send_message(b_, encoder_, h, echo_reply("pong"), {}));
  }
};

TEST_F(ObjectsWireTest, AnObjectNamedWhereNoneCanBeIsABadMessage) {
  expect_refused(deliver(envelope(on_object(0, "capsa.test.EchoRequest", 3), echo_request("x"))),
                 Errc::kBadMessage, "object 3 named on a port that has no associated objects");
  expect_still_works_and_no_leak();
}

TEST_F(ObjectsWireTest, AControlMessageWithoutAnObjectIsABadMessage) {
  const OneObject objects(*iface_);
  ValidateOptions vo;
  vo.objects = &objects;
  expect_refused(deliver(envelope(on_object(0, "capsa.test.EchoRequest", 0, true), echo_request("x")),
                         {}, vo),
                 Errc::kBadMessage, "a control message names no object");
  expect_still_works_and_no_leak();
}

TEST_F(ObjectsWireTest, TheResolverDecidesTheTargetItsRightsAndUnknownIds) {
  const OneObject objects(*iface_);
  ValidateOptions vo;
  vo.objects = &objects;
  auto ok = deliver(envelope(on_object(0, "capsa.test.EchoRequest", 7), echo_request("x")), {}, vo);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(ok->object(), 7u);
  EXPECT_FALSE(ok->control());
  // Put (ordinal 1) exists but is not in object 7's rights, whatever the
  // port's own rights say.
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreatePutRequest(fbb));
  expect_refused(deliver(envelope(on_object(1, "capsa.test.PutRequest", 7), finished(fbb)), {}, vo),
                 Errc::kDenied, "capsa.test.Echo.Put is not in the rights of this capability");
  EnvelopeInfo info;
  auto unknown = [&] {
    raw_send(a_.fd(), envelope(on_object(0, "capsa.test.EchoRequest", 8), echo_request("x")), {});
    auto packet = b_.receive();
    EXPECT_TRUE(packet);
    return validate(std::move(*packet), *iface_, vo, &info);
  }();
  expect_refused(unknown, Errc::kNotFound, "no object 8 here");
  // Enough was read to answer the call, to the object it named.
  EXPECT_TRUE(info.envelope_ok);
  EXPECT_EQ(info.call_id, 1u);
  EXPECT_EQ(info.object, 8u);
  expect_still_works_and_no_leak();
}

TEST_F(ObjectsWireTest, AnAnswerNamingAnotherObjectThanItsCallIsABadMessage) {
  for (std::uint64_t wrong : {std::uint64_t{6}, std::uint64_t{0}}) {
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    a_ = std::move(ch->first);
    b_ = std::move(ch->second);
    Client client(std::move(a_), *iface_);
    std::optional<Result<Message>> done;
    auto id = client.submit(CallTarget{5, false, iface_}, 0, echo_request("ping"), {},
                            [&done](Result<Message> r) { done.emplace(std::move(r)); });
    ASSERT_TRUE(id);
    answer(*id, wrong);
    auto r = client.on_readable();
    ASSERT_FALSE(r) << "accepted an answer naming object " << wrong;
    EXPECT_EQ(r.error().code, Errc::kBadMessage) << r.error().to_string();
    ASSERT_TRUE(done);
    EXPECT_EQ(done->error().code, Errc::kBadMessage);
    EXPECT_TRUE(client.closed()) << "a port that carried a bad message is dead";
  }
}

TEST_F(ObjectsWireTest, TheAnswerOfAnAbandonedCallIsDroppedAndThePortLivesOn) {
  Client client(std::move(a_), *iface_);
  std::optional<Result<Message>> on_object, on_port;
  auto first = client.submit(CallTarget{5, false, iface_}, 0, echo_request("a"), {},
                             [&](Result<Message> r) { on_object.emplace(std::move(r)); });
  ASSERT_TRUE(first);
  client.abandon(5, Error{Errc::kClosed, "the object was released", 0});
  ASSERT_TRUE(on_object);
  EXPECT_EQ(on_object->error().code, Errc::kClosed);
  EXPECT_EQ(client.in_flight(), 1u) << "still outstanding at the server";
  answer(*first, 5);
  ASSERT_TRUE(client.on_readable());
  EXPECT_EQ(client.in_flight(), 0u);
  // The port serves on.
  auto second = client.submit(0, echo_request("b"), {}, [&](Result<Message> r) { on_port.emplace(std::move(r)); });
  ASSERT_TRUE(second);
  answer(*second, 0);
  ASSERT_TRUE(client.on_readable());
  ASSERT_TRUE(on_port);
  EXPECT_TRUE(*on_port);
  EXPECT_FALSE(client.closed());
}

}  // namespace
}  // namespace capsa::testing
