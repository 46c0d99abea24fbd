// Call plumbing: Client and Server over a real channel. Single-threaded tests
// interleave submit / serve / complete by hand (deterministic, no timing);
// one test runs the server in a forked process.
#include <sys/wait.h>

#include "capabilities/client.h"
#include "capabilities/server.h"
#include "capabilities/testdata/wire_test_util.h"

namespace capsa::testing {
namespace {

std::vector<std::uint8_t> tree_like() {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreateTreeRequest(fbb));
  return finished(fbb);
}

Fd pipe_read_end() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Fd();
  ::close(p[1]);
  return Fd(p[0]);
}

class CallTest : public WireTest {
 protected:
  void SetUp() override {
    WireTest::SetUp();
    leaks_.reset();
  }
  // Handlers of the test interface.
  static void add_echo(Server& s) {
    ASSERT_TRUE(s.on("Echo", [](Message& req, Reply& reply) -> Result<void> {
      const auto* r = req.payload_as<test::EchoRequest>();
      auto& fbb = reply.builder();
      fbb.Finish(test::CreateEchoReply(fbb, fbb.CreateString(r->text()), r->value() + 1));
      return {};
    }));
  }
  // Result slot for an async completion.
  static Client::Completion into(std::optional<Result<Message>>& slot) {
    return [&slot](Result<Message> r) { slot.emplace(std::move(r)); };
  }
};

TEST_F(CallTest, CallAndReplyAcrossProcesses) {
  FdLeakCheck leaks;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    a_ = Port();
    Server server(std::move(b_), *iface_);
    add_echo(server);
    _exit(server.run() ? 0 : 1);
  }
  b_ = Port();
  {
    Client client(std::move(a_), *iface_);
    for (std::uint64_t i = 0; i < 100; ++i) {
      auto reply = client.call(0, echo_request("ping", i));
      ASSERT_TRUE(reply) << reply.error().to_string();
      EXPECT_EQ(reply->kind(), MessageKind::kReply);
      EXPECT_EQ(reply->call_id(), i + 1) << "call ids are 1, 2, 3, ...";
      EXPECT_EQ(reply->payload_as<test::EchoReply>()->text()->str(), "ping");
      EXPECT_EQ(reply->payload_as<test::EchoReply>()->value(), i + 1);
    }
  }  // closing the client's port ends the server's run()
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(leaks.leaked(), -2) << "both ends of the channel are closed, nothing else";
}

TEST_F(CallTest, ErrorsDeniedAndNotImplemented) {
  ServerOptions so;
  so.rights = right_of(0) | right_of(1);
  Server server(std::move(b_), *iface_, so);
  add_echo(server);
  ASSERT_TRUE(server.on("Put", [](Message&, Reply&) -> Result<void> {
    return make_error(Errc::kNotFound, "no such key");
  }));
  EXPECT_EQ(server.on("Nope", {}).error().code, Errc::kInvalidArgument);
  Client client(std::move(a_), *iface_);
  std::optional<Result<Message>> r1, r2, r3;
  ASSERT_TRUE(client.submit(1, put_request(std::nullopt, std::nullopt, {}), {}, into(r1)));
  ASSERT_TRUE(client.submit(2, tree_like(), {}, into(r2)));
  ASSERT_TRUE(client.submit(0, echo_request("after"), {}, into(r3)));
  EXPECT_EQ(client.in_flight(), 3u);
  EXPECT_TRUE(server.on_readable());
  auto denied = server.on_readable();
  EXPECT_EQ(denied.error().code, Errc::kDenied);
  EXPECT_TRUE(server.on_readable());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.on_readable());
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->error().code, Errc::kNotFound);
  EXPECT_EQ(r1->error().message, "no such key");
  EXPECT_EQ(r2->error().code, Errc::kDenied);
  EXPECT_EQ(r2->error().message, "capsa.test.Echo.Tree is not in the rights of this capability");
  ASSERT_TRUE(*r3);
  EXPECT_EQ((*r3)->payload_as<test::EchoReply>()->text()->str(), "after");
  EXPECT_EQ(client.in_flight(), 0u);
}

