// The validator on everything but handles (validator_handles_test.cc): each
// hostile input is sent through a real channel, refused with the exact
// verdict, and followed by a valid call that still passes with no fd leaked.
#include "capabilities/validator.h"

#include <random>

#include "capabilities/testdata/wire_test_util.h"

namespace capsa::testing {
namespace {

using ValidatorTest = WireTest;

TEST_F(ValidatorTest, ValidCallIsDeliveredWithItsTypedPayload) {
  auto m = deliver(envelope(call(0, "capsa.test.EchoRequest", 42), echo_request("hello", 5)));
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->kind(), MessageKind::kCall);
  EXPECT_EQ(m->call_id(), 42u);
  ASSERT_NE(m->method(), nullptr);
  EXPECT_EQ(m->method()->name, "Echo");
  EXPECT_EQ(m->payload_as<test::EchoRequest>()->text()->str(), "hello");
  EXPECT_EQ(m->payload_as<test::EchoRequest>()->value(), 5u);
  EXPECT_EQ(m->handle_count(), 0u);
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, RandomBytesAreNotAnEnvelope) {
  std::mt19937 rng(1234);
  for (std::size_t size : {1u, 7u, 8u, 64u, 1000u}) {
    std::vector<std::byte> junk(size);
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    expect_refused(deliver(junk), Errc::kBadMessage,
                   "not a capsa envelope (identifier or flatbuffer verification failed)");
  }
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, TruncatedEnvelopeIsRefused) {
  auto whole = envelope(call(0, "capsa.test.EchoRequest"), echo_request("truncate me"));
  for (std::size_t keep : {whole.size() - 1, whole.size() / 2, std::size_t{9}}) {
    std::vector<std::byte> cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep));
    expect_refused(deliver(cut), Errc::kBadMessage,
                   "not a capsa envelope (identifier or flatbuffer verification failed)");
  }
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, TruncatedPayloadIsRefused) {
  auto payload = echo_request("a payload cut in half");
  std::span<const std::uint8_t> half(payload.data(), payload.size() / 2);
  expect_refused(deliver(envelope(call(0, "capsa.test.EchoRequest"), half)), Errc::kBadMessage,
                 "capsa.test.Echo.Echo: payload does not verify as capsa.test.EchoRequest "
                 "(within depth 16 and 1024 tables)");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, PayloadOfAnotherMethodsTypeIsRefused) {
  // A PutRequest sent to Echo, honestly tagged: the tag does not match.
  auto put = put_request(std::nullopt, std::nullopt, {});
  expect_refused(deliver(envelope(call(0, "capsa.test.PutRequest"), put)), Errc::kBadMessage,
                 "capsa.test.Echo.Echo: payload type does not match capsa.test.EchoRequest");
  // A reply table sent as a request (same layout as EchoRequest, other type).
  expect_refused(deliver(envelope(call(0, "capsa.test.EchoReply"), echo_reply("x"))),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Echo: payload type does not match capsa.test.EchoRequest");
  // Tagged as EchoRequest but the bytes are a TreeRequest whose root field
  // is a table where EchoRequest has a string: verification catches it.
  flatbuffers::FlatBufferBuilder fbb;
  auto node = test::CreateNode(fbb, 0, 0, 3);
  fbb.Finish(test::CreateTreeRequest(fbb, node));
  expect_refused(deliver(envelope(call(0, "capsa.test.EchoRequest"), finished(fbb))),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Echo: payload does not verify as capsa.test.EchoRequest "
                 "(within depth 16 and 1024 tables)");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, UnknownMethodIsABadMessage) {
  for (std::uint32_t ordinal : {3u, 63u, 64u, 0xffffffffu}) {
    expect_refused(deliver(envelope(call(ordinal, "capsa.test.EchoRequest"), echo_request("x"))),
                   Errc::kBadMessage,
                   "capsa.test.Echo has no method with ordinal " + std::to_string(ordinal));
  }
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, MethodOutsideTheRightsIsDenied) {
  ValidateOptions only_echo;
  only_echo.rights = right_of(0);
  auto tree = [] {
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(test::CreateTreeRequest(fbb));
    return finished(fbb);
  }();
  expect_refused(deliver(envelope(call(2, "capsa.test.TreeRequest"), tree), {}, only_echo),
                 Errc::kDenied, "capsa.test.Echo.Tree is not in the rights of this capability");
  // Denied with a handle attached: the fd is closed too.
  std::vector<Fd> fds;
  fds.push_back(memfd_blob("b"));
  expect_refused(deliver(envelope(call(1, "capsa.test.PutRequest"), put_request({}, {}, {0}),
                                  {HandleKind::kBlob}),
                         std::move(fds), only_echo),
                 Errc::kDenied, "capsa.test.Echo.Put is not in the rights of this capability");
  auto ok = deliver(envelope(call(0, "capsa.test.EchoRequest"), echo_request("x")), {}, only_echo);
  EXPECT_TRUE(ok);
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, KindAndCallIdRules) {
  auto p = echo_request("x");
  Header h = call(0, "capsa.test.EchoRequest");
  h.kind = MessageKind::kReply;
  h.payload_type = hash("capsa.test.EchoReply");
  expect_refused(deliver(envelope(h, echo_reply("x"))), Errc::kBadMessage,
                 "a reply is not expected on this port");
  h = call(0, "capsa.test.EchoRequest", 0);
  expect_refused(deliver(envelope(h, p)), Errc::kBadMessage, "call id 0 is not valid for a call");
  h.kind = MessageKind::kEvent;
  h.call_id = 9;
  expect_refused(deliver(envelope(h, p)), Errc::kBadMessage, "call id 9 is not valid for a event");
  for (int raw : {0, 5, 200}) {
    h = call(0, "capsa.test.EchoRequest");
    h.kind = static_cast<MessageKind>(raw);
    expect_refused(deliver(envelope(h, p)), Errc::kBadMessage,
                   "unknown message kind " + std::to_string(raw));
  }
  expect_refused(deliver(envelope(call(0, "capsa.test.EchoRequest"), {})), Errc::kBadMessage,
                 "capsa.test.Echo.Echo: no payload");
  // An event is a valid one-way message on a server port.
  h = call(5, "capsa.test.NoteEvent", 0);
  h.kind = MessageKind::kEvent;
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreateNoteEvent(fbb, fbb.CreateString("note")));
  auto ev = deliver(envelope(h, finished(fbb)));
  ASSERT_TRUE(ev) << ev.error().to_string();
  EXPECT_EQ(ev->kind(), MessageKind::kEvent);
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, ErrorMessageRules) {
  ValidateOptions client;
  client.accept = kClientAccepts;
  Header h{MessageKind::kError, 3, 0, 0, Errc::kNotFound, "no such thing"};
  auto e = deliver(envelope(h, {}), {}, client);
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e->error_code(), Errc::kNotFound);
  EXPECT_EQ(e->error_text(), "no such thing");
  h.error_code = Errc::kClosed;  // local only, never on the wire
  expect_refused(deliver(envelope(h, {}), {}, client), Errc::kBadMessage,
                 "error code 64 is not a wire code");
  h.error_code = Errc::kFailed;
  expect_refused(deliver(envelope(h, echo_request("x")), {}, client), Errc::kBadMessage,
                 "an error message carries a payload or handles");
  std::vector<Fd> fds;
  fds.push_back(memfd_blob("b"));
  expect_refused(deliver(envelope(h, {}), std::move(fds), client), Errc::kBadMessage,
                 "an error message carries fds");
  // The encoder cuts texts at the limit; a hostile sender does not.
  std::string at_limit(kMaxErrorTextBytes, 'e');
  h.error_text = at_limit;
  EXPECT_TRUE(deliver(envelope(h, {}), {}, client));
  flatbuffers::FlatBufferBuilder fbb;
  auto text = fbb.CreateString(std::string(kMaxErrorTextBytes + 1, 'e'));
  wire::EnvelopeBuilder eb(fbb);
  eb.add_kind(wire::Kind::Error);
  eb.add_call_id(3);
  eb.add_error_code(6);
  eb.add_error_text(text);
  fbb.Finish(eb.Finish(), wire::EnvelopeIdentifier());
  auto raw = std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize()));
  expect_refused(deliver(raw, {}, client), Errc::kBadMessage,
                 "error text of 1025 bytes (limit 1024)");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, MisalignedPayloadIsRefused) {
  // Build envelopes by hand without the encoder's 8-byte alignment until the
  // payload lands on a 4 (mod 8) offset.
  auto payload = echo_request("misaligned");
  bool tried = false;
  for (std::size_t pad = 0; pad < 8 && !tried; ++pad) {
    flatbuffers::FlatBufferBuilder fbb;
    auto text = fbb.CreateString(std::string(pad, 'p'));
    auto pv = fbb.CreateVector(payload);
    wire::EnvelopeBuilder eb(fbb);
    eb.add_kind(wire::Kind::Call);
    eb.add_call_id(1);
    eb.add_payload_type(hash("capsa.test.EchoRequest"));
    eb.add_payload(pv);
    eb.add_error_text(text);
    fbb.Finish(eb.Finish(), wire::EnvelopeIdentifier());
    auto env = wire::GetEnvelope(fbb.GetBufferPointer());
    if ((env->payload()->data() - fbb.GetBufferPointer()) % 8 == 0) continue;
    tried = true;
    auto raw = std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize()));
    expect_refused(deliver(raw), Errc::kBadMessage,
                   "capsa.test.Echo.Echo: payload is not 8-byte aligned in the packet");
  }
  EXPECT_TRUE(tried);
  expect_still_works_and_no_leak();
}

