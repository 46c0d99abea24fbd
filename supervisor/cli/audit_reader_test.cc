// The audit log reader against logs the real writer made (rotation
// included), and against the damage a crash or a stranger can leave.
#include "supervisor/cli/audit_reader.h"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "supervisor/audit/audit_log.h"
#include "tests/support/temp_dir.h"

namespace capsa::cli {
namespace {

using supervisor::AuditFields;
using supervisor::AuditLog;
using capsa::testing::TempDir;

std::vector<AuditRecord> read_all(const std::vector<std::string>& files, ReadStats& stats,
                                  const AuditFilter& filter = {}) {
  std::vector<AuditRecord> out;
  auto r = read_audit_files(files, [&](AuditRecord& rec) {
    if (filter.matches(rec)) out.push_back(rec);
    return true;
  }, stats);
  EXPECT_TRUE(r) << r.error().to_string();
  return out;
}

TEST(AuditReader, Rfc3339AndDurations) {
  EXPECT_EQ(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), 1500);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-29T17:00:00.123Z"), 1795971600123);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-29T19:00:00+02:00"), 1795971600000);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-29T17:00:00"), std::nullopt);  // no zone
  EXPECT_EQ(parse_rfc3339_ms("2026-13-29T17:00:00Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-29T17:00:00.Z"), std::nullopt);
  EXPECT_EQ(parse_rfc3339_ms("2026-11-29T17:00:00Zjunk"), std::nullopt);
  const std::int64_t now = 1'000'000'000;
  EXPECT_EQ(parse_time_arg("90s", now).value(), now - 90'000);
  EXPECT_EQ(parse_time_arg("15m", now).value(), now - 900'000);
  EXPECT_EQ(parse_time_arg("1h", now).value(), now - 3'600'000);
  EXPECT_EQ(parse_time_arg("2d", now).value(), now - 172'800'000);
  for (const char* bad : {"", "h", "1y", "-1h", "1.5h", "99999999999999999999d", "yesterday"}) {
    auto r = parse_time_arg(bad, now);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("RFC 3339"), std::string::npos) << r.error().message;
  }
}

// Two runs in one file, then enough lines to rotate twice: every line comes
// back once, in the order written, each with its run; seq continues across
// the rotations within a run.
TEST(AuditReader, ReadsRotatedFilesOldestFirst) {
  TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  std::string run1, run2;
  {
    auto log = AuditLog::open(path);
    ASSERT_TRUE(log);
    run1 = (*log)->run_id();
    ASSERT_TRUE((*log)->event("first", AuditFields().str("worker", "a")));
  }
  {
    AuditLog::Options o;
    o.max_bytes = supervisor::kMinAuditMaxBytes;
    o.keep = 3;
    auto log = AuditLog::open(path, o);
    ASSERT_TRUE(log);
    run2 = (*log)->run_id();
    const std::string pad(1000, 'p');
    for (int i = 0; i < 150; ++i) {
      ASSERT_TRUE((*log)->event("tick", AuditFields().num("i", i).str("pad", pad)));
    }
  }
  const auto files = audit_files_of(path);
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0], path + ".2");
  EXPECT_EQ(files[1], path + ".1");
  EXPECT_EQ(files[2], path);
  ReadStats stats;
  auto recs = read_all(files, stats);
  EXPECT_EQ(stats.bad, 0u);
  ASSERT_EQ(recs.size(), 155u);  // 2 + audit_opened + 150 ticks + 2 audit_rotated
  EXPECT_EQ(recs[0].event, "audit_opened");
  EXPECT_EQ(recs[0].run, run1);
  EXPECT_EQ(recs[1].event, "first");
  int ticks = 0;
  for (std::size_t i = 2; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i].run, run2);
    EXPECT_EQ(recs[i].seq, i - 1);
    if (recs[i].event == "tick") {
      EXPECT_EQ(recs[i].line["i"], ticks++);
    }
  }
  EXPECT_EQ(ticks, 150);
  EXPECT_EQ(audit_files_of(dir.path() + "/none.jsonl"), std::vector<std::string>{});
}

