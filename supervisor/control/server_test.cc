// The control socket against a real Supervisor (attach()ed workers whose
// ports are held by real child processes, the reactor on its own thread):
// Audit and Revoke through the real socket, the kernel's view of holders,
// the session bound, a large report, and the report verifier.
#include "supervisor/control/server.h"

#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "supervisor/cli/audit.h"
#include "supervisor/control/report.h"
#include "supervisor/control/server_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

TEST(ControlDispatchTest, TheMethodTableMatchesTheSchema) {
  auto registry = control_registry();
  ASSERT_TRUE(registry) << registry.error().message;
  const Interface* control = (*registry)->find(kControlInterface);
  ASSERT_NE(control, nullptr);
  auto checked = check_control_methods(*control);
  EXPECT_TRUE(checked) << checked.error().message;
}

TEST_F(ControlTest, AuditShowsEveryGrantAndWhoTheKernelSaysHoldsIt) {
  make([](auto& b) {
    echo_worker(b, "a");
    echo_worker(b, "b");
    b.channel("pipe").interface("capsa.test.Echo").client("a").server("b");
  });
  FdHolder ha, hb;
  ASSERT_TRUE(ha.ok() && hb.ok());
  RawBootstrap boot_a = attach("a", ha.pid());
  RawBootstrap boot_b = attach("b", hb.pid());
  serve_and_run(sock_);

  auto ea = boot_a.get("echo");
  auto eb = boot_b.get("echo");
  auto na = boot_a.get("narrow");
  auto pa = boot_a.get("pipe");
  ASSERT_TRUE(ea && eb && na && pa);
  ASSERT_TRUE(ha.hold(one(std::move(ea->port))));  // a holds its own grant
  ASSERT_TRUE(ha.hold(one(std::move(eb->port))));  // and b's: passed on behind our back
  ASSERT_TRUE(ha.hold(one(std::move(pa->port))));  // and its channel end
  // `na` and both bootstraps stay in this process, which is no worker.

  auto gs = grants();
  const GrantView* g_ea = grant_named(gs, "a", "echo");
  const GrantView* g_eb = grant_named(gs, "b", "echo");
  const GrantView* g_na = grant_named(gs, "a", "narrow");
  const GrantView* g_pa = grant_named(gs, "a", "pipe");
  ASSERT_TRUE(g_ea && g_eb && g_na && g_pa);

  auto c = client();
  ASSERT_TRUE(c);
  auto snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  const ctl::AuditReport& r = snap->report();
  EXPECT_EQ(r.supervisor_pid(), ::getpid());
  ASSERT_EQ(r.workers()->size(), 2u);
  EXPECT_EQ(r.workers()->Get(0)->name()->str(), "a");
  EXPECT_EQ(r.workers()->Get(0)->pid(), ha.pid());
  EXPECT_TRUE(r.workers()->Get(0)->running());
  ASSERT_EQ(r.grants()->size(), gs.size());

  const auto* a_echo = find_grant(r, g_ea->id);
  ASSERT_NE(a_echo, nullptr);
  EXPECT_EQ(a_echo->worker()->str(), "a");
  EXPECT_EQ(a_echo->interface()->str(), "capsa.test.Echo");
  EXPECT_EQ(a_echo->rights()->size(), 4u);  // all_rights: Echo, Put, Tree, Note
  EXPECT_EQ(a_echo->origin(), ctl::GrantOrigin::Policy);
  EXPECT_EQ(a_echo->state(), ctl::GrantState::Live);
  EXPECT_EQ(a_echo->port_inode(), g_ea->port_inode);
  EXPECT_EQ(a_echo->holder_pid(), ha.pid());
  EXPECT_GT(a_echo->created_ns(), 0);
  EXPECT_GE(r.now_ns(), a_echo->created_ns());
  EXPECT_EQ(a_echo->kernel(), ctl::KernelVerdict::Held);

  const auto* b_echo = find_grant(r, g_eb->id);
  ASSERT_NE(b_echo, nullptr);
  EXPECT_EQ(b_echo->kernel(), ctl::KernelVerdict::HeldByOther);
  EXPECT_EQ(b_echo->kernel_detail()->str(), "a");

  const auto* a_narrow = find_grant(r, g_na->id);
  ASSERT_NE(a_narrow, nullptr);
  EXPECT_EQ(a_narrow->kernel(), ctl::KernelVerdict::NotHeld);
  ASSERT_EQ(a_narrow->rights()->size(), 1u);
  EXPECT_EQ(a_narrow->rights()->Get(0)->str(), "Tree");

  const auto* a_pipe = find_grant(r, g_pa->id);
  ASSERT_NE(a_pipe, nullptr);
  EXPECT_EQ(a_pipe->kind(), ctl::GrantKind::Served);  // a mediated channel's client end
  EXPECT_NE(a_pipe->channel(), 0u);
  EXPECT_EQ(a_pipe->kernel(), ctl::KernelVerdict::Held);

  // The same in the two renderings `capsa audit` prints.
  std::string table = cli::format_audit_table(r, false);
  EXPECT_NE(table.find("held by a"), std::string::npos) << table;
  EXPECT_NE(table.find("not held"), std::string::npos) << table;
  EXPECT_NE(table.find("policy client end"), std::string::npos) << table;
  std::string json = cli::format_audit_json(r);
  EXPECT_NE(json.find("\"id\":" + std::to_string(g_eb->id) + ","), std::string::npos) << json;
  EXPECT_NE(json.find("\"kernel\":\"held by other\",\"kernel_detail\":\"a\""), std::string::npos) << json;

  // The holder closes the port: once the supervisor sees it, the grant is
  // released and gone from the live view.
  ASSERT_TRUE(ha.drop_all());
  ASSERT_TRUE(eventually([&] { return grant_named(grants(), "a", "echo") == nullptr; }));
  snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  EXPECT_EQ(find_grant(snap->report(), g_ea->id), nullptr);
  snap = c->audit(true);
  ASSERT_TRUE(snap) << snap.error().to_string();
  const auto* ended = find_grant(snap->report(), g_ea->id);
  ASSERT_NE(ended, nullptr);
  EXPECT_EQ(ended->state(), ctl::GrantState::Released);
  EXPECT_GT(ended->ended_ns(), 0);
  EXPECT_EQ(ended->kernel(), ctl::KernelVerdict::Unknown);

  auto lines = audit_lines(audit_path_);
  EXPECT_GE(count_lines_with(lines, {"\"control_connected\"", "\"uid\":" + std::to_string(::geteuid())}), 1u);
}