// A chain of `depth` Nodes under a TreeRequest, or `count` sibling Nodes.
std::vector<std::uint8_t> tree(int depth, int siblings) {
  flatbuffers::FlatBufferBuilder fbb;
  flatbuffers::Offset<test::Node> n = 0;
  for (int i = 0; i < depth; ++i) n = test::CreateNode(fbb, n, 0, i);
  std::vector<flatbuffers::Offset<test::Node>> sib;
  for (int i = 0; i < siblings; ++i) sib.push_back(test::CreateNode(fbb, 0, 0, i));
  auto root = depth > 0 ? n : test::CreateNode(fbb, 0, fbb.CreateVector(sib), 0);
  fbb.Finish(test::CreateTreeRequest(fbb, root));
  return finished(fbb);
}

TEST_F(ValidatorTest, DepthLimitAtLimitAndOnePast) {
  ValidateOptions opt;
  opt.limits.max_depth = 6;
  // TreeRequest (depth 1) + 5 chained Nodes = depth 6: at the limit.
  EXPECT_TRUE(deliver(envelope(call(2, "capsa.test.TreeRequest"), tree(5, 0)), {}, opt));
  expect_refused(deliver(envelope(call(2, "capsa.test.TreeRequest"), tree(6, 0)), {}, opt),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Tree: payload does not verify as capsa.test.TreeRequest "
                 "(within depth 6 and 1024 tables)");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, TableCountLimitAtLimitAndOnePast) {
  ValidateOptions opt;
  opt.limits.max_tables = 10;
  // TreeRequest + root Node + 8 siblings = 10 tables: at the limit.
  EXPECT_TRUE(deliver(envelope(call(2, "capsa.test.TreeRequest"), tree(0, 8)), {}, opt));
  expect_refused(deliver(envelope(call(2, "capsa.test.TreeRequest"), tree(0, 9)), {}, opt),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Tree: payload does not verify as capsa.test.TreeRequest "
                 "(within depth 16 and 10 tables)");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, PacketSizeLimitAtLimitAndOnePast) {
  auto bytes = envelope(call(0, "capsa.test.EchoRequest"), echo_request(std::string(3000, 'z')));
  ValidateOptions opt;
  opt.limits.max_packet_bytes = bytes.size();
  EXPECT_TRUE(deliver(bytes, {}, opt));
  // The validator's own check (a packet that did not come through a port
  // with the same limit).
  opt.limits.max_packet_bytes = bytes.size() - 1;
  expect_refused(deliver(bytes, {}, opt), Errc::kBadMessage,
                 "packet of " + std::to_string(bytes.size()) + " bytes (limit " +
                     std::to_string(bytes.size() - 1) + ")");
  // Over the port's limit: refused at receive, with its fds closed.
  b_.set_max_packet_bytes(bytes.size() - 1);
  std::vector<Fd> fds;
  fds.push_back(memfd_blob("b"));
  auto r = deliver(bytes, std::move(fds));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kBadMessage);
  b_.set_max_packet_bytes(kDefaultMaxPacketBytes);
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorTest, DefaultPacketLimitIs64KiB) {
  EXPECT_EQ(Limits{}.max_packet_bytes, 64u * 1024u);
  auto big = envelope(call(0, "capsa.test.EchoRequest"), echo_request(std::string(70000, 'z')));
  auto r = deliver(big);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kBadMessage);
  EXPECT_EQ(r.error().message, "packet exceeds the port limit of 65536 bytes");
  expect_still_works_and_no_leak();
}

}  // namespace
}  // namespace capsa::testing
