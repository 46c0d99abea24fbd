// `capsa log` as an auditor runs it: the real binary on a log written by
// real `capsa run`s of the example policies (the hostile plugin, then
// wordcount, in one file). Every filter's output is compared with what an
// independent reading of the file (nlohmann-json, the jq way) selects.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "supervisor/cli/test_util.h"
#include "tests/support/temp_dir.h"

namespace {

using capsa::cli::testing::Ran;
using capsa::cli::testing::slurp;
using capsa::testing::TempDir;
using json = nlohmann::json;

// The jq-equivalent selection, written without the parser under test.
struct Select {
  std::vector<std::string> workers, events;
  std::optional<std::uint64_t> grant;
  std::string run, since, until;  // since/until: ts strings (fixed-width UTC sorts as time)

  Select w(std::vector<std::string> v) const { auto c = *this; c.workers = std::move(v); return c; }
  Select e(std::vector<std::string> v) const { auto c = *this; c.events = std::move(v); return c; }
  Select g(std::uint64_t v) const { auto c = *this; c.grant = v; return c; }
  Select r(std::string v) const { auto c = *this; c.run = std::move(v); return c; }
  Select t(std::string a, std::string b) const { auto c = *this; c.since = std::move(a); c.until = std::move(b); return c; }

  bool operator()(const json& j) const {
    auto s = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
    const std::string ts = s("ts");
    if (!since.empty() && ts < since) return false;
    if (!until.empty() && ts >= until) return false;
    if (!s("run").starts_with(run)) return false;
    if (!events.empty()) {
      bool any = false;
      for (const auto& e : events) any |= s("event") == e || (s("event") == "coalesced" && s("of") == e);
      if (!any) return false;
    }
    if (!workers.empty()) {
      bool any = false;
      for (const char* k : {"worker", "holder", "from", "to"}) {
        for (const auto& w : workers) any |= s(k) == w;
      }
      if (!any) return false;
    }
    if (grant) {
      bool any = false;
      for (const char* k : {"grant", "parent_grant", "parent", "client_grant", "server_grant"}) {
        any |= j.contains(k) && j[k].is_number_unsigned() && j[k].get<std::uint64_t>() == *grant;
      }
      if (!any) return false;
    }
    return true;
  }
};

class CliLogTest : public ::testing::Test {
 protected:
  // Two real runs into one log, once for the suite (they take ~1 s).
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    log_ = dir_->path() + "/audit.jsonl";
    for (const char* policy : {"hostile.json", "wordcount.json"}) {
      Ran r = capsa::cli::testing::run(
          {CAPSA_BINARY, "run", "-q", "--control", "none", "--audit-log", log_, "--define",
           std::string("bin=") + CAPSA_PLUGIN_DIR, std::string(CAPSA_EXAMPLES_DIR) + "/" + policy},
          dir_->path(), /*merged=*/true);
      runs_status_.push_back(r.status);
    }
    std::ifstream in(log_);
    for (std::string l; std::getline(in, l);) {
      lines_.push_back(l);
      parsed_.push_back(json::parse(l));
    }
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    ASSERT_EQ(runs_status_, (std::vector<int>{128 + SIGKILL, 0}));  // hostile is killed, wordcount ends
    ASSERT_GT(lines_.size(), 20u);
  }

