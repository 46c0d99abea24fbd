// Coalescing repeated refusals (coalescer.h) through the AuditLog, with an
// injected clock: the first `coalesce_after` identical lines per second in
// full, then one counted summary a second with its own seq; state changes
// never coalesced; identities bounded per worker; nothing counted is lost
// at a worker's end or when the log closes.
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/audit/audit_log.h"
#include "supervisor/audit/audit_log_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::audit_testing;
using namespace std::chrono_literals;

class CoalesceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.path() + "/audit.jsonl";
    AuditLog::Options o;
    o.clock = [this] { return now_; };
    auto log = AuditLog::open(path_, o);
    ASSERT_TRUE(log) << log.error().message;
    log_ = std::move(*log);
  }

  void violate(const std::string& worker, const std::string& syscall, int n, std::uint64_t arg = 0) {
    for (int i = 0; i < n; ++i) {
      SeccompViolation v;
      v.worker = worker;
      v.pid = 100 + i;  // varies: not part of the identity
      v.syscall = syscall;
      v.syscall_nr = syscall == "socket" ? 41 : 101;
      v.args[0] = arg + static_cast<std::uint64_t>(i);
      v.action = "errno EPERM";
      ASSERT_TRUE(log_->seccomp_violation(v));
    }
  }

  // Every line parsed; seq checked consecutive from 1.
  std::vector<Value> lines() const {
    std::vector<Value> out;
    for (const std::string& l : read_lines(path_)) {
      out.push_back(parse_line(l));
      EXPECT_EQ(out.back()["seq"].get<std::uint64_t>(), out.size()) << l;
    }
    return out;
  }
  std::size_t count(const std::string& event, const std::string& worker = "") const {
    std::size_t n = 0;
    for (const Value& v : lines()) {
      n += field(v, "event") == event && (worker.empty() || field(v, "worker") == worker) ? 1u : 0u;
    }
    return n;
  }
  std::vector<Value> summaries() const {
    std::vector<Value> out;
    for (const Value& v : lines()) {
      if (field(v, "event") == "coalesced") out.push_back(v);
    }
    return out;
  }

  TempDir dir_;
  std::string path_;
  std::chrono::steady_clock::time_point now_{};
  std::unique_ptr<AuditLog> log_;
};

TEST_F(CoalesceTest, PastTenIdenticalViolationsInASecondOneSummaryCountsTheRest) {
  violate("w", "socket", 25);
  EXPECT_EQ(count("seccomp_violation"), 10u);
  EXPECT_TRUE(summaries().empty());  // the window is still open
  now_ += 999ms;
  ASSERT_TRUE(log_->flush_due());
  EXPECT_TRUE(summaries().empty());
  now_ += 1ms;
  ASSERT_TRUE(log_->flush_due());
  auto s = summaries();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(field(s[0], "of"), "seccomp_violation");
  EXPECT_EQ(field(s[0], "worker"), "w");
  EXPECT_EQ(field(s[0], "syscall"), "socket");
  EXPECT_EQ(field(s[0], "syscall_nr"), "41");
  EXPECT_EQ(field(s[0], "action"), "errno EPERM");
  EXPECT_EQ(field(s[0], "count"), "15");
  EXPECT_NE(field(s[0], "first"), "<missing>");
  EXPECT_LE(field(s[0], "first"), field(s[0], "last"));
  EXPECT_FALSE(s[0].contains("args"));  // details of one event are not a summary's
}

TEST_F(CoalesceTest, WhileTheFloodLastsOnlyOneSummaryASecond) {
  violate("w", "socket", 11);  // 10 written, 1 counted
  for (int second = 1; second <= 5; ++second) {
    now_ += 1s;
    violate("w", "socket", 1000);  // closes the last window, then all counted
  }
  now_ += 1s;
  ASSERT_TRUE(log_->flush_due());
  EXPECT_EQ(count("seccomp_violation"), 10u);
  auto s = summaries();
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(field(s[0], "count"), "1");
  for (std::size_t i = 1; i < s.size(); ++i) EXPECT_EQ(field(s[i], "count"), "1000");
  // A quiet second ends the flood: the next violation is written in full.
  now_ += 1s;
  ASSERT_TRUE(log_->flush_due());
  violate("w", "socket", 1);
  EXPECT_EQ(count("seccomp_violation"), 11u);
  EXPECT_EQ(summaries().size(), 6u);
}

