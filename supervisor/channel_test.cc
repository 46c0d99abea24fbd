// Channels between workers through attach()ed workers (in-process peers,
// real ports, the real reactor on its thread): mediated channels relay and
// check every message and re-mint every port; direct channels are cut by
// shutting their socket down; channels made at run time.
// The same with sandboxed workers: tests/integration/delegation_test.cc.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <future>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/validator.h"
#include "demo_word_count_generated.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/support/fd_count.h"
#include "workers/sdk/context.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

class ChannelTest : public SupervisorFixture {
 protected:
  // a (client) and b (server) on channel "pipe" of capsa.test.Echo; each
  // has "echo" (not transferable) and "mobile" (transferable).
  void make_pair(policy::ChannelMode mode = policy::ChannelMode::kMediated,
                 BadMessageAction a_action = BadMessageAction::kReplyError) {
    make([&](policy::PolicyBuilder& b) {
      for (const char* n : {"a", "b"}) {
        auto& w = echo_worker(b, n);
        w.grant("mobile", "capsa.test.Echo").all_rights().transferable(true);
        w.on_bad_message(n == std::string("a") ? a_action : BadMessageAction::kClosePort);
        w.new_channel("capsa.test.Echo");
        w.new_channel("demo.WordCount");
      }
      b.channel("pipe").interface("capsa.test.Echo").client("a").server("b").mode(mode);
    });
  }
  const Interface& echo_iface() { return *sup_->registry().find("capsa.test.Echo"); }

  // make_pair(), then a and b attached, the loop running, and each holding
  // its end of "pipe" (ca_, cb_).
  void open_pair(policy::ChannelMode mode = policy::ChannelMode::kMediated,
                 BadMessageAction a_action = BadMessageAction::kReplyError) {
    make_pair(mode, a_action);
    for (auto [slot, name] : {std::pair{&a_, "a"}, std::pair{&b_, "b"}}) {
      auto port = sup_->attach(name);
      ASSERT_TRUE(port) << port.error().to_string();
      slot->emplace(std::move(*port), sup_->registry());
    }
    loop_ = std::make_unique<LoopThread>(*sup_);
    auto ca = a_->get("pipe");
    auto cb = b_->get("pipe");
    ASSERT_TRUE(ca && cb);
    ca_ = std::move(*ca);
    cb_ = std::move(*cb);
  }

  // The next message on a server end, validated as a server would.
  Result<Message> next_message(Port& server) {
    auto ready = server.wait_readable(5000);
    if (!ready || !*ready) return make_error(Errc::kFailed, "nothing arrived in 5 s");
    CAPSA_ASSIGN_OR_RETURN(Packet p, server.receive());
    return validate(std::move(p), echo_iface(), ValidateOptions{});
  }
  // Answers Echo `call` with its own text and value + 1.
  Result<void> answer_echo(Port& server, Message& call) {
    const auto* req = call.payload_as<capsa::test::EchoRequest>();
    auto& fbb = enc_.payload_builder();
    fbb.Finish(capsa::test::CreateEchoReply(fbb, fbb.CreateString(req->text()->str()),
                                            req->value() + 1));
    Header h{MessageKind::kReply, call.call_id(), 0, call.method()->reply.type_hash,
             Errc::kFailed, {}};
    return send_message(server, enc_, h, enc_.payload_bytes(), {});
  }
  // Answers Put `call`, handing `back` (if valid) back to the caller.
  Result<void> answer_put(Port& server, Message& call, Fd back = Fd()) {
    auto& fbb = enc_.payload_builder();
    const bool with = back.valid();
    fbb.Finish(capsa::test::CreatePutReply(
        fbb, 1, with ? flatbuffers::Optional<std::uint32_t>(0) : flatbuffers::nullopt));
    std::vector<Handle> h;
    if (with) h.push_back(Handle{HandleKind::kPort, std::move(back)});
    Header hd{MessageKind::kReply, call.call_id(), 1, call.method()->reply.type_hash,
              Errc::kFailed, {}};
    return send_message(server, enc_, hd, enc_.payload_bytes(), std::move(h));
  }
  // A Put call carrying `port` on `c` (blocks for the answer).
  static Result<Message> put(Client& c, Fd port) {
    auto& fbb = c.payload_builder();
    fbb.Finish(capsa::test::CreatePutRequest(fbb, 0));
    std::vector<Handle> h;
    h.push_back(Handle{HandleKind::kPort, std::move(port)});
    return c.call(1, c.payload_bytes(), std::move(h));
  }
  static Fd dup_of(const Port& p) { return Fd(::fcntl(p.fd().get(), F_DUPFD_CLOEXEC, 0)); }

