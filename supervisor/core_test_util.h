// Test support for the core's parts (grant_table_test.cc,
// port_endpoint_test.cc): a reactor driven by hand on the test thread, an
// audit log in a scratch directory, the capsa.test.Echo interface, one
// worker record, and an owner and call sink that record what they are told.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/interface_registry.h"
#include "echo_bfbs.h"
#include "supervisor/grant_table.h"
#include "tests/support/temp_dir.h"

namespace capsa::supervisor::testing {

// Records what endpoints report; a release ends the grant in the table.
class RecordingOwner final : public EndpointOwner {
 public:
  void release(GrantId id, std::string_view reason) override {
    released.emplace_back(id, std::string(reason));
    if (table != nullptr) table->release(id, reason);
  }
  void kill_worker(WorkerRecord& w, std::string_view reason) override {
    killed.emplace_back(w.name, std::string(reason));
    w.killing = true;
  }
  bool serving(GrantId id) const override { return table != nullptr && table->find(id) != nullptr; }
  // These tests mint no objects (supervisor_test's object tests run the
  // real core), so no control message can reach here.
  void control_object(GrantId, GrantId, Message) override { ADD_FAILURE() << "no objects here"; }

  GrantTable* table = nullptr;
  std::vector<std::pair<GrantId, std::string>> released;
  std::vector<std::pair<std::string, std::string>> killed;
};

// Keeps every dispatched call for the test to answer; answers go straight
// to the grant's port and tell its endpoint the call is done.
class HeldCalls final : public CallSink, public ServiceHost {
 public:
  Result<void> reply(CallState& call, const ReplyBuilder& build,
                     std::vector<Handle> handles) override {
    call.answered = true;
    GrantRecord* g = table->find(call.grant);
    if (g == nullptr) return make_error(Errc::kRevoked, "gone");
    build(encoder.payload_builder());
    return reply_bytes(call, encoder.payload_bytes(), std::move(handles));
  }
  Result<void> reply_bytes(CallState& call, std::span<const std::uint8_t> payload,
                           std::vector<Handle> handles) override {
    call.answered = true;
    GrantRecord* g = table->find(call.grant);
    if (g == nullptr) return make_error(Errc::kRevoked, "gone");
    Header h{MessageKind::kReply, call.call_id, call.method->ordinal,
             call.method->reply.type_hash, Errc::kFailed, {}};
    g->endpoint->answered();
    return send_message(g->endpoint->port(), encoder, h, payload, std::move(handles));
  }
  void next(CallState& call) override {
    if (GrantRecord* g = table->find(call.grant)) g->endpoint->call_done();
  }
  void fail(CallState& call, Errc code, std::string_view text) override {
    call.answered = true;
    GrantRecord* g = table->find(call.grant);
    if (g == nullptr) return;
    Header h{MessageKind::kError, call.call_id, call.method->ordinal, 0, code, text};
    g->endpoint->answered();
    (void)send_message(g->endpoint->port(), encoder, h, {}, {});
  }
  Result<void> charge(CallState&, std::uint64_t) override { return {}; }
  void off_loop(Call call, std::move_only_function<Continuation()>) override {
    call.fail(Errc::kFailed, "no pool in this test");
  }
  ServiceHost& host() override { return *this; }
  Result<Handle> mint(GrantId, const Interface&, Rights, std::unique_ptr<ServiceObject>) override {
    return make_error(Errc::kFailed, "not in this test");
  }
  Result<std::uint64_t> mint_object(GrantId, const Interface&, Rights,
                                    std::unique_ptr<ServiceObject>) override {
    return make_error(Errc::kFailed, "not in this test");
  }
  void worker_log(std::string_view, LogLevel, std::string_view) override {}
  const Interface* find_interface(std::string_view) const override { return nullptr; }

  GrantTable* table = nullptr;
  Encoder encoder;
  std::vector<Call> calls;  // filled by HoldingService
};

// A service that hands every call to the test.
class HoldingService final : public ServiceObject {
 public:
  explicit HoldingService(HeldCalls& held) : held_(held) {}
  void handle(Call call) override { held_.calls.push_back(std::move(call)); }
  std::unique_ptr<ServiceObject> clone() const override {
    return std::make_unique<HoldingService>(held_);
  }

 private:
  HeldCalls& held_;
};

// One worker, a reactor, an audit log and a grant table.
class CoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
    ASSERT_TRUE(registry_.load(schemas::echo_bfbs()));
    echo_ = registry_.find("capsa.test.Echo");
    ASSERT_NE(echo_, nullptr);
    profile_.name = "w";
    worker_.profile = &profile_;
    worker_.name = "w";
    worker_.running = true;
    auto reactor = Reactor::create();
    ASSERT_TRUE(reactor) << reactor.error().message;
    reactor_ = std::move(*reactor);
    auto audit = AuditLog::open(dir_ + "/audit.jsonl");
    ASSERT_TRUE(audit) << audit.error().message;
    audit_ = std::move(*audit);
    ctx_ = std::make_unique<EndpointContext>(
        EndpointContext{*reactor_, *audit_, encoder_, held_, owner_, pool_waiters_});
    table_ = std::make_unique<GrantTable>(*audit_, *ctx_, kEndedKept);
    owner_.table = table_.get();
    held_.table = table_.get();
  }
  void TearDown() override {
    held_.calls.clear();  // answered `failed` while the table still stands
    table_.reset();
  }

  // Mints an Echo grant for the worker and returns its id and the
  // worker's end.
  GrantTable::Minted mint(GrantId parent = 0, Rights rights = kAllRights,
                          GrantOrigin origin = GrantOrigin::kReturned) {
    auto m = table_->mint(worker_, spec(parent, rights, origin, "echo"),
                          std::make_unique<HoldingService>(held_));
    EXPECT_TRUE(m) << (m ? "" : m.error().message);
    return m ? std::move(*m) : GrantTable::Minted{};
  }

  GrantTable::Spec spec(GrantId parent, Rights rights, GrantOrigin origin,
                        std::string_view name) const {
    GrantTable::Spec s;
    s.parent = parent;
    s.iface = echo_;
    s.rights = rights;
    s.origin = origin;
    s.name = name;
    return s;
  }

  // Serves everything ready on the supervisor's side.
  void serve() {
    for (int i = 0; i < 64; ++i) {
      auto n = reactor_->run_once(0);
      ASSERT_TRUE(n);
      if (*n == 0) return;
    }
  }

  std::vector<std::string> audit_lines() const {
    std::vector<std::string> out;
    std::ifstream in(dir_ + "/audit.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  std::size_t audit_count(std::string_view part) const {
    std::size_t n = 0;
    for (const std::string& l : audit_lines()) {
      if (l.find(part) != std::string::npos) ++n;
    }
    return n;
  }

  static constexpr std::size_t kEndedKept = 4;
  capsa::testing::TempDir tmp_;
  std::string dir_;
  InterfaceRegistry registry_;
  const Interface* echo_ = nullptr;
  policy::WorkerProfile profile_;
  WorkerRecord worker_;
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<AuditLog> audit_;
  Encoder encoder_;
  RecordingOwner owner_;
  HeldCalls held_;
  PoolWaiters pool_waiters_;  // unused: HeldCalls has no pool
  std::unique_ptr<EndpointContext> ctx_;
  std::unique_ptr<GrantTable> table_;
};

}  // namespace capsa::supervisor::testing
