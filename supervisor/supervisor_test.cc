// The supervisor core through attach()ed workers (in-process peers, real
// ports, real reactor thread): bootstrap, grants, enforcement, revocation,
// release, attenuation, bad messages, the audit trail, no leaks.
// The same with real sandboxed workers: tests/integration/.
#include "supervisor/supervisor.h"

#include <fcntl.h>

#include <gtest/gtest.h>

#include "policy/builder.h"
#include "capabilities/interfaces/builtin.h"
#include "supervisor/supervisor_impl.h"
#include "supervisor/supervisor_test_util.h"
#include "fs_directory_generated.h"
#include "fs_file_generated.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

using SupervisorTest = SupervisorFixture;

TEST(BootstrapDispatchTest, TheMethodTableMatchesTheSchema) {
  InterfaceRegistry registry;
  ASSERT_TRUE(interfaces::register_builtin(registry));
  const Interface* bootstrap = registry.find(interfaces::kBootstrap);
  ASSERT_NE(bootstrap, nullptr);
  auto checked = check_bootstrap_methods(*bootstrap);
  EXPECT_TRUE(checked) << checked.error().message;
  // A table checked against another interface is refused, by name.
  auto wrong = check_bootstrap_methods(*registry.find(interfaces::kLogSink));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::kInvalidArgument);
}

TEST_F(SupervisorTest, GrantedApiWorksAndEveryStepIsAudited) {
  make([](auto& b) { echo_worker(b); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto got = boot.get("echo");
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->interface, "capsa.test.Echo");
  Client c(std::move(got->port), *sup_->registry().find("capsa.test.Echo"));
  auto r = echo(c, "hello", 7);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, "hello");

  auto grants = loop.on_loop([&] { return sup_->grants(); });
  ASSERT_EQ(grants.size(), 2u);  // bootstrap + echo
  EXPECT_EQ(grants[1].name, "echo");
  EXPECT_EQ(grants[1].calls, 1u);
  EXPECT_EQ(grants[1].origin, GrantOrigin::kPolicy);
  EXPECT_EQ(grants[1].port_inode, socket_inode(c.port().fd()));
  loop.stop();
  auto lines = audit();
  EXPECT_EQ(count_lines_with(lines, {"\"grant_created\"", "\"capsa.test.Echo\"", "\"policy\""}), 1u);
  EXPECT_EQ(count_lines_with(lines, {"\"port_transferred\"", "\"from\":\"supervisor\""}), 1u);
}

TEST_F(SupervisorTest, UngrantedNameIsNotFoundAndAudited) {
  make([](auto& b) { echo_worker(b); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto got = boot.get("secrets");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kNotFound);
  // The supervisor keeps serving the worker.
  EXPECT_TRUE(boot.get("echo"));
  auto w = loop.on_loop([&] { return sup_->workers(); });
  EXPECT_EQ(w[0].denials, 1u);
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"call_denied\"", "\"method\":\"Get\"", "not granted: 'secrets'"}), 1u);
}

TEST_F(SupervisorTest, MethodOutsideRightsIsDeniedAuditedAndThePortStaysUsable) {
  make([](auto& b) { echo_worker(b); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto got = boot.get("narrow");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->rights, right_of(2));
  Client c(std::move(got->port), *sup_->registry().find("capsa.test.Echo"));
  auto r = echo(c, "x");  // Echo (ordinal 0) is not in the rights
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDenied);
  auto r2 = echo(c, "y");
  EXPECT_EQ(r2.error().code, Errc::kDenied);  // still answered: port open
  EXPECT_EQ(ctl_->served.load(), 0);          // the service never saw them
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"call_denied\"", "\"method\":\"Echo\"", "outside the grant's rights"}), 2u);
}

