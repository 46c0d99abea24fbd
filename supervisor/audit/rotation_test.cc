// The audit log's size cap (audit_file.h): rotation between lines only (no
// line is ever cut across files), `keep` files kept, seq consecutive across
// them, a line larger than the cap in a file of its own, a failed rotation
// written where the lines go on, and the options checked.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/audit/audit_log.h"
#include "supervisor/audit/audit_log_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::audit_testing;

constexpr std::uint64_t kCap = kMinAuditMaxBytes;

std::uint64_t file_size(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

class RotationTest : public ::testing::Test {
 protected:
  std::unique_ptr<AuditLog> open(std::uint32_t keep) {
    AuditLog::Options o;
    o.max_bytes = kCap;
    o.keep = keep;
    auto log = AuditLog::open(path_, o);
    EXPECT_TRUE(log) << log.error().message;
    return log ? std::move(*log) : nullptr;
  }
  // `n` events of about 1 KiB each.
  static void fill(AuditLog& log, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(log.event("filler", AuditFields().num("i", i).str("text", std::string(1000, 'x'))));
    }
  }
  // The lines of `path`, each checked to be one whole JSON object.
  static std::vector<Value> parsed(const std::string& path) {
    const std::string all = read_all(path);
    EXPECT_TRUE(all.empty() || all.back() == '\n') << path << " ends inside a line";
    std::vector<Value> out;
    for (const std::string& l : read_lines(path)) out.push_back(parse_line(l));
    return out;
  }

  TempDir dir_;
  std::string path_ = dir_.path() + "/audit.jsonl";
};

TEST_F(RotationTest, FilesStayUnderTheCapWithWholeLinesAndSeqRunsOnAcrossThem) {
  auto log = open(2);
  ASSERT_NE(log, nullptr);
  fill(*log, 300);  // about 4.6 caps: three rotations, the oldest file dropped
  log.reset();
  EXPECT_FALSE(std::filesystem::exists(path_ + ".3"));
  std::vector<Value> all;
  for (const std::string& p : {path_ + ".2", path_ + ".1", path_}) {
    ASSERT_TRUE(std::filesystem::exists(p)) << p;
    EXPECT_LE(file_size(p), kCap) << p;
    auto lines = parsed(p);
    ASSERT_FALSE(lines.empty()) << p;
    // Each file but the first of the run starts by saying where the lines before it went.
    EXPECT_EQ(field(lines.front(), "event"), "audit_rotated") << p;
    EXPECT_EQ(field(lines.front(), "previous"), path_ + ".1");
    EXPECT_EQ(field(lines.front(), "keep"), "2");
    all.insert(all.end(), lines.begin(), lines.end());
  }
  for (std::size_t i = 1; i < all.size(); ++i) {
    EXPECT_EQ(all[i]["seq"].get<std::uint64_t>(), all[i - 1]["seq"].get<std::uint64_t>() + 1);
  }
  // The last filler is the last line: nothing was lost at the end.
  EXPECT_EQ(field(all.back(), "i"), "299");
}

TEST_F(RotationTest, ALineLargerThanTheCapGetsAFileOfItsOwn) {
  auto log = open(3);
  ASSERT_NE(log, nullptr);
  fill(*log, 10);
  const std::vector<std::string> big(100, std::string(1000, 'b'));  // about 100 KiB
  ASSERT_TRUE(log->event("big", AuditFields().strs("parts", big)));
  fill(*log, 1);
  log.reset();
  auto holder = parsed(path_ + ".1");
  ASSERT_EQ(holder.size(), 2u);
  EXPECT_EQ(field(holder[0], "event"), "audit_rotated");
  EXPECT_EQ(field(holder[1], "event"), "big");
  EXPECT_GT(file_size(path_ + ".1"), kCap);
  auto last = parsed(path_);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(field(last[1], "event"), "filler");
  EXPECT_EQ(field(parsed(path_ + ".2").front(), "event"), "audit_opened");
}

TEST_F(RotationTest, AFailedRotationIsWrittenAndTheLinesGoOnInTheSameFile) {
  // A non-empty directory where PATH.1 should go: rename(2) refuses it
  // (as root too).
  std::filesystem::create_directories(path_ + ".1/occupied");
  auto log = open(1);
  ASSERT_NE(log, nullptr);
  fill(*log, 200);  // about 3 caps
  log.reset();
  auto lines = parsed(path_);
  std::size_t fillers = 0, failed = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["seq"].get<std::uint64_t>(), i + 1);
    fillers += field(lines[i], "event") == "filler" ? 1u : 0u;
    failed += field(lines[i], "event") == "audit_rotate_failed" ? 1u : 0u;
  }
  EXPECT_EQ(fillers, 200u);
  // One attempt per cap's worth of lines, not one per line.
  EXPECT_GE(failed, 1u);
  EXPECT_LE(failed, file_size(path_) / kCap + 1);
}

TEST_F(RotationTest, AFileAlreadyOverTheCapRotatesAtTheFirstLine) {
  { std::ofstream(path_) << std::string(kCap, '\n'); }
  auto log = open(1);
  ASSERT_NE(log, nullptr);
  log.reset();
  EXPECT_EQ(file_size(path_ + ".1"), kCap);
  auto lines = parsed(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(field(lines[0], "event"), "audit_rotated");
  EXPECT_EQ(field(lines[1], "event"), "audit_opened");
}

TEST_F(RotationTest, OptionsOutOfRangeAreRefused) {
  AuditLog::Options o;
  o.max_bytes = kMinAuditMaxBytes - 1;
  EXPECT_FALSE(AuditLog::open(path_, o));
  o.max_bytes = kMinAuditMaxBytes;
  o.keep = 0;
  EXPECT_FALSE(AuditLog::open(path_, o));
  o.keep = kMaxAuditKeep + 1;
  EXPECT_FALSE(AuditLog::open(path_, o));
  o.max_bytes = 0;  // no cap: keep is not used
  EXPECT_TRUE(AuditLog::open(path_, o));
}

}  // namespace
}  // namespace capsa::supervisor
