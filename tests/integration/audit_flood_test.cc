// A bounded audit log with real sandboxed workers (it_worker.cc): a
// worker looping on a refused syscall is killed per on_violation_flood with
// the exact audited verdict, its lines stay few and the log small, and a
// neighbour keeps being served; with "report" it keeps running and its
// violations are coalesced; a flood of denied calls is coalesced with
// nothing lost from the counts. Every line parses and seq is consecutive.
// Runs as root and as uid 65534.
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/integration/sandboxed_supervisor.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;
using Json = nlohmann::json;

class AuditFloodTest : public SandboxedSupervisorTest {
 protected:
  void SetUp() override {
    SandboxedSupervisorTest::SetUp();
    root_ = checkout_.make_dir("served");
  }

  policy::WorkerBuilder& flooder(policy::PolicyBuilder& b, const std::string& mode, long n) {
    auto& w = b.worker("flooder").program(it_worker_).arg(mode).arg(std::to_string(n));
    w.grant("log", "log.Sink").all_rights();
    w.grant("dir", "fs.Directory").right("Stat").constraint("root", root_);
    return w;
  }
  // The neighbour: 300 List calls on its own directory grant.
  void neighbour(policy::PolicyBuilder& b) {
    auto& w = b.worker("steady").program(it_worker_).arg("calls").arg("300");
    w.grant("log", "log.Sink").all_rights();
    w.grant("dir", "fs.Directory").all_rights().constraint("root", root_);
  }

  void run(const std::function<void(policy::PolicyBuilder&)>& fill) {
    make(fill);
    start_and_run(*sup_);
  }

  // Every line parsed, seq consecutive from 1 (one run).
  std::vector<Json> audit() const {
    std::vector<Json> out;
    for (const std::string& l : audit_lines(audit_path_)) {
      out.push_back(Json::parse(l, nullptr, false));
      EXPECT_TRUE(out.back().is_object()) << l;
      EXPECT_EQ(out.back().value("seq", 0u), out.size()) << l;
    }
    return out;
  }
  static std::size_t count(const std::vector<Json>& a, const std::string& event,
                           const std::string& worker) {
    std::size_t n = 0;
    for (const Json& v : a) n += v.value("event", "") == event && v.value("worker", "") == worker ? 1u : 0u;
    return n;
  }
  // What the coalesced summaries of `of` for `worker` counted.
  static std::uint64_t coalesced(const std::vector<Json>& a, const std::string& of,
                                 const std::string& worker) {
    std::uint64_t n = 0;
    for (const Json& v : a) {
      if (v.value("event", "") == "coalesced" && v.value("of", "") == of && v.value("worker", "") == worker) {
        n += v.value("count", std::uint64_t{0});
      }
    }
    return n;
  }
  std::uint64_t audit_bytes() const {
    struct stat st{};
    EXPECT_EQ(::stat(audit_path_.c_str(), &st), 0);
    return static_cast<std::uint64_t>(st.st_size);
  }

  std::string root_;
};

// Without the flood action a 5 s socket() loop wrote about 65 MB of audit
// lines (issue 12). Now the default policy kills it at the 101st violation
// in a second.
TEST_F(AuditFloodTest, AViolationFloodIsKilledWithItsVerdictAndTheLogStaysSmall) {
  run([&](auto& b) {
    flooder(b, "violations", 5);
    neighbour(b);
  });
  const WorkerView f = worker_view(*sup_, "flooder");
  ASSERT_TRUE(f.exit);
  EXPECT_EQ(f.exit->kind, sandbox::ExitKind::kKilled);
  EXPECT_GT(f.violations, 100u);
  EXPECT_FALSE(log_.said_line("flooder", "violations: socket opened"));
  auto a = audit();
  ASSERT_EQ(count(a, "worker_killed", "flooder"), 1u);
  for (const Json& v : a) {
    if (v.value("event", "") == "worker_killed") {
      EXPECT_EQ(v.value("reason", ""), "violation flood: more than 100 seccomp violations in a second");
    }
    if (v.value("event", "") == "worker_exited" && v.value("worker", "") == "flooder") {
      EXPECT_EQ(v.value("status", ""), "killed");
    }
  }
  // 10 lines in full, the rest counted: the audit's counts add up to the
  // supervisor's.
  EXPECT_EQ(count(a, "seccomp_violation", "flooder"), 10u);
  EXPECT_EQ(count(a, "seccomp_violation", "flooder") + coalesced(a, "seccomp_violation", "flooder"),
            f.violations);
  EXPECT_LT(audit_bytes(), 16u * 1024u) << audit_bytes();
  // The neighbour was served throughout.
  EXPECT_TRUE(log_.said_line("steady", "calls: ok=300 failed=0"));
  const WorkerView s = worker_view(*sup_, "steady");
  ASSERT_TRUE(s.exit);
  EXPECT_EQ(s.exit->kind, sandbox::ExitKind::kExited);
  EXPECT_EQ(s.exit->code, 0);
}

