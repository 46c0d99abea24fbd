// Delegation between real sandboxed workers (bubblewrap, seccomp, the
// launcher) over mediated channels of capsa.test.Echo: hostile transfers
// refused with their exact verdict, re-minted ports revoked wherever they
// went, lines attributed to their real holder. delegation_worker.cc reports
// what each worker saw through its log grant; the test asserts those
// lines, the grant table and the audit log, that a neighbour worker was
// served throughout, and that the supervisor's fds and live grants are
// back where they started. Runs as root and as uid 65534 (ctest's
// .unprivileged variant). The same mechanisms with attached in-process
// workers: supervisor/channel_test.cc.
#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/support/fd_count.h"
#include "tests/support/private_checkout.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;
using policy::BadMessageAction;

constexpr const char* kEcho = "capsa.test.Echo";

class DelegationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    program_ = checkout_.add_program(test_bin_dir() + "/delegation_worker");
    audit_path_ = tmp_.path() + "/audit.jsonl";
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const char* w : {"a", "b", "c", "n"}) {
        for (const auto& l : log_.said(w)) std::cerr << "[" << w << "] " << l << "\n";
      }
    }
    sup_.reset();
    // Every fd the supervisor opened for these workers, ports, channels and
    // re-minted copies is closed again.
    EXPECT_EQ(fds_.leaked(), 0) << capsa::testing::describe_open_fds();
  }

  // A worker running `args`, with "log", "fixed" (Echo, not transferable),
  // "mobile" (Echo, transferable) and "speaker" (log.Sink, transferable).
  policy::WorkerBuilder& worker(policy::PolicyBuilder& b, const std::string& name,
                                std::initializer_list<std::string> args,
                                BadMessageAction action = BadMessageAction::kReplyError) {
    auto& w = b.worker(name).program(program_);
    for (const auto& a : args) w.arg(a);
    w.grant("log", "log.Sink").all_rights();
    w.grant("fixed", kEcho).all_rights();
    w.grant("mobile", kEcho).all_rights().transferable(true);
    w.grant("speaker", "log.Sink").all_rights().transferable(true);
    w.on_bad_message(action);
    w.limit(policy::LimitKind::kWallSeconds, 120);
    return w;
  }
  // The neighbour: 200 Echo calls on a grant of its own, through it all.
  void neighbour(policy::PolicyBuilder& b) {
    worker(b, "n", {"neighbour", "200"}).grant("echo", kEcho).all_rights();
  }
  // a (running `a_args`, with `action`) the client and b (serving) the
  // server of "pipe", and the neighbour. `rate`: both workers'
  // messages_per_second, for the long runs (0: the default).
  void make_pair(std::initializer_list<std::string> a_args,
                 BadMessageAction action = BadMessageAction::kReplyError, std::uint64_t rate = 0) {
    make([&](auto& b) {
      auto& a = worker(b, "a", a_args, action);
      auto& s = worker(b, "b", {"serve", "pipe"});
      if (rate != 0) {
        a.limit(policy::LimitKind::kMessagesPerSecond, rate);
        s.limit(policy::LimitKind::kMessagesPerSecond, rate);
      }
      channel(b, "pipe", "a", "b");
      neighbour(b);
    });
  }
  static void channel(policy::PolicyBuilder& b, const char* name, const char* client,
                      const char* server) {
    b.channel(name).interface(kEcho).client(client).server(server);
  }

  void make(const std::function<void(policy::PolicyBuilder&)>& fill) {
    SupervisorOptions o = options_with_echo(audit_path_, std::make_shared<EchoControl>());
    o.launcher = checkout_.launcher();
    log_.install(o);
    sup_ = make_supervisor(std::move(o), fill);
    ASSERT_NE(sup_, nullptr);
  }
  // Runs every worker to its end; then nothing may be live and every
  // worker must have exited with 0 (unless `killed` names it).
  void run(const std::string& killed = "") {
    EXPECT_EQ(sup_->live_grants(), 0u);
    start_and_run(*sup_);
    EXPECT_EQ(sup_->live_grants(), 0u);
    for (const auto& v : sup_->workers()) {
      ASSERT_TRUE(v.exit) << v.name;
      if (v.name == killed) continue;
      EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited) << v.name << ": " << v.exit->to_string();
      EXPECT_EQ(v.exit->code, 0) << v.name;
    }
  }
  void expect_neighbour_served() { EXPECT_TRUE(said_line("n", "calls: ok=200 failed=0")); }

  bool said_line(const std::string& w, const std::string& text) const {
    return log_.said_line(w, text);
  }
  // The first line of `w` that starts with `prefix`, or "".
  std::string line(const std::string& w, const std::string& prefix) const {
    for (const auto& l : log_.said(w)) {
      if (l.starts_with(prefix)) return l;
    }
    return "";
  }
  // The live grant of `w` named `name` with `origin` that was made last.
  GrantId newest(const std::string& w, const std::string& name, GrantOrigin origin) {
    GrantId id = 0;
    for (const auto& g : sup_->grants()) {
      if (g.worker == w && g.name == name && g.origin == origin) id = std::max(id, g.id);
    }
    return id;
  }
  std::vector<std::string> audit() { return audit_lines(audit_path_); }

  capsa::testing::FdLeakCheck fds_;
  TempDir tmp_;
  capsa::testing::PrivateCheckout checkout_{sandbox::default_launcher_path()};
  std::string program_;
  std::string audit_path_;
  LogCapture log_;
  std::unique_ptr<Supervisor> sup_;
};