  std::vector<GrantView> grants(LoopThread& loop) {
    return loop.on_loop([&] { return sup_->grants(); });
  }
  static const GrantView* find(const std::vector<GrantView>& gs, const std::string& worker,
                               const std::string& name, GrantOrigin origin) {
    for (const auto& g : gs) {
      if (g.worker == worker && g.name == name && g.origin == origin) return &g;
    }
    return nullptr;
  }

  void expect_bad_answer(const std::function<void(Message&)>& forge, const std::string& reason);

  Encoder enc_;
  std::optional<RawBootstrap> a_, b_;
  std::unique_ptr<LoopThread> loop_;  // before the supervisor goes (declared after it)
  Got ca_, cb_;
};

TEST_F(ChannelTest, AMediatedChannelRelaysCallsMadeBeforeTheServerTookItsEnd) {
  make_pair();
  RawBootstrap a = attach("a");
  RawBootstrap b = attach("b");
  LoopThread loop(*sup_);
  auto ca = a.get("pipe");
  ASSERT_TRUE(ca) << ca.error().to_string();
  Client client(std::move(ca->port), echo_iface());
  // The call waits in the supervisor until b takes its end.
  auto answer = std::async(std::launch::async, [&] { return echo(client, "hello", 41); });
  auto cb = b.get("pipe");
  ASSERT_TRUE(cb);
  auto call = next_message(cb->port);
  ASSERT_TRUE(call) << call.error().to_string();
  EXPECT_EQ(call->kind(), MessageKind::kCall);
  ASSERT_TRUE(answer_echo(cb->port, *call));
  auto got = answer.get();
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(*got, "hello");
  EXPECT_EQ(b.get("pipe").error().code, Errc::kDenied);  // one end per worker
  auto gs = grants(loop);
  const GrantView* ga = find(gs, "a", "pipe", GrantOrigin::kPolicy);
  const GrantView* gb = find(gs, "b", "pipe", GrantOrigin::kPolicy);
  ASSERT_TRUE(ga != nullptr && gb != nullptr);
  EXPECT_EQ(ga->kind, GrantKind::kServed);
  EXPECT_EQ(gb->kind, GrantKind::kServerEnd);
  EXPECT_NE(ga->channel, 0u);
  EXPECT_EQ(ga->channel, gb->channel);
  EXPECT_EQ(ga->calls, 1u);
}

// The client gives up before the server took its end: the server still
// gets its end, and reads end-of-stream on it (as on a socketpair whose
// peer closed), not a refusal.
TEST_F(ChannelTest, AServerJoiningAfterItsClientLeftReadsEndOfStream) {
  make_pair();
  RawBootstrap a = attach("a");
  RawBootstrap b = attach("b");
  LoopThread loop(*sup_);
  {
    auto ca = a.get("pipe");
    ASSERT_TRUE(ca);
  }  // a closes its end
  for (int i = 0; i < 200 && loop.on_loop([&] { return sup_->live_grants(); }) != 2u; ++i) {
    usleep(5000);
  }
  auto cb = b.get("pipe");
  ASSERT_TRUE(cb) << cb.error().to_string();
  ASSERT_TRUE(cb->port.wait_readable(5000).value_or(false));
  EXPECT_TRUE(cb->port.peer_closed());
  EXPECT_EQ(loop.on_loop([&] { return sup_->live_grants(); }), 2u);  // the two bootstraps
}

TEST_F(ChannelTest, ACallOutsideTheInterfaceNeverReachesTheServer) {
  ASSERT_NO_FATAL_FAILURE(open_pair());
  // A raw packet that is no envelope: a's reply_error answers it, b sees nothing.
  const char junk[] = "not an envelope";
  ASSERT_TRUE(ca_.port.send(std::as_bytes(std::span(junk))));
  ASSERT_TRUE(ca_.port.wait_readable(5000).value_or(false));
  auto refused = ca_.port.receive();
  ASSERT_TRUE(refused);
  EXPECT_FALSE(cb_.port.wait_readable(200).value_or(true));
  loop_->stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"bad_message\"", "\"worker\":\"a\""}), 1u);
}