TEST_F(CoalesceTest, IdentitiesWorkersAndTypesAreCoalescedApart) {
  violate("a", "socket", 12);
  violate("a", "ptrace", 12);
  violate("b", "socket", 12);
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(log_->call_denied("a", 7, "fs.Directory", "List", "outside the grant's rights"));
    ASSERT_TRUE(log_->call_denied("a", 8, "fs.Directory", "List", "outside the grant's rights"));
  }
  ASSERT_TRUE(log_->flush_coalesced("a"));
  EXPECT_EQ(count("seccomp_violation"), 30u);
  EXPECT_EQ(count("call_denied"), 20u);
  auto s = summaries();
  ASSERT_EQ(s.size(), 4u);  // a's four keys; b's window is still open
  for (const Value& v : s) {
    EXPECT_EQ(field(v, "worker"), "a");
    EXPECT_EQ(field(v, "count"), "2");
  }
  log_.reset();  // closing the log reports b's too
  EXPECT_EQ(count("coalesced", "b"), 1u);
}

TEST_F(CoalesceTest, StateChangesAreNeverCoalesced) {
  violate("w", "socket", 100);
  const std::string rights[] = {"Get"};
  for (int i = 0; i < 100; ++i) {
    const auto id = static_cast<std::uint64_t>(i + 1);
    ASSERT_TRUE(log_->grant_created(id, "w", "capsa.Bootstrap", GrantOrigin::kPolicy, rights));
    ASSERT_TRUE(log_->port_transferred(id, "supervisor", "w"));
    ASSERT_TRUE(log_->revoked(id, "w", "operator"));
    ASSERT_TRUE(log_->released(id, "w", "holder exited"));
    ASSERT_TRUE(log_->bad_message("w", id, "not an envelope", "close_port"));
    ASSERT_TRUE(log_->event("worker_killed", AuditFields().str("worker", "w").str("reason", "x")));
  }
  for (const char* e : {"grant_created", "port_transferred", "revoked", "released", "bad_message",
                        "worker_killed"}) {
    EXPECT_EQ(count(e), 100u) << e;
  }
  // A bad message that was only answered is a refusal like a denial.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(log_->bad_message("w", 1, "not an envelope", "reply_error"));
  EXPECT_EQ(count("bad_message"), 110u);
}

TEST_F(CoalesceTest, PastTheIdentityBoundFurtherOnesShareOneKey) {
  // A worker choosing a new name for every refused Get.
  for (int name = 0; name < 200; ++name) {
    for (int i = 0; i < 11; ++i) {
      ASSERT_TRUE(log_->call_denied("w", 1, "capsa.Bootstrap", "Get",
                                    "not granted: 'n" + std::to_string(name) + "'"));
    }
  }
  ASSERT_TRUE(log_->flush_coalesced("w"));
  // 64 identities: 10 each in full; the other 136 share one key: 10 in full.
  EXPECT_EQ(count("call_denied"), (kMaxCoalesceKeysPerWorker + 1) * 10);
  auto s = summaries();
  ASSERT_EQ(s.size(), kMaxCoalesceKeysPerWorker + 1);
  std::uint64_t counted = 0;
  for (const Value& v : s) counted += std::stoull(field(v, "count"));
  EXPECT_EQ(counted + count("call_denied"), 200u * 11u);  // nothing lost
  auto various = std::find_if(s.begin(), s.end(), [](const Value& v) { return v.contains("various"); });
  ASSERT_NE(various, s.end());
  EXPECT_EQ(field(*various, "various"), "true");
  EXPECT_EQ(field(*various, "reason"), "<missing>");
  EXPECT_EQ(field(*various, "count"), std::to_string(136 * 11 - 10));
}

TEST_F(CoalesceTest, ZeroTurnsCoalescingOff) {
  AuditLog::Options o;
  o.coalesce_after = 0;
  auto log = AuditLog::open(dir_.path() + "/plain.jsonl", o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*log)->call_denied("w", 1, "i", "m", "r"));
  }
  log->reset();
  EXPECT_EQ(read_lines(dir_.path() + "/plain.jsonl").size(), 51u);
}

}  // namespace
}  // namespace capsa::supervisor