TEST_F(CallTest, MethodWithoutHandlerIsNotFound) {
  Server server(std::move(b_), *iface_);
  Client client(std::move(a_), *iface_);
  std::optional<Result<Message>> r;
  ASSERT_TRUE(client.submit(2, tree_like(), {}, into(r)));
  EXPECT_TRUE(server.on_readable());
  ASSERT_TRUE(client.on_readable());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error().code, Errc::kNotFound);
  EXPECT_EQ(r->error().message, "capsa.test.Echo.Tree is not implemented here");
}

TEST_F(CallTest, InFlightLimitAtLimitAndOnePast) {
  ClientOptions co;
  co.max_in_flight = 2;
  // Declared before the client: its destructor completes r1 and r2.
  std::optional<Result<Message>> r1, r2, r3;
  Client client(std::move(a_), *iface_, co);
  ASSERT_TRUE(client.submit(0, echo_request("1"), {}, into(r1)));
  ASSERT_TRUE(client.submit(0, echo_request("2"), {}, into(r2)));
  std::vector<Handle> h;
  h.push_back(Handle{HandleKind::kBlob, memfd_blob("x")});
  auto over = client.submit(1, put_request(std::nullopt, std::nullopt, {0}), std::move(h), into(r3));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::kOverloaded);
  EXPECT_EQ(over.error().message, "2 calls already in flight on this port (limit 2)");
  EXPECT_FALSE(r3) << "a refused submit never completes";
  // Nothing was sent for the third call.
  ASSERT_TRUE(b_.set_nonblocking(true));
  EXPECT_TRUE(b_.receive());
  EXPECT_TRUE(b_.receive());
  EXPECT_EQ(b_.receive().error().code, Errc::kWouldBlock);
}

TEST_F(CallTest, PeerClosingFailsOutstandingCalls) {
  FdLeakCheck leaks;
  {
    Client client(std::move(a_), *iface_);
    std::optional<Result<Message>> r1, r2;
    ASSERT_TRUE(client.submit(0, echo_request("1"), {}, into(r1)));
    ASSERT_TRUE(client.submit(0, echo_request("2"), {}, into(r2)));
    b_ = Port();  // the server goes away with both calls unanswered
    auto r = client.on_readable();
    EXPECT_EQ(r.error().code, Errc::kClosed);
    ASSERT_TRUE(r1 && r2);
    EXPECT_EQ(r1->error().code, Errc::kClosed);
    EXPECT_EQ(r1->error().message, "the peer closed the port with the call outstanding");
    EXPECT_EQ(r2->error().code, Errc::kClosed);
    EXPECT_TRUE(client.closed());
    EXPECT_EQ(client.call(0, echo_request("3")).error().code, Errc::kClosed);
  }
  EXPECT_EQ(leaks.leaked(), -2);
}

TEST_F(CallTest, OutstandingCallFailsWithRevokedWhenTheLayerAboveSaysSo) {
  Client client(std::move(a_), *iface_);
  client.set_peer_closed_error(Errc::kRevoked, "grant 7 was revoked");
  std::optional<Result<Message>> r;
  ASSERT_TRUE(client.submit(0, echo_request("x"), {}, into(r)));
  b_ = Port();  // the peer goes away with the call outstanding
  auto got = client.on_readable();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kClosed);
  ASSERT_TRUE(r.has_value());
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code, Errc::kRevoked);
  EXPECT_EQ(r->error().message, "grant 7 was revoked");
}

TEST_F(CallTest, APeerThatDoesNotReadItsRepliesIsCutOff) {
  {
    Client client(std::move(a_), *iface_, ClientOptions{4096, {}});
    Server server(std::move(b_), *iface_);
    add_echo(server);
    ASSERT_TRUE(server.port().set_nonblocking(true));
    std::vector<std::optional<Result<Message>>> slots(4096);
    Result<void> served;
    std::size_t sent = 0;
    // The client keeps calling and never reads a reply; the kernel bounds
    // the unread replies, and the server must neither block nor drop a
    // reply silently.
    while (sent < slots.size()) {
      ASSERT_TRUE(client.submit(0, echo_request("flood"), {}, into(slots[sent])));
      ++sent;
      served = server.on_readable();
      if (!served) break;
    }
    ASSERT_FALSE(served) << "4096 unread replies were all accepted";
    EXPECT_EQ(served.error().code, Errc::kOverloaded) << served.error().to_string();
    EXPECT_TRUE(server.closed());
    // Every call completes: the replies that were sent, then kClosed.
    while (client.on_readable()) {
    }
    for (std::size_t i = 0; i < sent; ++i) ASSERT_TRUE(slots[i].has_value()) << i;
    EXPECT_FALSE(*slots[sent - 1]);
    EXPECT_EQ(slots[sent - 1]->error().code, Errc::kClosed);
  }
  EXPECT_EQ(leaks_->leaked(), -2);
}