TEST_F(ChannelTest, APortSentOverTheChannelIsReMintedForItsNewHolder) {
  ASSERT_NO_FATAL_FAILURE(open_pair());
  auto mobile = a_->get("mobile");
  ASSERT_TRUE(mobile);
  const std::uint64_t original_inode = socket_inode(mobile->port.fd());
  Client client(std::move(ca_.port), echo_iface());
  auto answer = std::async(std::launch::async, [&] { return put(client, dup_of(mobile->port)); });
  auto call = next_message(cb_.port);
  ASSERT_TRUE(call) << call.error().to_string();
  const auto* req = call->payload_as<capsa::test::PutRequest>();
  ASSERT_TRUE(req->port().has_value());
  Port received(call->take_handle(*req->port()));
  ASSERT_TRUE(answer_put(cb_.port, *call));
  ASSERT_TRUE(answer.get());
  // A new socket, not a's: the supervisor serves it, for b.
  EXPECT_NE(socket_inode(received.fd()), original_inode);
  Client as_b(std::move(received), echo_iface());
  auto r = echo(as_b, "from b", 1);
  ASSERT_TRUE(r) << r.error().to_string();
  auto gs = grants(*loop_);
  const GrantView* parent = find(gs, "a", "mobile", GrantOrigin::kPolicy);
  const GrantView* child = find(gs, "b", "mobile", GrantOrigin::kDelegated);
  ASSERT_TRUE(parent != nullptr && child != nullptr);
  EXPECT_EQ(child->parent, parent->id);
  EXPECT_NE(child->via, 0u);
  EXPECT_EQ(child->calls, 1u);   // counted under its real holder
  EXPECT_EQ(parent->calls, 0u);
  // Revoking the parent revokes what was delegated from it.
  const GrantId pid = parent->id;
  auto revoked = loop_->on_loop([&] { return sup_->revoke(pid, "test"); });
  ASSERT_TRUE(revoked);
  EXPECT_EQ(revoked->size(), 2u);
  EXPECT_FALSE(echo(as_b, "after", 1));
  loop_->stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"port_delegated\"", "\"from\":\"a\"", "\"to\":\"b\""}),
            1u);
}

TEST_F(ChannelTest, ANonTransferablePortIsRefusedUnderTheSendersAction) {
  make_pair();  // a: reply_error
  RawBootstrap a = attach("a");
  RawBootstrap b = attach("b");
  LoopThread loop(*sup_);
  auto fixed = a.get("echo");  // transferable: false
  auto ca = a.get("pipe");
  auto cb = b.get("pipe");
  ASSERT_TRUE(fixed && ca && cb);
  Client client(std::move(ca->port), echo_iface());
  auto r = put(client, dup_of(fixed->port));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDenied);
  EXPECT_NE(r.error().message.find("not transferable"), std::string::npos) << r.error().message;
  EXPECT_FALSE(cb->port.wait_readable(200).value_or(true));  // b saw nothing
  // The channel keeps working for both.
  auto answer = std::async(std::launch::async, [&] { return echo(client, "still", 1); });
  auto call = next_message(cb->port);
  ASSERT_TRUE(call);
  ASSERT_TRUE(answer_echo(cb->port, *call));
  EXPECT_TRUE(answer.get());
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"transfer_denied\"", "\"worker\":\"a\"",
                                       "not transferable", "\"action\":\"reply_error\""}),
            1u);
}