TEST_F(SupervisorTest, RevokeClosesThePortFailsInFlightCallsAndBlocksAnotherGet) {
  make([](auto& b) { echo_worker(b); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto got = boot.get("echo");
  ASSERT_TRUE(got);
  Client c(std::move(got->port), *sup_->registry().find("capsa.test.Echo"));
  c.set_peer_closed_error(Errc::kRevoked, "revoked");
  // One call held in the service, in flight when the revocation comes.
  auto& fbb = c.payload_builder();
  fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString("hold"), 0));
  std::optional<Result<Message>> held;
  ASSERT_TRUE(c.submit(0, c.payload_bytes(), {}, [&](Result<Message> m) { held = std::move(m); }));
  while (ctl_->served.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto grants = loop.on_loop([&] { return sup_->grants(); });
  const GrantId id = grants[1].id;
  auto revoked = loop.on_loop([&] { return sup_->revoke(id, "test"); });
  ASSERT_TRUE(revoked) << revoked.error().to_string();
  EXPECT_EQ(*revoked, std::vector<GrantId>{id});
  // The held call, answered after the revoke, sends nothing.
  loop.on_loop([&] {
    for (auto& call : ctl_->held) EchoService::answer(call, "late", 0);
    ctl_->held.clear();
  });
  while (!held) ASSERT_TRUE(c.on_readable() || c.closed());
  ASSERT_FALSE(*held);
  EXPECT_EQ(held->error().code, Errc::kRevoked);
  // Nothing sent after the revoke is delivered.
  EXPECT_FALSE(echo(c, "after"));
  // A policy grant revoked stays revoked for this worker.
  auto again = boot.get("echo");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kRevoked);
  EXPECT_TRUE(boot.get("narrow"));  // others are untouched
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"revoked\"", "\"grant\":" + std::to_string(id) + ","}), 1u);
}

TEST_F(SupervisorTest, AttenuatedCopyIsNarrowerAndDiesWithItsParent) {
  make([](auto& b) { echo_worker(b); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto wide = boot.get("echo");
  ASSERT_TRUE(wide);
  auto wide2 = boot.get("echo");  // keep a wide one: Attenuate consumes its port
  ASSERT_TRUE(wide2);
  auto narrow = boot.attenuate(std::move(wide2->port), {"Tree"});
  ASSERT_TRUE(narrow) << narrow.error().to_string();
  EXPECT_EQ(narrow->rights, right_of(2));
  Client c(std::move(narrow->port), *sup_->registry().find("capsa.test.Echo"));
  EXPECT_EQ(echo(c, "x").error().code, Errc::kDenied);

  // Unknown method and empty result.
  auto wide3 = boot.get("echo");
  EXPECT_EQ(boot.attenuate(std::move(wide3->port), {"Nope"}).error().code, Errc::kNotFound);
  auto n2 = boot.get("narrow");
  EXPECT_EQ(boot.attenuate(std::move(n2->port), {"Echo"}).error().code, Errc::kDenied);
  // A port the supervisor did not serve to this worker.
  auto stranger = make_channel();
  EXPECT_EQ(boot.attenuate(std::move(stranger->first), {"Echo"}).error().code, Errc::kNotFound);

  // The attenuated grant's parent is the consumed port's grant; that one is
  // released (its only copy came to the supervisor), and the child moves up
  // to the parent's parent (none). Revoking the first wide grant leaves it.
  auto grants = loop.on_loop([&] { return sup_->grants(); });
  const GrantView* att = nullptr;
  for (const auto& g : grants) {
    if (g.origin == GrantOrigin::kAttenuated) att = &g;
  }
  ASSERT_NE(att, nullptr);
  EXPECT_EQ(att->rights, std::vector<std::string>{"Tree"});
  const GrantId att_id = att->id;
  auto r = loop.on_loop([&] { return sup_->revoke(att_id, "test"); });
  ASSERT_TRUE(r);
  EXPECT_FALSE(echo(c, "x"));
  loop.stop();
  // Both say which policy grant their authority comes from, with its
  // constraints, so an auditor needs no other line to read them.
  const auto lines = audit();
  EXPECT_EQ(count_lines_with(lines, {"\"grant_created\"", "\"attenuated\"", "\"policy_grant\":\"echo\"",
                                     R"("constraints":{"rate":0,"byte_budget":0,"transferable":false})"}),
            1u);
  EXPECT_EQ(count_lines_with(lines, {"\"grant_created\"", "\"origin\":\"policy\"", "\"name\":\"echo\"",
                                     "\"policy_grant\":\"echo\""}),
            3u);
}

TEST_F(SupervisorTest, RevokingAParentRevokesWhatWasDerived) {
  make([](auto& b) { echo_worker(b); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto wide = boot.get("echo");
  ASSERT_TRUE(wide);
  // Keep the wide port: attenuate a dup of it, so the parent stays live.
  Fd dup(::fcntl(wide->port.fd().get(), F_DUPFD_CLOEXEC, 0));
  auto narrow = boot.attenuate(Port(std::move(dup)), {"Tree"});
  ASSERT_TRUE(narrow);
  Client child(std::move(narrow->port), *sup_->registry().find("capsa.test.Echo"));
  auto grants = loop.on_loop([&] { return sup_->grants(); });
  ASSERT_EQ(grants.size(), 3u);
  EXPECT_EQ(grants[2].parent, grants[1].id);
  auto r = loop.on_loop([&] { return sup_->revoke(grants[1].id, "test"); });
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::vector<GrantId>{grants[1].id, grants[2].id}));
  EXPECT_TRUE(child.port().wait_readable(5000).value_or(false));
  EXPECT_TRUE(child.port().peer_closed());
  EXPECT_EQ(loop.on_loop([&] { return sup_->live_grants(); }), 1u);  // the bootstrap
}

TEST_F(SupervisorTest, ClosingAPortReleasesItsGrantAndLeaksNothing) {
  make([](auto& b) { echo_worker(b); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  capsa::testing::FdLeakCheck fds;
  for (int i = 0; i < 200; ++i) {
    auto got = boot.get("echo");
    ASSERT_TRUE(got);
  }  // each port closes here
  // The supervisor sees each hang-up on its loop.
  for (int i = 0; i < 1000 && loop.on_loop([&] { return sup_->live_grants(); }) != 1u; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(loop.on_loop([&] { return sup_->live_grants(); }), 1u);
  EXPECT_EQ(fds.leaked(), 0) << capsa::testing::describe_open_fds();
  EXPECT_EQ(ctl_->destroyed.load(), 200);
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"released\"", "holder closed the port"}), 200u);
}

TEST_F(SupervisorTest, BadMessageClosePortIsAuditedAndOtherPortsKeepWorking) {
  make([](auto& b) {
    echo_worker(b).on_bad_message(policy::BadMessageAction::kClosePort);
  });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto a = boot.get("echo");
  auto b2 = boot.get("echo");
  ASSERT_TRUE(a && b2);
  const char junk[] = "not an envelope";
  ASSERT_TRUE(a->port.send(std::as_bytes(std::span(junk))));
  EXPECT_TRUE(a->port.wait_readable(5000).value_or(false));
  EXPECT_TRUE(a->port.peer_closed());
  Client c(std::move(b2->port), *sup_->registry().find("capsa.test.Echo"));
  EXPECT_TRUE(echo(c, "still"));
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"bad_message\"", "\"close_port\""}), 1u);
}