TEST_F(CallTest, UnknownAndDuplicateReplyIdsAreBadMessages) {
  for (std::uint64_t bad_id : {77u, 1u}) {
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    Client client(std::move(ch->first), *iface_);
    std::optional<Result<Message>> r1, r2;
    ASSERT_TRUE(client.submit(0, echo_request("1"), {}, into(r1)));
    ASSERT_TRUE(client.submit(0, echo_request("2"), {}, into(r2)));
    Header h{MessageKind::kReply, 1, 0, hash("capsa.test.EchoReply"), Errc::kFailed, {}};
    ASSERT_TRUE(ch->second.send(envelope(h, echo_reply("first"))));
    ASSERT_TRUE(client.on_readable());
    ASSERT_TRUE(r1 && *r1);
    h.call_id = bad_id;  // 77: never sent; 1: already answered
    ASSERT_TRUE(ch->second.send(envelope(h, echo_reply("again"))));
    auto r = client.on_readable();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kBadMessage);
    EXPECT_EQ(r.error().message,
              "answer to call " + std::to_string(bad_id) + ", which is not outstanding");
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->error().code, Errc::kBadMessage);
    EXPECT_TRUE(client.closed()) << "a client port that carried a bad message is closed";
  }
}

TEST_F(CallTest, ReplyNamingAnotherMethodIsABadMessage) {
  Client client(std::move(a_), *iface_);
  std::optional<Result<Message>> r1;
  ASSERT_TRUE(client.submit(0, echo_request("1"), {}, into(r1)));
  Header h{MessageKind::kReply, 1, 2, hash("capsa.test.TreeReply"), Errc::kFailed, {}};
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreateTreeReply(fbb, 1));
  ASSERT_TRUE(b_.send(envelope(h, finished(fbb))));
  auto r = client.on_readable();
  EXPECT_EQ(r.error().message, "answer to call 1 names another method");
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->error().code, Errc::kBadMessage);
}

TEST_F(CallTest, BadMessageActionReplyErrorKeepsServing) {
  FdLeakCheck leaks;
  std::vector<std::string> reported;
  ServerOptions so;
  so.on_bad_message = BadMessageAction::kReplyError;
  so.report = [&](const Error& e, const EnvelopeInfo&) { reported.push_back(e.message); };
  Server server(std::move(b_), *iface_, so);
  add_echo(server);
  // A call whose handle is a pipe: refused, answered to its own call id.
  Client client(std::move(a_), *iface_);
  std::optional<Result<Message>> r1;
  std::vector<Handle> h;
  h.push_back(Handle{HandleKind::kPort, pipe_read_end()});
  ASSERT_TRUE(client.submit(1, put_request(0, std::nullopt, {}), std::move(h), into(r1)));
  EXPECT_EQ(server.on_readable().error().code, Errc::kBadMessage);
  ASSERT_TRUE(client.on_readable());
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->error().code, Errc::kBadMessage);
  EXPECT_EQ(r1->error().message,
            "capsa.test.Echo.Put: handle 0: declared port but the fd is a pipe");
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_FALSE(server.closed());
  // Bytes that are no envelope: answered with call id 0 (no call can be
  // named). Read raw here: a Client treats such an error as fatal.
  raw_send(client.port().fd(), std::as_bytes(std::span("garbage", 7)), {});
  EXPECT_EQ(server.on_readable().error().code, Errc::kBadMessage);
  auto pk = client.port().receive();
  ASSERT_TRUE(pk);
  ValidateOptions vo;
  vo.accept = kClientAccepts;
  auto err = validate(std::move(*pk), *iface_, vo);
  ASSERT_TRUE(err) << err.error().to_string();
  EXPECT_EQ(err->kind(), MessageKind::kError);
  EXPECT_EQ(err->call_id(), 0u);
  EXPECT_EQ(err->error_code(), Errc::kBadMessage);
  EXPECT_EQ(err->error_text(), "not a capsa envelope (identifier or flatbuffer verification failed)");
  EXPECT_EQ(reported.size(), 2u);
  // Still serving.
  std::optional<Result<Message>> r3;
  ASSERT_TRUE(client.submit(0, echo_request("still"), {}, into(r3)));
  EXPECT_TRUE(server.on_readable());
  ASSERT_TRUE(client.on_readable());
  ASSERT_TRUE(r3 && *r3);
  EXPECT_EQ((*r3)->payload_as<test::EchoReply>()->text()->str(), "still");
  EXPECT_EQ(leaks.leaked(), 0) << describe_open_fds();
}