  static Ran capsa_log(std::vector<std::string> args, const TempDir& tmp) {
    args.insert(args.begin(), {CAPSA_BINARY, "log"});
    return capsa::cli::testing::run(args, tmp.path());
  }
  // The lines `sel` picks, as the file has them.
  static std::string expected(const Select& sel, std::size_t* n = nullptr) {
    std::string out;
    std::size_t count = 0;
    for (std::size_t i = 0; i < lines_.size(); ++i) {
      if (sel(parsed_[i])) {
        out += lines_[i] + "\n";
        ++count;
      }
    }
    if (n) *n = count;
    return out;
  }
  static std::vector<std::string> run_ids() {
    std::vector<std::string> ids;
    for (const auto& j : parsed_) {
      auto r = j.value("run", "");
      if (ids.empty() || ids.back() != r) ids.push_back(r);
    }
    return ids;
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string log_;
  static inline std::vector<int> runs_status_;
  static inline std::vector<std::string> lines_;
  static inline std::vector<json> parsed_;
  TempDir tmp_;
};

TEST_F(CliLogTest, EachFilterPrintsExactlyTheLinesAnIndependentReadingSelects) {
  const auto runs = run_ids();
  ASSERT_EQ(runs.size(), 2u);
  ASSERT_EQ(runs[0].size(), 16u);
  const std::string mid_ts = parsed_[lines_.size() / 3]["ts"], late_ts = parsed_[2 * lines_.size() / 3]["ts"];
  struct Case {
    std::vector<std::string> args;
    Select sel;
    std::optional<std::size_t> exactly;  // what the runs are known to write
  };
  const std::vector<Case> cases = {
      {{}, Select(), lines_.size()},
      {{"--worker", "hostile", "--event", "call_denied"}, Select().w({"hostile"}).e({"call_denied"}), std::nullopt},
      {{"--event", "grant_created"}, Select().e({"grant_created"}), std::nullopt},
      {{"--worker", "hostile", "--event", "grant_created"}, Select().w({"hostile"}).e({"grant_created"}), 4u},
      {{"--worker", "wordcount", "--worker", "hostile", "--event", "worker_started,worker_exited"},
       Select().w({"wordcount", "hostile"}).e({"worker_started", "worker_exited"}),
       4u},
      {{"--event", "audit_opened"}, Select().e({"audit_opened"}), 2u},
      {{"--run", runs[1].substr(0, 6), "--grant", "2"}, Select().g(2).r(runs[1].substr(0, 6)), std::nullopt},
      {{"--run", runs[0]}, Select().r(runs[0]), std::nullopt},
      {{"--since", mid_ts, "--until", late_ts}, Select().t(mid_ts, late_ts), std::nullopt},
  };
  for (const auto& c : cases) {
    auto args = c.args;
    args.push_back("--json");
    args.push_back(log_);
    Ran r = capsa_log(args, tmp_);
    std::size_t n = 0;
    const std::string want = expected(c.sel, &n);
    SCOPED_TRACE(::testing::PrintToString(c.args));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_GT(n, 0u);  // every case selects something, so it can tell filters apart
    if (c.exactly) {
      EXPECT_EQ(n, *c.exactly);
    }
    EXPECT_EQ(r.out, want);
  }
  // The call_denied lines name the worker and the List it was refused.
  std::size_t denied = 0;
  expected(Select().w({"hostile"}).e({"call_denied"}), &denied);
  EXPECT_LT(denied, lines_.size());
}

TEST_F(CliLogTest, SummaryCountsPerEventAndWorkerAndGivesEachRunsFirstAndLastLine) {
  Ran r = capsa_log({"--summary", "--json", log_}, tmp_);
  ASSERT_EQ(r.status, 0) << r.err;
  const json s = json::parse(r.out);
  std::map<std::string, std::uint64_t> per_event;
  std::map<std::string, std::map<std::string, std::uint64_t>> per_worker;
  std::uint64_t events = 0;
  for (const auto& j : parsed_) {
    std::string e = j["event"];
    std::uint64_t n = 1;
    if (e == "coalesced") {
      e = j["of"];
      n = j["count"];
    }
    events += n;
    per_event[e] += n;
    std::vector<std::string> ws;
    for (const char* k : {"worker", "holder", "from", "to"}) {
      std::string w = j.value(k, "");
      if (w.empty() || ((k == std::string("from") || k == std::string("to")) && w == "supervisor")) continue;
      if (std::find(ws.begin(), ws.end(), w) == ws.end()) ws.push_back(w);
    }
    if (ws.empty()) ws.push_back("-");
    for (const auto& w : ws) per_worker[w][e] += n;
  }
  EXPECT_EQ(s["lines"], lines_.size());
  EXPECT_EQ(s["events"], events);
  EXPECT_EQ(s["per_event"], json(per_event));
  EXPECT_EQ(s["per_worker"], json(per_worker));
  EXPECT_EQ(s["per_event"]["worker_started"], 2u);
  EXPECT_EQ(s["per_worker"]["hostile"]["grant_created"], 4u);
  const auto runs = run_ids();
  ASSERT_EQ(s["runs"].size(), 2u);
  EXPECT_EQ(s["runs"][0]["run"], runs[0]);
  EXPECT_EQ(s["runs"][0]["start"], parsed_.front()["ts"]);
  EXPECT_EQ(s["runs"][1]["run"], runs[1]);
  EXPECT_EQ(s["runs"][1]["end"], parsed_.back()["ts"]);
  EXPECT_EQ(s["runs"][0]["lines"].get<std::size_t>() + s["runs"][1]["lines"].get<std::size_t>(), lines_.size());

  // The table says the same; with a filter, only what matches is counted
  // while a run keeps its own first and last line.
  Ran t = capsa_log({"--summary", "--worker", "hostile", log_}, tmp_);
  ASSERT_EQ(t.status, 0) << t.err;
  std::size_t hostile_lines = 0;
  expected(Select().w({"hostile"}), &hostile_lines);
  EXPECT_EQ(t.out.rfind(std::to_string(hostile_lines) + " lines in 1 run", 0), 0u) << t.out;
  EXPECT_NE(t.out.find("\n" + runs[0] + "  " + parsed_.front()["ts"].get<std::string>() + "  "),
            std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("\nhostile  grant_created      4\n"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find("wordcount"), std::string::npos) << t.out;
}

// A coalesced line stands for `count` refusals: --event finds it by what
// it counts, --summary adds its count.
TEST_F(CliLogTest, ACoalescedLineCountsAsItsCount) {
  const std::string path = tmp_.path() + "/flood.jsonl";
  const std::string d1 =
      R"({"ts":"2026-11-29T17:00:00.001Z","run":"aa","seq":1,"event":"call_denied","worker":"w","grant":3,"interface":"fs.Directory","method":"List","reason":"r"})";
  const std::string d2 =
      R"({"ts":"2026-11-29T17:00:00.002Z","run":"aa","seq":2,"event":"call_denied","worker":"w","grant":3,"interface":"fs.Directory","method":"List","reason":"r"})";
  const std::string c =
      R"({"ts":"2026-11-29T17:00:01.000Z","run":"aa","seq":3,"event":"coalesced","of":"call_denied","worker":"w","grant":3,"count":35,"first":"2026-11-29T17:00:00.003Z","last":"2026-11-29T17:00:00.900Z"})";
  const std::string v =
      R"({"ts":"2026-11-29T17:00:01.000Z","run":"aa","seq":4,"event":"coalesced","of":"seccomp_violation","worker":"w","syscall":"socket","count":7})";
  { std::ofstream(path) << d1 << "\n" << d2 << "\n" << c << "\n" << v << "\n"; }
  Ran r = capsa_log({"--json", "--event", "call_denied", path}, tmp_);
  EXPECT_EQ(r.out, d1 + "\n" + d2 + "\n" + c + "\n");
  Ran s = capsa_log({"--summary", "--json", path}, tmp_);
  const json j = json::parse(s.out);
  EXPECT_EQ(j["lines"], 4u);
  EXPECT_EQ(j["events"], 2u + 35u + 7u);
  EXPECT_EQ(j["coalesced_lines"], 2u);
  EXPECT_EQ(j["per_event"], json({{"call_denied", 37}, {"seccomp_violation", 7}}));
  EXPECT_EQ(j["per_worker"]["w"]["call_denied"], 37u);
}

// A log rotated into FILE.2, FILE.1 and FILE reads as the one file it was.
TEST_F(CliLogTest, RotatedFilesAreReadOldestFirst) {
  const std::string path = tmp_.path() + "/rot.jsonl";
  const std::size_t a = lines_.size() / 3, b = 2 * lines_.size() / 3;
  auto write = [&](const std::string& p, std::size_t from, std::size_t to) {
    std::ofstream out(p);
    for (std::size_t i = from; i < to; ++i) out << lines_[i] << "\n";
  };
  write(path + ".2", 0, a);
  write(path + ".1", a, b);
  write(path, b, lines_.size());
  Ran r = capsa_log({"--json", path}, tmp_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, slurp(log_));
  Ran d = capsa_log({"--json", "--event", "call_denied", path}, tmp_);
  EXPECT_EQ(d.out, expected(Select().e({"call_denied"})));
}

// -f prints the history, then a line appended after it started, then one
// written after a rotation; SIGTERM ends it with 0.
TEST_F(CliLogTest, FollowSeesAppendedLinesAcrossARotationUntilSigterm) {
  const std::string path = tmp_.path() + "/follow.jsonl";
  { std::ofstream(path) << slurp(log_); }
  const std::string out = tmp_.path() + "/follow.out", err = tmp_.path() + "/follow.err";
  pid_t pid = capsa::cli::testing::spawn(
      {CAPSA_BINARY, "log", "-f", "--json", "--event", "call_denied", path}, out, err);
  ASSERT_GT(pid, 0);
  const std::string history = expected(Select().e({"call_denied"}));
  auto wait_for = [&](const std::string& want) {
    for (int i = 0; i < 250 && slurp(out) != want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return slurp(out);
  };
  EXPECT_EQ(wait_for(history), history);
  const std::string appended =
      R"({"ts":"2030-01-01T00:00:00.000Z","run":"feedfacefeedface","seq":1,"event":"call_denied","worker":"late","grant":4,"interface":"fs.Directory","method":"List","reason":"right not granted"})";
  const std::string other =
      R"({"ts":"2030-01-01T00:00:00.001Z","run":"feedfacefeedface","seq":2,"event":"worker_exited","worker":"late"})";
  { std::ofstream(path, std::ios::app) << other << "\n" << appended << "\n"; }
  EXPECT_EQ(wait_for(history + appended + "\n"), history + appended + "\n");
  const std::string rotated =
      R"({"ts":"2030-01-01T00:00:01.000Z","run":"feedfacefeedface","seq":3,"event":"call_denied","worker":"late","grant":5,"interface":"fs.File","method":"Read","reason":"revoked"})";
  ASSERT_EQ(::rename(path.c_str(), (path + ".1").c_str()), 0);
  { std::ofstream(path) << rotated << "\n"; }
  const std::string all = history + appended + "\n" + rotated + "\n";
  EXPECT_EQ(wait_for(all), all);
  ::kill(pid, SIGTERM);
  EXPECT_EQ(capsa::cli::testing::wait_exit(pid), 0);
  EXPECT_EQ(slurp(err), "");
}

// A worker chooses its method names and what its messages say; a name in a
// hand-edited log may hold anything. The table escapes every control
// character (an ANSI sequence would recolour or rewrite the terminal).
TEST_F(CliLogTest, TheTableShowsHostileStringsEscaped) {
  const std::string path = tmp_.path() + "/hostile.jsonl";
  {
    std::ofstream(path)
        << R"({"ts":"2026-11-29T17:00:00.123Z","run":"9f3c0a5e1b2d4c67","seq":7,"event":"call_denied","worker":"w\u001b[31mred","grant":7,"interface":"fs.Directory","method":"Li\nst\u0085","reason":"a \"quoted\" reason"})"
        << "\n";
  }
  Ran r = capsa_log({path}, tmp_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out,
            "TIME                      RUN       EVENT                  WORKER        GRANT  DETAILS\n"
            "2026-11-29T17:00:00.123Z  9f3c0a5e  call_denied            w\\x1b[31mred  7      "
            "interface=fs.Directory method=Li\\x0ast\\x85 reason=\"a \\\"quoted\\\" reason\"\n");
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  // --json passes the line through as the writer escaped it.
  Ran j = capsa_log({"--json", path}, tmp_);
  EXPECT_EQ(j.out, slurp(path));
  // The real log's table: one row per line, after the header.
  Ran t = capsa_log({"--worker", "hostile", "--event", "worker_exited", log_}, tmp_);
  EXPECT_EQ(t.status, 0);
  EXPECT_EQ(std::count(t.out.begin(), t.out.end(), '\n'), 2) << t.out;
  EXPECT_NE(t.out.find("  worker_exited          hostile       -      pid="), std::string::npos) << t.out;
  EXPECT_NE(t.out.find(" status=killed "), std::string::npos) << t.out;
}

TEST_F(CliLogTest, ExitStatusUsageErrorsUnreadableFilesAndBadLines) {
  // An unknown event: 2, with the closest documented one.
  Ran e = capsa_log({"--event", "call_denid", log_}, tmp_);
  EXPECT_EQ(e.status, 2);
  EXPECT_NE(e.err.find("unknown event \"call_denid\" (did you mean \"call_denied\"?)"), std::string::npos) << e.err;
  EXPECT_EQ(e.out, "");
  EXPECT_EQ(capsa_log({"--since", "yesterday", log_}, tmp_).status, 2);
  EXPECT_EQ(capsa_log({"--until", "2026-13-01T00:00:00Z", log_}, tmp_).status, 2);
  EXPECT_EQ(capsa_log({"--no-such-option", log_}, tmp_).status, 2);
  EXPECT_EQ(capsa_log({"-f", "--summary", log_}, tmp_).status, 2);
  // Nothing matches: 0, no output.
  Ran none = capsa_log({"--since", "2030-01-01T00:00:00Z", log_}, tmp_);
  EXPECT_EQ(none.status, 0);
  EXPECT_EQ(none.out, "");
  // A missing file: 1, and the other files are still read.
  Ran m = capsa_log({"--json", "--event", "audit_opened", tmp_.path() + "/missing.jsonl", log_}, tmp_);
  EXPECT_EQ(m.status, 1);
  EXPECT_NE(m.err.find("missing.jsonl: no such file"), std::string::npos) << m.err;
  EXPECT_EQ(m.out, expected(Select().e({"audit_opened"})));
  // Torn and foreign lines: counted with the first's place, never fatal.
  const std::string torn = tmp_.path() + "/torn.jsonl";
  {
    std::ofstream out(torn);
    out << lines_[0] << "\n" << R"({"ts":"2026-11-29T17:00)" << "\n" << lines_[1] << "\nnot json\n" << lines_[2] << "\n";
  }
  Ran b = capsa_log({"--json", torn}, tmp_);
  EXPECT_EQ(b.status, 0);
  EXPECT_EQ(b.out, lines_[0] + "\n" + lines_[1] + "\n" + lines_[2] + "\n");
  EXPECT_EQ(b.err, "capsa log: skipped 2 lines that are not audit records (the first at " + torn + ":2)\n");
}

}  // namespace