TEST_F(SupervisorTest, BadMessageReplyErrorAnswersAndKeepsServing) {
  make([](auto& b) {
    echo_worker(b).on_bad_message(policy::BadMessageAction::kReplyError);
  });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto a = boot.get("echo");
  ASSERT_TRUE(a);
  const char junk[] = "junk";
  ASSERT_TRUE(a->port.send(std::as_bytes(std::span(junk))));
  auto answer = a->port.receive();
  ASSERT_TRUE(answer);  // an error envelope for call id 0
  Client c(std::move(a->port), *sup_->registry().find("capsa.test.Echo"));
  EXPECT_TRUE(echo(c, "still"));
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"bad_message\"", "\"reply_error\""}), 1u);
}

TEST_F(SupervisorTest, BadMessageKillEndsTheAttachedWorkerAndReleasesEverything) {
  make([](auto& b) {
    echo_worker(b);
    echo_worker(b, "other");
  });
  RawBootstrap boot = attach("w");
  RawBootstrap other = attach("other");
  LoopThread loop(*sup_);
  auto a = boot.get("echo");
  auto b2 = boot.get("echo");
  ASSERT_TRUE(a && b2);
  const char junk[] = "junk";
  ASSERT_TRUE(a->port.send(std::as_bytes(std::span(junk))));
  EXPECT_TRUE(b2->port.wait_readable(5000).value_or(false));
  EXPECT_TRUE(b2->port.peer_closed());
  auto w = loop.on_loop([&] { return sup_->workers(); });
  EXPECT_FALSE(w[0].running);
  EXPECT_EQ(w[0].bad_messages, 1u);
  // The other worker is served as before.
  auto o = other.get("echo");
  ASSERT_TRUE(o);
  Client c(std::move(o->port), *sup_->registry().find("capsa.test.Echo"));
  EXPECT_TRUE(echo(c, "fine"));
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"bad_message\"", "\"kill_worker\""}), 1u);
}

