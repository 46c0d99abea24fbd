// A worker's stdout and stderr through the supervisor (output:
// "supervisor", supervisor/worker_output.h), with real sandboxed workers
// (it_worker.cc): lines arrive sanitized, split at the documented bound,
// at their stream's level; past limits.output_bytes they are dropped,
// counted and audited once, and the worker is never blocked. Runs as root
// and as uid 65534.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "supervisor/worker_output.h"
#include "tests/integration/sandboxed_supervisor.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

constexpr char kEscapes[] = "title\x1b]0;pwned\x07 red\x1b[31m bell\a cr\r\n";  // it_worker's
constexpr std::size_t kLongLine = 10000;

struct Line {
  LogLevel level;
  std::string text;
};

class WorkerOutputTest : public SandboxedSupervisorTest {
 protected:
  // One worker "w" running `it_worker output BYTES`.
  void run(std::uint64_t bytes, std::optional<std::uint64_t> budget = std::nullopt) {
    SupervisorOptions o;
    o.log_output = [this](std::string_view w, LogLevel level, std::string_view text) {
      if (w == "w") lines_.push_back({level, std::string(text)});
    };
    make(
        [&](policy::PolicyBuilder& b) {
          auto& w = b.worker("w").program(it_worker_).arg("output").arg(std::to_string(bytes));
          w.grant("log", "log.Sink").all_rights();
          if (budget) w.limit(policy::LimitKind::kOutputBytes, *budget);
        },
        std::move(o));
    start_and_run(*sup_);
    const WorkerView v = worker_view(*sup_, "w");
    ASSERT_TRUE(v.exit);
    EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited);
    EXPECT_EQ(v.exit->code, 0);
  }

  std::size_t count(LogLevel level, const std::string& text) const {
    std::size_t n = 0;
    for (const Line& l : lines_) n += l.level == level && l.text == text ? 1u : 0u;
    return n;
  }
  std::size_t count_prefix(const std::string& prefix) const {
    std::size_t n = 0;
    for (const Line& l : lines_) n += l.level == LogLevel::kInfo && l.text.starts_with(prefix) ? 1u : 0u;
    return n;
  }

  std::vector<Line> lines_;
};

TEST_F(WorkerOutputTest, LinesArriveSanitizedSplitAndAtTheirStreamsLevel) {
  run(2000);
  EXPECT_EQ(count_prefix("out 00000"), 20u);
  EXPECT_EQ(count(LogLevel::kInfo, "out 0000019 " + std::string(87, 'x')), 1u);
  // Every control character is U+FFFD; the CR of a CRLF ending is dropped.
  EXPECT_EQ(count(LogLevel::kInfo, "title\uFFFD]0;pwned\uFFFD red\uFFFD[31m bell\uFFFD cr"), 1u);
  // 10000 bytes: pieces of kMaxOutputLineBytes - 1 (utf8_cut looks one past).
  const std::size_t piece = kMaxOutputLineBytes - 1;
  EXPECT_EQ(count(LogLevel::kInfo, std::string(piece, 'L')), 2u);
  EXPECT_EQ(count(LogLevel::kInfo, std::string(kLongLine - 2 * piece, 'L')), 1u);
  EXPECT_EQ(count(LogLevel::kWarning, "err line"), 1u);
  EXPECT_EQ(count(LogLevel::kInfo, "output: done"), 1u);  // its log.Sink line
  EXPECT_EQ(count_lines_with(audit_lines(audit_path_), {"\"output_dropped\""}), 0u);
}

// Which stream is read first is the kernel's choice, so the split between
// logged and dropped varies by a line; their sums never do.
TEST_F(WorkerOutputTest, PastTheBudgetLinesAreDroppedCountedAndAuditedOnce) {
  constexpr std::uint64_t kBudget = 1000, kBytes = 5000;
  run(kBytes, kBudget);
  const std::uint64_t total = kBytes + (sizeof kEscapes - 1) + kLongLine + 1 + 9;
  const std::uint64_t total_lines = kBytes / 100 + 1 + 3 + 1;  // the long line is 3 pieces
  auto audit = audit_lines(audit_path_);
  ASSERT_EQ(count_lines_with(audit, {"\"output_dropped\"", "\"worker\":\"w\""}), 1u);
  for (const std::string& l : audit) {
    if (l.find("\"output_dropped\"") == std::string::npos) continue;
    auto j = nlohmann::json::parse(l);
    const auto logged = j["logged_bytes"].get<std::uint64_t>();
    EXPECT_EQ(j["budget_bytes"].get<std::uint64_t>(), kBudget);
    EXPECT_LE(logged, kBudget);
    EXPECT_GT(logged, kBudget - 100);
    EXPECT_EQ(logged + j["dropped_bytes"].get<std::uint64_t>(), total);
    std::size_t output_lines = 0;
    for (const Line& x : lines_) output_lines += x.text != "output: done" ? 1u : 0u;
    EXPECT_EQ(output_lines + j["dropped_lines"].get<std::uint64_t>(), total_lines);
    EXPECT_EQ(j["abandoned"].get<bool>(), false);
  }
  EXPECT_EQ(count_prefix("out 0000010"), 0u);  // the 11th line is past the budget either way
  // The worker was never blocked: it finished and said so.
  EXPECT_EQ(count(LogLevel::kInfo, "output: done"), 1u);
  // The output_dropped line comes before the worker's exit.
  auto at = [&](std::string_view ev) {
    return std::find_if(audit.begin(), audit.end(),
                        [&](const std::string& l) { return l.find(ev) != std::string::npos; });
  };
  EXPECT_LT(at("\"output_dropped\""), at("\"worker_exited\""));
}

TEST_F(WorkerOutputTest, AZeroBudgetDropsEverything) {
  run(300, 0);
  for (const Line& l : lines_) EXPECT_EQ(l.text, "output: done");
  EXPECT_EQ(count_lines_with(audit_lines(audit_path_), {"\"output_dropped\"", "\"logged_bytes\":0,"}), 1u);
}

TEST(Utf8Cut, NeverSplitsASequence) {
  EXPECT_EQ(utf8_cut("abcdef", 4), 4u);
  EXPECT_EQ(utf8_cut("ab\xc3\xa9z", 3), 2u);          // é straddles byte 3
  EXPECT_EQ(utf8_cut("a\xf0\x9f\x98\x80z", 3), 1u);   // a 4-byte emoji straddles
  EXPECT_EQ(utf8_cut("a\xf0\x9f\x98\x80z", 5), 5u);   // it ends at 5
  EXPECT_EQ(utf8_cut("\x80\x80\x80\x80\x80", 4), 4u);  // garbage: cut where asked
  EXPECT_EQ(utf8_cut("abc", 5), 3u);
}

}  // namespace
}  // namespace capsa::supervisor