TEST_F(ChannelTest, AWorkerMadeSocketpairIsRefusedAndUnderKillTheSenderDies) {
  make_pair(policy::ChannelMode::kMediated, BadMessageAction::kKill);
  RawBootstrap a = attach("a");
  RawBootstrap b = attach("b");
  LoopThread loop(*sup_);
  auto ca = a.get("pipe");
  auto cb = b.get("pipe");
  auto b_echo = b.get("echo");
  ASSERT_TRUE(ca && cb && b_echo);
  auto own = make_channel();
  ASSERT_TRUE(own);
  Client client(std::move(ca->port), echo_iface());
  auto r = put(client, own->first.release_fd());
  ASSERT_FALSE(r);  // the port closed under it: a is dead
  // b never got the call: the first thing on its end is end-of-stream (the
  // channel closed with its only client).
  ASSERT_TRUE(cb->port.wait_readable(5000).value_or(false));
  auto first = cb->port.receive();
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().code, Errc::kClosed);
  auto w = loop.on_loop([&] { return sup_->workers(); });
  EXPECT_FALSE(w[0].running);
  // b, its neighbour, is served as before.
  Client eb(std::move(b_echo->port), echo_iface());
  EXPECT_TRUE(echo(eb, "fine", 1));
  loop.stop();
  const auto lines = audit();
  EXPECT_EQ(count_lines_with(lines, {"\"transfer_denied\"", "did not issue", "\"action\":\"kill_worker\""}),
            1u);
  EXPECT_EQ(count_lines_with(lines, {"\"worker_killed\"", "\"worker\":\"a\""}), 1u);
}

TEST_F(ChannelTest, TheBootstrapPortCannotTravel) {
  ASSERT_NO_FATAL_FAILURE(open_pair());
  Client client(std::move(ca_.port), echo_iface());
  auto r = put(client, Fd(::fcntl(a_->client().port().fd().get(), F_DUPFD_CLOEXEC, 0)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDenied);
  EXPECT_FALSE(cb_.port.wait_readable(200).value_or(true));
}

TEST_F(ChannelTest, APortPassedBackIsStillADelegatedChildAndRevokingTheChannelCutsIt) {
  ASSERT_NO_FATAL_FAILURE(open_pair());
  auto mobile = a_->get("mobile");
  ASSERT_TRUE(mobile);
  Client client(std::move(ca_.port), echo_iface());
  auto answer = std::async(std::launch::async, [&] { return put(client, dup_of(mobile->port)); });
  auto call = next_message(cb_.port);
  ASSERT_TRUE(call);
  const auto* req = call->payload_as<capsa::test::PutRequest>();
  Fd at_b = call->take_handle(*req->port());
  // b hands it straight back in its answer.
  ASSERT_TRUE(answer_put(cb_.port, *call, std::move(at_b)));
  auto reply = answer.get();
  ASSERT_TRUE(reply) << reply.error().to_string();
  const auto* pr = reply->payload_as<capsa::test::PutReply>();
  ASSERT_TRUE(pr->back().has_value());
  Port back(reply->take_handle(*pr->back()));
  EXPECT_NE(socket_inode(back.fd()), socket_inode(mobile->port.fd()));  // not unwrapped
  auto gs = grants(*loop_);
  const GrantView* root = find(gs, "a", "pipe", GrantOrigin::kPolicy);
  const GrantView* returned = find(gs, "a", "mobile", GrantOrigin::kDelegated);
  const GrantView* own = find(gs, "a", "mobile", GrantOrigin::kPolicy);
  ASSERT_TRUE(root != nullptr && returned != nullptr && own != nullptr);
  // Still a child of a's own grant (through b's copy, now released).
  EXPECT_EQ(returned->parent, own->id);
  const GrantId root_id = root->id;
  auto revoked = loop_->on_loop([&] { return sup_->revoke(root_id, "cut the channel"); });
  ASSERT_TRUE(revoked) << revoked.error().to_string();
  // Both ends and a's passed-back copy (b's copy was released when b sent
  // its only fd of it back): 3 grants.
  EXPECT_EQ(revoked->size(), 3u);
  EXPECT_NE(std::find(revoked->begin(), revoked->end(), returned->id), revoked->end());
  Client cback(std::move(back), echo_iface());
  EXPECT_FALSE(echo(cback, "x", 1));
  // a's own grant did not travel through the channel: it stays.
  Client cmobile(std::move(mobile->port), echo_iface());
  EXPECT_TRUE(echo(cmobile, "mine", 1));
  EXPECT_TRUE(cb_.port.wait_readable(5000).value_or(false));
  EXPECT_TRUE(cb_.port.peer_closed());
}

TEST_F(ChannelTest, RevokingADirectEndShutsTheSocketDownForEveryHolder) {
  ASSERT_NO_FATAL_FAILURE(open_pair(policy::ChannelMode::kDirect));
  // The supervisor is not between: bytes pass as they are.
  const char hi[] = "hi";
  ASSERT_TRUE(ca_.port.send(std::as_bytes(std::span(hi))));
  // A copy of a's end, as if a had passed it on.
  Port copy(dup_of(ca_.port));
  auto gs = grants(*loop_);
  const GrantView* end = find(gs, "a", "pipe", GrantOrigin::kPolicy);
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end->kind, GrantKind::kDirectEnd);
  const GrantId id = end->id;
  auto r = loop_->on_loop([&] { return sup_->revoke(id, "cut"); });
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->size(), 2u);  // both ends of the one socketpair
  // b reads what was queued, then end-of-stream.
  auto pkt = cb_.port.receive();
  ASSERT_TRUE(pkt);
  EXPECT_EQ(pkt->bytes.size(), sizeof hi);
  EXPECT_TRUE(cb_.port.peer_closed());
  // Sends fail on every copy.
  EXPECT_EQ(::send(copy.fd().get(), "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_EQ(::send(cb_.port.fd().get(), "x", 1, MSG_NOSIGNAL), -1);
  EXPECT_EQ(errno, EPIPE);
}

TEST_F(ChannelTest, NewChannelGivesBothEndsWhenThePolicyAllowsTheInterface) {
  make_pair();
  RawBootstrap a = attach("a");
  LoopThread loop(*sup_);
  auto ends = a.new_channel("capsa.test.Echo");
  ASSERT_TRUE(ends) << ends.error().to_string();
  Client client(std::move(ends->first), echo_iface());
  Port server = std::move(ends->second);
  auto answer = std::async(std::launch::async, [&] { return echo(client, "loop", 1); });
  auto call = next_message(server);
  ASSERT_TRUE(call);
  ASSERT_TRUE(answer_echo(server, *call));
  EXPECT_TRUE(answer.get());
  auto denied = a.new_channel("capsa.Bootstrap");
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, Errc::kDenied);
  loop.stop();
  const auto lines = audit();
  EXPECT_EQ(count_lines_with(lines, {"\"channel_created\"", "\"worker\":\"a\""}), 1u);
  EXPECT_EQ(count_lines_with(lines, {"\"call_denied\"", "NewChannel"}), 1u);
}