TEST_F(DelegationTest, EveryPortTheSupervisorDidNotIssueForTravelIsRefused) {
  make_pair({"refusals"});
  run();
  // Each refused under a's reply_error; a's channel and bootstrap still work.
  EXPECT_TRUE(said_line("a", "fixed: denied"));
  EXPECT_TRUE(said_line("a", "bootstrap: denied"));
  EXPECT_TRUE(said_line("a", "socketpair: denied"));
  EXPECT_TRUE(said_line("a", "sixteen: bad message"));  // 16 fds, 1 declared
  EXPECT_TRUE(said_line("a", "mobile: ok"));
  EXPECT_TRUE(said_line("a", "bootstrap after: ok"));
  EXPECT_TRUE(said_line("a", "fixed after: ok"));
  // b saw one Put only, the port it could use.
  EXPECT_EQ(log_.said("b"), (std::vector<std::string>{"got port: echo ok",
                                                      "served pipe: puts=1 ok"}));
  expect_neighbour_served();
  const auto a = audit();
  EXPECT_EQ(count_lines_with(a, {"\"transfer_denied\"", "\"worker\":\"a\"",
                                 "(capsa.test.Echo) is not transferable", "\"action\":\"reply_error\""}),
            1u);
  EXPECT_EQ(count_lines_with(a, {"\"transfer_denied\"", "(capsa.Bootstrap) is not transferable"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"transfer_denied\"", "did not issue"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"transfer_denied\""}), 3u);
  // The first surplus port is named; none of the 16 was re-minted.
  EXPECT_EQ(count_lines_with(a, {"\"bad_message\"", "\"worker\":\"a\"",
                                 "handle 1 (port) is not referenced by any handle field"}),
            1u);
  EXPECT_EQ(count_lines_with(a, {"\"port_delegated\"", "\"from\":\"a\"", "\"to\":\"b\""}), 1u);
  EXPECT_EQ(worker_view(*sup_, "a").bad_messages, 4u);
}

TEST_F(DelegationTest, UnderKillTheFirstRefusedTransferEndsTheSenderOnly) {
  make_pair({"refusals"}, BadMessageAction::kKill);
  run("a");
  // The first refusal (the non-transferable port) kills a; b never sees a call.
  const WorkerView v = worker_view(*sup_, "a");
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kKilled);
  EXPECT_EQ(line("a", "fixed:"), "");
  EXPECT_EQ(log_.said("b"), (std::vector<std::string>{"served pipe: puts=0 ok"}));
  expect_neighbour_served();
  const auto a = audit();
  EXPECT_EQ(count_lines_with(a, {"\"transfer_denied\"", "not transferable", "\"action\":\"kill_worker\""}),
            1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_killed\"", "\"worker\":\"a\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"port_delegated\""}), 0u);
}