TEST_F(AuditFloodTest, ReportedTheFloodRunsOnAndIsCoalescedOneLineASecond) {
  run([&](auto& b) { flooder(b, "violations", 3).on_violation_flood(policy::ViolationFloodAction::kReport); });
  const WorkerView f = worker_view(*sup_, "flooder");
  ASSERT_TRUE(f.exit);
  EXPECT_EQ(f.exit->kind, sandbox::ExitKind::kExited);
  EXPECT_EQ(f.exit->code, 0);
  EXPECT_GT(f.violations, 1000u);
  auto a = audit();
  EXPECT_EQ(count(a, "violation_flood", "flooder"), 1u);
  EXPECT_EQ(count(a, "worker_killed", "flooder"), 0u);
  EXPECT_EQ(count(a, "seccomp_violation", "flooder"), 10u);
  EXPECT_EQ(count(a, "seccomp_violation", "flooder") + coalesced(a, "seccomp_violation", "flooder"),
            f.violations);
  // About one summary per second of flood (3 s, plus the one at its end).
  EXPECT_GE(count(a, "coalesced", "flooder"), 2u);
  EXPECT_LE(count(a, "coalesced", "flooder"), 6u);
  EXPECT_LT(audit_bytes(), 16u * 1024u) << audit_bytes();
}

TEST_F(AuditFloodTest, ADenialFloodIsCoalescedAndEveryDenialCounted) {
  run([&](auto& b) {
    flooder(b, "denials", 500);
    neighbour(b);
  });
  EXPECT_TRUE(log_.said_line("flooder", "denials: denied=500 other=0"));
  const WorkerView f = worker_view(*sup_, "flooder");
  EXPECT_EQ(f.denials, 500u);
  auto a = audit();
  EXPECT_EQ(count(a, "call_denied", "flooder"), 10u);
  EXPECT_EQ(coalesced(a, "call_denied", "flooder"), 490u);
  for (const Json& v : a) {
    if (v.value("event", "") == "coalesced" && v.value("worker", "") == "flooder") {
      EXPECT_EQ(v.value("interface", ""), "fs.Directory");
      EXPECT_EQ(v.value("method", ""), "List");
    }
  }
  EXPECT_TRUE(log_.said_line("steady", "calls: ok=300 failed=0"));
}

// The flood stops while the worker runs on: the supervisor's once-a-second
// tick writes the summary then, not only at the worker's end.
TEST_F(AuditFloodTest, AFloodThatStoppedIsSummarisedByTheTick) {
  run([&](auto& b) { flooder(b, "denials-then-quiet", 50); });
  auto a = audit();
  std::size_t summary = 0, later = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].value("event", "") == "coalesced" && a[i].value("method", "") == "List") summary = i;
    if (a[i].value("event", "") == "call_denied" && a[i].value("method", "") == "Get") later = i;
  }
  ASSERT_NE(summary, 0u);
  ASSERT_NE(later, 0u);
  EXPECT_LT(summary, later);
  EXPECT_EQ(coalesced(a, "call_denied", "flooder"), 40u);
}

}  // namespace
}  // namespace capsa::supervisor