// The worker SDK's side of NewChannel: a capability on one end, a port to
// serve on the other, and the policy's refusal as the SDK reports it.
TEST_F(ChannelTest, TheWorkerSdkMakesAChannelAndServesIt) {
  make_pair();
  auto port = sup_->attach("a");
  ASSERT_TRUE(port);
  auto ctx = worker::Context::from_port(std::move(*port));
  ASSERT_TRUE(ctx) << ctx.error().to_string();
  LoopThread loop(*sup_);
  auto ends = ctx->new_channel("demo.WordCount");
  ASSERT_TRUE(ends) << ends.error().to_string();
  EXPECT_EQ(ends->client.interface_name(), "demo.WordCount");
  auto server = ctx->serve(std::move(ends->server), "demo.WordCount");
  ASSERT_TRUE(server) << server.error().to_string();
  ASSERT_TRUE((*server)->on("Count", [](Message& req, Reply& out) -> Result<void> {
    const auto* r = req.payload_as<demo::CountRequest>();
    out.builder().Finish(demo::CreateCountReply(out.builder(), 0, 0, r->text()->size()));
    return {};
  }));
  auto answer = std::async(std::launch::async, [&] {
    auto& fbb = ends->client.payload_builder();
    fbb.Finish(demo::CreateCountRequest(fbb, fbb.CreateString("twelve bytes")));
    return ends->client.call("Count", ends->client.payload_bytes());
  });
  ASSERT_TRUE((*server)->port().wait_readable(5000).value_or(false));
  ASSERT_TRUE((*server)->on_readable());
  auto r = answer.get();
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->payload_as<demo::CountReply>()->bytes(), 12u);
  auto refused = ctx->new_channel("fs.File");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::kDenied);
}

TEST_F(ChannelTest, EventsAreRelayedOneWay) {
  ASSERT_NO_FATAL_FAILURE(open_pair());
  Client client(std::move(ca_.port), echo_iface());
  auto& fbb = client.payload_builder();
  fbb.Finish(capsa::test::CreateNoteEvent(fbb, fbb.CreateString("note")));
  ASSERT_TRUE(client.send_event(5, client.payload_bytes()));
  auto ev = next_message(cb_.port);
  ASSERT_TRUE(ev) << ev.error().to_string();
  EXPECT_EQ(ev->kind(), MessageKind::kEvent);
  EXPECT_EQ(ev->payload_as<capsa::test::NoteEvent>()->text()->str(), "note");
}