TEST_F(ControlTest, AnAttachedWorkerWithoutAPidIsUnknownNotNotHeld) {
  ASSERT_NO_FATAL_FAILURE(serve_w_holding_echo());
  auto c = client();
  ASSERT_TRUE(c);
  auto snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  for (const auto* g : *snap->report().grants()) {
    EXPECT_EQ(g->kernel(), ctl::KernelVerdict::Unknown);
    EXPECT_NE(g->kernel_detail()->str().find("attached without a pid"), std::string::npos);
  }
}

TEST_F(ControlTest, RevokeThroughTheSocketRevokesWhatWasDerivedAndIsAudited) {
  make([](auto& b) {
    echo_worker(b, "a");
    echo_worker(b, "b");
    b.channel("pipe").interface("capsa.test.Echo").client("a").server("b");
  });
  RawBootstrap boot = attach("a");
  serve_and_run(sock_);
  auto wide = boot.get("echo");
  ASSERT_TRUE(wide);
  Fd dup(::fcntl(wide->port.fd().get(), F_DUPFD_CLOEXEC, 0));
  auto narrow = boot.attenuate(Port(std::move(dup)), {"Tree"});
  ASSERT_TRUE(narrow);
  auto pipe = boot.get("pipe");
  ASSERT_TRUE(pipe);
  auto gs = grants();
  const GrantView* w = grant_named(gs, "a", "echo");
  const GrantView* p = grant_named(gs, "a", "pipe");
  ASSERT_TRUE(w && p);
  GrantId wide_id = w->id, pipe_id = p->id, narrow_id = 0;
  for (const auto& g : gs) {
    if (g.parent == wide_id) narrow_id = g.id;
  }
  ASSERT_NE(narrow_id, 0u);

  auto c = client();
  ASSERT_TRUE(c);
  auto ids = c->revoke(wide_id, "testing the control socket");
  ASSERT_TRUE(ids) << ids.error().to_string();
  EXPECT_EQ(*ids, (std::vector<std::uint64_t>{wide_id, narrow_id}));
  EXPECT_TRUE(narrow->port.wait_readable(10000).value_or(false));
  EXPECT_TRUE(narrow->port.peer_closed());

  // Errors come back with the supervisor's code and text, and the session
  // keeps working after each.
  auto again = c->revoke(wide_id, "");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound) << again.error().to_string();
  // A channel end is revoked like any grant (the channel with it).
  auto chan = c->revoke(pipe_id, "");
  ASSERT_TRUE(chan) << chan.error().to_string();
  EXPECT_EQ(*chan, (std::vector<std::uint64_t>{pipe_id}));
  EXPECT_TRUE(pipe->port.wait_readable(10000).value_or(false));
  EXPECT_TRUE(pipe->port.peer_closed());
  auto too_long = c->revoke(pipe_id, std::string(kMaxRevokeReasonBytes + 1, 'x'));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, Errc::kBadMessage);

  auto snap = c->audit(true);
  ASSERT_TRUE(snap) << snap.error().to_string();
  const auto* rw = find_grant(snap->report(), wide_id);
  const auto* rn = find_grant(snap->report(), narrow_id);
  ASSERT_TRUE(rw && rn);
  EXPECT_EQ(rw->state(), ctl::GrantState::Revoked);
  EXPECT_EQ(rn->state(), ctl::GrantState::Revoked);
  EXPECT_EQ(rn->origin(), ctl::GrantOrigin::Attenuated);
  EXPECT_EQ(rn->parent(), wide_id);

  // A policy grant stays revoked for its worker.
  EXPECT_EQ(boot.get("echo").error().code, Errc::kRevoked);

  std::string who = "operator (uid " + std::to_string(::geteuid()) + " pid " + std::to_string(::getpid()) + ")";
  auto lines = audit_lines(audit_path_);
  EXPECT_EQ(count_lines_with(lines, {"\"revoked\"", "\"grant\":" + std::to_string(wide_id) + ",",
                                     who + ": testing the control socket"}),
            1u);
  EXPECT_EQ(count_lines_with(lines, {"\"revoked\"", "\"grant\":" + std::to_string(narrow_id) + ",",
                                     "parent grant " + std::to_string(wide_id) + " revoked"}),
            1u);
}