TEST_F(DelegationTest, AThousandPortsInALoopAreEachReMintedAndReleased) {
  make_pair({"loop", "1000"}, BadMessageAction::kReplyError, 1'000'000);
  run();
  EXPECT_TRUE(said_line("a", "loop: ok=1000 of 1000"));
  EXPECT_TRUE(said_line("b", "served pipe: puts=1000 ok"));
  expect_neighbour_served();
  const auto a = audit();
  EXPECT_EQ(count_lines_with(a, {"\"port_delegated\"", "\"from\":\"a\"", "\"to\":\"b\""}), 1000u);
  // b closed each copy at once: each was released as b's, not kept alive.
  EXPECT_GE(count_lines_with(a, {"\"released\"", "\"holder\":\"b\""}), 1000u);
}

TEST_F(DelegationTest, APortPassedBackIsStillCutWhenItsParentIsRevoked) {
  make_pair({"pass-back"});
  GrantId back = 0;
  std::vector<GrantId> revoked;
  log_.on_line = [&](const std::string& w, const std::string& text) {
    if (w != "a" || text != "ready") return;
    back = newest("a", "mobile", GrantOrigin::kDelegated);
    auto r = sup_->revoke(newest("a", "mobile", GrantOrigin::kPolicy), "parent");
    ASSERT_TRUE(r) << r.error().to_string();
    revoked = *r;
  };
  run();
  ASSERT_NE(back, 0u);  // a got a new, delegated port, not its own back
  EXPECT_NE(std::find(revoked.begin(), revoked.end(), back), revoked.end());
  EXPECT_TRUE(said_line("a", "back: echo ok"));
  // A raw client sees the revoke as the port shut: "closed".
  EXPECT_TRUE(said_line("a", "back: closed"));
  EXPECT_TRUE(said_line("a", "mobile: closed"));
  expect_neighbour_served();
  const auto a = audit();
  EXPECT_EQ(count_lines_with(a, {"\"port_delegated\"", "\"from\":\"b\"", "\"to\":\"a\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"revoked\"", "\"grant\":" + std::to_string(back) + ","}), 1u);
}

TEST_F(DelegationTest, AChainThatComesBackRoundIsCutByRevokingTheRoot) {
  make([&](auto& b) {
    worker(b, "a", {"chain"});
    worker(b, "b", {"serve", "ab", "bc", "forward"});
    worker(b, "c", {"serve", "bc", "ca", "keep"});
    channel(b, "ab", "a", "b");
    channel(b, "bc", "b", "c");
    channel(b, "ca", "c", "a");
    neighbour(b);
  });
  GrantId came_round = 0, root = 0;
  std::size_t revoked = 0;
  log_.on_line = [&](const std::string& w, const std::string& text) {
    if (w != "a" || text != "ready") return;
    came_round = newest("a", "mobile", GrantOrigin::kDelegated);
    root = newest("a", "mobile", GrantOrigin::kPolicy);
    auto r = sup_->revoke(root, "root");
    ASSERT_TRUE(r) << r.error().to_string();
    revoked = r->size();
    EXPECT_NE(std::find(r->begin(), r->end(), came_round), r->end());
  };
  run();
  ASSERT_NE(came_round, 0u);
  EXPECT_GE(revoked, 2u);
  EXPECT_TRUE(said_line("b", "forward: ok"));
  EXPECT_TRUE(said_line("c", "forward: ok"));
  EXPECT_TRUE(said_line("a", "kept: echo ok"));
  EXPECT_TRUE(said_line("a", "returned: closed"));
  EXPECT_TRUE(said_line("a", "mobile: closed"));
  expect_neighbour_served();
  const auto a = audit();
  for (auto [from, to] : {std::pair{"a", "b"}, {"b", "c"}, {"c", "a"}}) {
    EXPECT_EQ(count_lines_with(a, {"\"port_delegated\"", std::string("\"from\":\"") + from + "\"",
                                   std::string("\"to\":\"") + to + "\""}),
              1u)
        << from << " -> " << to;
  }
}