// A hostile server answers a's pending Echo call with `forge(call)`; it
// must be b's bad message (close_port: b's end closes), audited with
// `reason`, and a's call fails: the channel, left without a server, closes.
void ChannelTest::expect_bad_answer(const std::function<void(Message&)>& forge,
                                    const std::string& reason) {
  ASSERT_NO_FATAL_FAILURE(open_pair());  // b: close_port
  Client client(std::move(ca_.port), echo_iface());
  auto answer = std::async(std::launch::async, [&] { return echo(client, "q", 1); });
  auto call = next_message(cb_.port);
  ASSERT_TRUE(call);
  forge(*call);
  EXPECT_FALSE(answer.get());
  EXPECT_TRUE(cb_.port.wait_readable(5000).value_or(false));
  EXPECT_TRUE(cb_.port.peer_closed());
  loop_->stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"bad_message\"", "\"worker\":\"b\"", reason}), 1u);
}

TEST_F(ChannelTest, AnAnswerToNoCallIsTheServersBadMessage) {
  expect_bad_answer(
      [&](Message& call) {
        auto& fbb = enc_.payload_builder();
        fbb.Finish(capsa::test::CreateEchoReply(fbb, fbb.CreateString("forged")));
        Header h{MessageKind::kReply, call.call_id() + 1000, 0, call.method()->reply.type_hash,
                 Errc::kFailed, {}};
        ASSERT_TRUE(send_message(cb_.port, enc_, h, enc_.payload_bytes(), {}));
      },
      "no call sent");
}

TEST_F(ChannelTest, AnAnswerOfAnotherMethodIsTheServersBadMessage) {
  const Method* tree = nullptr;
  expect_bad_answer(
      [&](Message& call) {
        tree = echo_iface().method("Tree");
        ASSERT_NE(tree, nullptr);
        auto& fbb = enc_.payload_builder();
        fbb.Finish(capsa::test::CreateTreeReply(fbb, 1));
        Header h{MessageKind::kReply, call.call_id(), tree->ordinal, tree->reply.type_hash,
                 Errc::kFailed, {}};
        ASSERT_TRUE(send_message(cb_.port, enc_, h, enc_.payload_bytes(), {}));
      },
      "another method");
}

TEST_F(ChannelTest, AnAnswerThatIsNoEnvelopeIsTheServersBadMessage) {
  expect_bad_answer(
      [&](Message&) {
        const char junk[] = "not an envelope";
        ASSERT_TRUE(cb_.port.send(std::as_bytes(std::span(junk))));
      },
      "not a capsa envelope");
}

TEST_F(ChannelTest, NothingLeaksWhenWorkersAndChannelsEnd) {
  const std::size_t fds_before = capsa::testing::open_fd_count();
  make_pair();
  {
    RawBootstrap a = attach("a");
    RawBootstrap b = attach("b");
    LoopThread loop(*sup_);
    auto mobile = a.get("mobile");
    auto ca = a.get("pipe");
    auto cb = b.get("pipe");
    ASSERT_TRUE(mobile && ca && cb);
    Client client(std::move(ca->port), echo_iface());
    for (int i = 0; i < 50; ++i) {
      auto answer = std::async(std::launch::async, [&] { return put(client, dup_of(mobile->port)); });
      auto call = next_message(cb->port);
      ASSERT_TRUE(call);
      ASSERT_TRUE(answer_put(cb->port, *call));  // b drops the port it got
      ASSERT_TRUE(answer.get());
    }
    // Each delegated copy is released when b's end of it closes.
    // Two bootstraps, a's mobile and the two ends: nothing else stays.
    for (int i = 0; i < 100; ++i) {
      if (loop.on_loop([&] { return sup_->live_grants(); }) == 5u) break;
      usleep(10000);
    }
    EXPECT_EQ(loop.on_loop([&] { return sup_->live_grants(); }), 5u);
  }
  sup_.reset();
  EXPECT_EQ(capsa::testing::open_fd_count(), fds_before);
}

}  // namespace
}  // namespace capsa::supervisor