TEST(AuditReader, TornAndHostileLinesAreCountedNotFatal) {
  TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  {
    std::ofstream f(path);
    f << R"({"ts":"2026-11-29T17:00:00.000Z","run":"r1","seq":1,"event":"a","worker":"w"})" << "\n";
    f << R"({"ts":"2026-11-29T17:00:00.001Z","run":"r1","seq":2,"event":"b","wor)" << "\n";  // torn
    f << "\n";
    f << "[1,2,3]\n";
    f << R"({"ts":"not a time","event":"c"})" << "\n";
    f << std::string(kMaxAuditLineBytes + 10, 'x') << "\n";
    f << R"({"ts":"2026-11-29T17:00:01.000Z","run":"r1","seq":3,"event":"d","holder":"w"})";  // no \n
  }
  ReadStats stats;
  auto recs = read_all({path}, stats);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].event, "a");
  EXPECT_EQ(recs[1].event, "d");
  EXPECT_EQ(recs[1].line_no, 7u);
  EXPECT_EQ(stats.bad, 4u);
  EXPECT_EQ(stats.first_bad, path + ":2");
  EXPECT_EQ(stats.lines, 7u);
  ReadStats missing;
  auto r = read_audit_files({dir.path() + "/gone"}, [](AuditRecord&) { return true; }, missing);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNotFound);
}

TEST(AuditReader, FilterByTimeWorkerEventGrantAndRun) {
  auto rec = [](std::string_view text) { return parse_audit_line(text).value(); };
  const AuditRecord deleg = rec(
      R"({"ts":"2026-11-29T17:00:00.000Z","run":"abc123","seq":5,"event":"port_delegated","grant":9,"parent":4,"from":"a","to":"b"})");
  const AuditRecord coal = rec(
      R"({"ts":"2026-11-29T17:00:02.000Z","run":"abc123","seq":6,"event":"coalesced","of":"call_denied","worker":"c","count":40})");
  const AuditRecord xfer = rec(
      R"({"ts":"2026-11-29T17:00:03.000Z","run":"def","seq":1,"event":"port_transferred","grant":2,"from":"supervisor","to":"a"})");
  EXPECT_EQ(deleg.workers(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(xfer.workers(), std::vector<std::string>{"a"});
  EXPECT_EQ(deleg.grants(), (std::vector<std::uint64_t>{9, 4}));

  AuditFilter f;
  f.workers = {"b"};
  EXPECT_TRUE(f.matches(deleg));
  EXPECT_FALSE(f.matches(coal));
  f = {};
  f.events = {"call_denied"};
  EXPECT_TRUE(f.matches(coal));  // a coalesced line counts as what it summarises
  EXPECT_FALSE(f.matches(deleg));
  f = {};
  f.grant = 4;
  EXPECT_TRUE(f.matches(deleg));
  EXPECT_FALSE(f.matches(xfer));
  f = {};
  f.run = "abc";
  EXPECT_TRUE(f.matches(coal));
  EXPECT_FALSE(f.matches(xfer));
  f = {};
  f.since_ms = coal.ts_ms;
  f.until_ms = xfer.ts_ms;
  EXPECT_FALSE(f.matches(deleg));
  EXPECT_TRUE(f.matches(coal));
  EXPECT_FALSE(f.matches(xfer));  // until is exclusive
}

// -f: lines appended later, a partial line completed later, and a rotation
// in between; nothing is lost or read twice.
TEST(AuditReader, FollowerSeesAppendsAndRotation) {
  TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  auto line = [](int seq) {
    return R"({"ts":"2026-11-29T17:00:00.000Z","run":"r","seq":)" + std::to_string(seq) + R"(,"event":"e"})";
  };
  { std::ofstream(path) << line(1) << "\n"; }
  auto f = AuditFollower::open(path, /*from_start=*/false);
  ASSERT_TRUE(f) << f.error().to_string();
  std::vector<std::uint64_t> seen;
  ReadStats stats;
  auto collect = [&](AuditRecord& r) {
    seen.push_back(r.seq);
    return true;
  };
  ASSERT_TRUE(f->poll(collect, stats));
  EXPECT_TRUE(seen.empty());  // it started at the end
  {
    std::ofstream out(path, std::ios::app);
    out << line(2) << "\n" << line(3).substr(0, 20);
  }
  ASSERT_TRUE(f->poll(collect, stats));
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{2}));
  {
    std::ofstream out(path, std::ios::app);
    out << line(3).substr(20) << "\n" << line(4) << "\n";
  }
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  { std::ofstream(path) << line(5) << "\n"; }
  std::string last_text;
  ASSERT_TRUE(f->poll(
      [&](AuditRecord& r) {
        last_text = r.text;
        return collect(r);
      },
      stats));
  EXPECT_EQ(seen, (std::vector<std::uint64_t>{2, 3, 4, 5}));
  EXPECT_EQ(last_text, line(5));  // the line as written, for `capsa log --json`
  EXPECT_EQ(stats.bad, 0u);
}

}  // namespace
}  // namespace capsa::cli