TEST_F(DelegationTest, AHolderThatExitsWithItsPortInFlightLeavesTheReceiverAWorkingCopy) {
  make_pair({"in-flight"});
  run();
  EXPECT_TRUE(said_line("a", "sent: ok"));
  EXPECT_TRUE(said_line("b", "served pipe: puts=1 ok"));
  // b's copy is a grant of its own, alive after a (and a's grant) ended.
  EXPECT_TRUE(said_line("b", "kept after: alive=1 of 1"));
  expect_neighbour_served();
  EXPECT_EQ(count_lines_with(audit(), {"\"port_delegated\"", "\"from\":\"a\"", "\"to\":\"b\""}), 1u);
}

TEST_F(DelegationTest, RevokeRacingATransferLeavesNoCopyThatAnswers) {
  const int rounds = 1000;
  make_pair({"race", std::to_string(rounds)}, BadMessageAction::kReplyError, 1'000'000);
  int raced = 0;
  log_.on_line = [&](const std::string& w, const std::string& text) {
    if (w != "a" || text != "race") return;
    // The copy a attenuated last, whether or not its Put got through yet.
    auto r = sup_->revoke(newest("a", "mobile", GrantOrigin::kAttenuated), "race");
    ASSERT_TRUE(r) << r.error().to_string();
    ++raced;
  };
  run();
  EXPECT_EQ(raced, rounds);
  const std::string result = line("a", "race:");
  ASSERT_NE(result, "");
  // Which side won how often (delivered: the Put was carried before the
  // revoke; refused: the revoked port no longer was the supervisor's).
  std::cerr << "[a] " << result << "\n";
  // Whichever won each round, no copy answered after its revoke returned.
  EXPECT_NE(result.find(" alive_here=0 alive_there=0 check_failures=0"), std::string::npos) << result;
  expect_neighbour_served();
  const auto a = audit();
  EXPECT_GE(count_lines_with(a, {"\"revoked\"", "\"reason\":\"race\""}),
            static_cast<std::size_t>(rounds));
}

TEST_F(DelegationTest, ALineWrittenThroughADelegatedSinkIsTheHoldersLine) {
  make_pair({"hand-log"});
  run();
  EXPECT_TRUE(said_line("a", "handed: ok"));
  EXPECT_TRUE(said_line("b", "log through it: ok"));
  EXPECT_TRUE(said_line("b", "written by b through a's sink"));
  EXPECT_FALSE(said_line("a", "written by b through a's sink"));
  expect_neighbour_served();
  EXPECT_EQ(count_lines_with(audit(), {"\"port_delegated\"", "\"from\":\"a\"", "\"to\":\"b\"",
                                       "\"interface\":\"log.Sink\""}),
            1u);
}

TEST_F(DelegationTest, FloodingOneDirectionLeavesTheOtherWorking) {
  make([&](auto& b) {
    worker(b, "a", {"flood", "3000"}).limit(policy::LimitKind::kMessagesPerSecond, 200);
    worker(b, "b", {"flooded", "200"});
    channel(b, "ab", "a", "b");
    channel(b, "ba", "b", "a");
    neighbour(b);
  });
  run();
  const std::string flood = line("a", "flood:");
  ASSERT_NE(flood, "");
  EXPECT_EQ(flood.find("overloaded=0 "), std::string::npos) << flood;
  EXPECT_NE(flood.find(" other=0"), std::string::npos) << flood;
  EXPECT_TRUE(said_line("b", "reverse: ok=200 failed=0"));
  expect_neighbour_served();
  EXPECT_GE(count_lines_with(audit(), {"\"call_denied\"", "\"worker\":\"a\""}), 1u);
}

}  // namespace
}  // namespace capsa::supervisor