TEST_F(CallTest, BadMessageActionClosePortIsTheDefault) {
  FdLeakCheck leaks;
  int reports = 0;
  ServerOptions so;
  so.report = [&](const Error&, const EnvelopeInfo&) { ++reports; };
  Server server(std::move(b_), *iface_, so);
  add_echo(server);
  Client client(std::move(a_), *iface_);
  std::optional<Result<Message>> r1;
  ASSERT_TRUE(client.submit(0, echo_request("pending"), {}, into(r1)));
  std::vector<Fd> fds;
  fds.push_back(memfd_blob("surplus"));
  raw_send(client.port().fd(), envelope(call(0, "capsa.test.EchoRequest", 9), echo_request("x")),
           {fds[0].get()});
  fds.clear();
  // The first call is served, the bad one closes the port.
  EXPECT_TRUE(server.on_readable());
  auto bad = server.on_readable();
  EXPECT_EQ(bad.error().message, "capsa.test.Echo.Echo: 1 fds attached but 0 handles declared");
  EXPECT_TRUE(server.closed());
  EXPECT_EQ(reports, 1);
  ASSERT_TRUE(client.on_readable());
  ASSERT_TRUE(r1 && *r1);
  // The server's end is gone: the next call fails at once.
  std::optional<Result<Message>> r2;
  auto after = client.submit(0, echo_request("after"), {}, into(r2));
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, Errc::kClosed);
  EXPECT_EQ(leaks.leaked(), -1) << "only the server's end was closed"  << describe_open_fds();
}

TEST_F(CallTest, HandlesTravelInCallsAndRepliesAndEventsGetNoReply) {
  FdLeakCheck leaks;
  {
    Server server(std::move(b_), *iface_);
    int notes = 0;
    ASSERT_TRUE(server.on("Note", [&](Message&, Reply&) -> Result<void> {
      ++notes;
      return {};
    }));
    ASSERT_TRUE(server.on("Put", [](Message& req, Reply& reply) -> Result<void> {
      const auto* r = req.payload_as<test::PutRequest>();
      Fd port = req.take_handle(r->port().value());
      auto back = reply.add_handle(Handle{HandleKind::kPort, std::move(port)});
      auto& fbb = reply.builder();
      test::PutReplyBuilder b(fbb);
      b.add_received(static_cast<std::uint32_t>(req.handle_count()));
      b.add_back(back);
      fbb.Finish(b.Finish());
      return {};
    }));
    Client client(std::move(a_), *iface_);
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(test::CreateNoteEvent(fbb, fbb.CreateString("hi")));
    ASSERT_TRUE(client.send_event(5, finished(fbb)));
    EXPECT_TRUE(server.on_readable());
    EXPECT_EQ(notes, 1);
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    std::vector<Handle> h;
    h.push_back(Handle{HandleKind::kPort, ch->first.release_fd()});
    h.push_back(Handle{HandleKind::kFile, readonly_file()});
    std::optional<Result<Message>> r;
    ASSERT_TRUE(client.submit(1, put_request(0, 1, {}), std::move(h), into(r)));
    EXPECT_TRUE(server.on_readable());
    ASSERT_TRUE(client.on_readable());
    ASSERT_TRUE(r && *r) << r->error().to_string();
    const auto* rep = (*r)->payload_as<test::PutReply>();
    EXPECT_EQ(rep->received(), 2u);
    Port returned((*r)->take_handle(rep->back().value()));
    ASSERT_TRUE(returned.send(std::as_bytes(std::span("x", 1))));
    EXPECT_TRUE(ch->second.receive()) << "the port came back and still works";
  }
  EXPECT_EQ(leaks.leaked(), -2) << describe_open_fds();
}

}  // namespace
}  // namespace capsa::testing