TEST_F(SupervisorTest, CallsInFlightBeyondTheLimitAreOverloadedAndOrderIsKept) {
  make([](auto& b) {
    echo_worker(b).limit(policy::LimitKind::kCallsInFlight, 2);
  });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto got = boot.get("echo");
  ASSERT_TRUE(got);
  Client c(std::move(got->port), *sup_->registry().find("capsa.test.Echo"));
  std::vector<std::string> results;
  auto submit = [&](const char* text) {
    auto& fbb = c.payload_builder();
    fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString(text), 0));
    ASSERT_TRUE(c.submit(0, c.payload_bytes(), {}, [&results](Result<Message> m) {
      results.push_back(m ? m->payload_as<capsa::test::EchoReply>()->text()->str()
                          : "error:" + std::string(errc_name(m.error().code)));
    }));
  };
  submit("hold");    // with the service
  submit("second");  // waiting behind it
  submit("third");   // one past the limit of 2
  while (results.empty()) ASSERT_TRUE(c.on_readable());
  EXPECT_EQ(results[0], "error:overloaded");
  loop.on_loop([&] {
    for (auto& call : ctl_->held) EchoService::answer(call, "first", 0);
    ctl_->held.clear();
  });
  while (results.size() < 3) ASSERT_TRUE(c.on_readable());
  EXPECT_EQ(results[1], "first");
  EXPECT_EQ(results[2], "second");
  loop.stop();
  EXPECT_EQ(count_lines_with(audit(), {"\"call_denied\"", "too many calls in flight"}), 1u);
}

TEST_F(SupervisorTest, ByteBudgetIsSharedByEveryGrantOfThePolicyEntry) {
  make([](auto& b) {
    auto& w = b.worker("w").program("/bin/true");
    w.grant("echo", "capsa.test.Echo").all_rights().byte_budget(2000);
  });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  const std::string text(300, 'x');
  int ok = 0;
  Errc last = Errc::kFailed;
  for (int i = 0; i < 10; ++i) {
    auto got = boot.get("echo");  // a new grant each time: same budget
    ASSERT_TRUE(got);
    Client c(std::move(got->port), *sup_->registry().find("capsa.test.Echo"));
    auto r = echo(c, text);
    if (r) {
      ++ok;
    } else {
      last = r.error().code;
    }
  }
  EXPECT_GE(ok, 1);
  EXPECT_LT(ok, 10);
  EXPECT_EQ(last, Errc::kOverloaded);
  loop.stop();
  const auto lines = audit();
  EXPECT_GE(count_lines_with(lines, {"\"call_denied\"", "byte budget exhausted"}), 1u);
  EXPECT_EQ(count_lines_with(lines, {"\"grant_created\"", "\"name\":\"echo\"",
                                     R"("constraints":{"rate":0,"byte_budget":2000,"transferable":false})"}),
            10u);
}

TEST_F(SupervisorTest, GrantRateOverTheLimitIsOverloaded) {
  make([](auto& b) {
    auto& w = b.worker("w").program("/bin/true");
    w.grant("echo", "capsa.test.Echo").all_rights().rate(1);
  });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto got = boot.get("echo");
  ASSERT_TRUE(got);
  Client c(std::move(got->port), *sup_->registry().find("capsa.test.Echo"));
  // One call per second: of three back-to-back calls, at least one is
  // refused (all three would pass only if two seconds went by in between).
  int refused = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = echo(c, "x");
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::kOverloaded);
      ++refused;
    }
  }
  EXPECT_GE(refused, 1);
}