TEST_F(ControlTest, SessionsAreBoundedAndFreedWhenClientsLeave) {
  make([](auto& b) { echo_worker(b, "w"); });
  serve_and_run(sock_);
  std::vector<std::unique_ptr<ControlClient>> clients;
  for (std::size_t i = 0; i < kMaxControlSessions; ++i) {
    clients.push_back(client());
    ASSERT_TRUE(clients.back());
    ASSERT_TRUE(clients.back()->audit(false)) << i;  // accepted and served
  }
  EXPECT_EQ(loop_->on_loop([&] { return server_->sessions(); }), kMaxControlSessions);
  auto extra = client();
  ASSERT_TRUE(extra);  // the kernel accepts it into the backlog...
  auto refused = extra->audit(false);
  ASSERT_FALSE(refused) << "...and the server closes it";
  EXPECT_EQ(count_lines_with(audit_lines(audit_path_), {"\"control_refused\"", "too many control sessions"}), 1u);
  // The ones in session are unaffected.
  EXPECT_TRUE(clients.front()->audit(false));

  clients.pop_back();
  ASSERT_TRUE(eventually([&] { return loop_->on_loop([&] { return server_->sessions(); }) < kMaxControlSessions; }));
  auto next = client();
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->audit(false));
}

// A report far larger than one packet travels whole, as a blob.
TEST_F(ControlTest, ThousandsOfGrantsFitInOneReport) {
  make([](auto& b) {
    // 3,000 Gets in a burst: above the default messages per second, and
    // more live ports than the default open_files allows.
    echo_worker(b, "w")
        .limit(policy::LimitKind::kMessagesPerSecond, 100'000)
        .limit(policy::LimitKind::kOpenFiles, 4096);
  });
  RawBootstrap boot = attach("w");
  serve_and_run(sock_);
  constexpr int kGrants = 3000;
  std::vector<Port> ports;
  for (int i = 0; i < kGrants; ++i) {
    auto g = boot.get("echo");
    ASSERT_TRUE(g) << i << ": " << g.error().to_string();
    ports.push_back(std::move(g->port));
  }
  auto c = client();
  ASSERT_TRUE(c);
  auto snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  EXPECT_EQ(snap->report().grants()->size(), static_cast<std::size_t>(kGrants + 1));
  std::string json = cli::format_audit_json(snap->report());
  EXPECT_GT(json.size(), kDefaultMaxPacketBytes);
}

TEST(ControlReport, VerifierRefusesWhatIsNotAReport) {
  std::vector<std::byte> junk(256, std::byte{0x41});
  EXPECT_EQ(verify_audit_report(junk).error().code, Errc::kBadMessage);
  EXPECT_EQ(verify_audit_report({}).error().code, Errc::kBadMessage);
  // A well-formed flatbuffer with another identifier.
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(ctl::CreateAuditReport(fbb, 1, 2), "XXXX");
  auto bytes = std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize()));
  EXPECT_EQ(verify_audit_report(bytes).error().code, Errc::kBadMessage);
  // The same with the right identifier verifies; cut short, it does not.
  flatbuffers::FlatBufferBuilder good;
  good.Finish(ctl::CreateAuditReport(good, 1, 2), ctl::AuditReportIdentifier());
  auto gb = std::as_bytes(std::span(good.GetBufferPointer(), good.GetSize()));
  EXPECT_TRUE(verify_audit_report(gb));
  EXPECT_FALSE(verify_audit_report(gb.first(gb.size() - 4)));
}

}  // namespace
}  // namespace capsa::supervisor