TEST_F(SupervisorTest, AWorkerCannotHoldMoreLivePortsThanItsFdLimitAllows) {
  make([](auto& b) { echo_worker(b).limit(policy::LimitKind::kOpenFiles, 8); });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  // 8 open files + 16 slack = 24 live grants, the bootstrap included.
  std::vector<Got> held;
  Result<Got> last;
  for (int i = 0; i < 30; ++i) {
    last = boot.get("echo");
    if (!last) break;
    held.push_back(std::move(*last));
  }
  EXPECT_EQ(held.size(), 23u);
  ASSERT_FALSE(last);
  EXPECT_EQ(last.error().code, Errc::kOverloaded);
  // Closing one makes room again (once the supervisor has seen the close).
  held.pop_back();
  Result<Got> again = make_error(Errc::kFailed, "not tried");
  for (int i = 0; i < 500 && !again; ++i) {
    again = boot.get("echo");
    if (!again) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_TRUE(again);
  loop.stop();
  EXPECT_GE(count_lines_with(audit(), {"\"grant_refused\"", "maximum of 24 live ports"}), 1u);
}

TEST_F(SupervisorTest, AttachingWithAPidThatCannotBeWatchedLeavesNothingRunning) {
  make([](auto& b) { echo_worker(b); });
  // pid_max is at most 2^22: this pid cannot exist.
  auto port = sup_->attach("w", (1 << 22) + 1);
  ASSERT_FALSE(port);
  auto w = sup_->workers();
  EXPECT_FALSE(w[0].running);
  EXPECT_EQ(sup_->live_grants(), 0u);
  EXPECT_TRUE(sup_->run());  // returns at once: nothing left to serve
}

TEST_F(SupervisorTest, AttachedWorkerEndsWhenItsBootstrapCloses) {
  make([](auto& b) { echo_worker(b); });
  auto port = sup_->attach("w");
  ASSERT_TRUE(port);
  auto boot = std::make_unique<RawBootstrap>(std::move(*port), sup_->registry());
  LoopThread loop(*sup_);
  auto got = boot->get("echo");
  ASSERT_TRUE(got);
  boot.reset();
  EXPECT_TRUE(got->port.wait_readable(5000).value_or(false));
  EXPECT_TRUE(got->port.peer_closed());
  auto w = loop.on_loop([&] { return sup_->workers(); });
  EXPECT_FALSE(w[0].running);
  EXPECT_EQ(loop.on_loop([&] { return sup_->live_grants(); }), 0u);
}

TEST_F(SupervisorTest, ListNamesGrantsAndChannels) {
  make([](auto& b) {
    echo_worker(b, "a");
    echo_worker(b, "b");
    b.channel("pipe").interface("capsa.test.Echo").client("a").server("b");
  });
  RawBootstrap a = attach("a");
  LoopThread loop(*sup_);
  auto& fbb = a.client().payload_builder();
  fbb.Finish(capsa::CreateListRequest(fbb));
  auto reply = a.client().call(1, a.client().payload_bytes());
  ASSERT_TRUE(reply);
  const auto* l = reply->payload_as<capsa::ListReply>();
  ASSERT_EQ(l->grants()->size(), 3u);
  EXPECT_EQ(l->grants()->Get(0)->name()->str(), "echo");
  EXPECT_EQ(l->grants()->Get(1)->name()->str(), "narrow");
  EXPECT_EQ(l->grants()->Get(2)->name()->str(), "pipe");
}

// Calls on one fs.File are served in order and each sees the position the
// one before left: two Reads sent together read consecutive bytes. (A
// service updates its position after its reply is sent; the next call is
// dispatched only once the previous Call is done with.)
TEST_F(SupervisorTest, PipelinedReadsOnOneFileReadConsecutiveBytes) {
  {
    std::ofstream f(dir_.path() + "/abc.txt");
    f << "abcdefgh";
  }
  const std::string root = dir_.path();
  make([&](auto& b) {
    auto& w = echo_worker(b);
    w.grant("dir", "fs.Directory").all_rights().constraint("root", root);
  });
  RawBootstrap boot = attach("w");
  LoopThread loop(*sup_);
  auto dir = boot.get("dir");
  ASSERT_TRUE(dir) << dir.error().to_string();
  Client d(std::move(dir->port), *sup_->registry().find("fs.Directory"));
  auto& fbb = d.payload_builder();
  fbb.Finish(fs::CreateOpenRequest(fbb, fbb.CreateString("abc.txt")));
  auto opened = d.call(0, d.payload_bytes());
  ASSERT_TRUE(opened) << opened.error().to_string();
  Client file(Port(opened->take_handle(*opened->payload_as<fs::OpenReply>()->file())),
              *sup_->registry().find("fs.File"));
  std::vector<std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto& rb = file.payload_builder();
    rb.Finish(fs::CreateReadRequest(rb, -1, 4));
    auto id = file.submit(0, file.payload_bytes(), {}, [&](Result<Message> r) {
      ASSERT_TRUE(r) << r.error().to_string();
      const auto* data = r->payload_as<fs::ReadReply>()->data();
      got.emplace_back(data->begin(), data->end());
    });
    ASSERT_TRUE(id);
  }
  while (got.size() < 2) ASSERT_TRUE(file.on_readable());
  EXPECT_EQ(got, (std::vector<std::string>{"abcd", "efgh"}));
}

}  // namespace
}  // namespace capsa::supervisor
