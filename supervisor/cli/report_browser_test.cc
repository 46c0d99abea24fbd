// `capsa report` as an auditor uses it: the real `capsa run` of the hostile
// example (denials, a seccomp violation, a bad message, a kill), `capsa
// report` on its audit log, and the page opened in a real browser
// (Debian's chromium, headless): it loads with no console message (no
// script error, nothing refused by its Content-Security-Policy), shows the
// counts computed here independently from the log, and holds the graph's
// <svg>. A second run in the same log, written with hostile strings,
// shows them as text: no element of theirs exists in the browser's DOM.
//
// Chromium comes from scripts/deps.sh's optional browser packages
// (scripts/test.sh installs them as root). Without it the tests are
// skipped, unless CAPSA_REQUIRE_BROWSER=1 (test.sh sets it): then they fail.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "supervisor/audit/audit_log.h"
#include "supervisor/cli/test_util.h"
#include "tests/support/temp_dir.h"

namespace {

using capsa::cli::testing::Ran;
using capsa::cli::testing::slurp;
using capsa::testing::TempDir;

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser"}) {
    for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
      std::string p = std::string(dir) + "/" + name;
      if (::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return {};
}

#define REQUIRE_CHROMIUM(path)                                                                 \
  const std::string path = find_chromium();                                                    \
  if (path.empty()) {                                                                          \
    const char* req = std::getenv("CAPSA_REQUIRE_BROWSER");                                    \
    if (req != nullptr && std::string(req) == "1") FAIL() << "chromium is not installed";      \
    GTEST_SKIP() << "chromium is not installed (apt-get install --no-install-recommends chromium)"; \
  }

struct Browsed {
  int status = -1;
  std::string dom;
  std::vector<std::string> console;  // the page's console messages
};

// Loads `page` in headless chromium and returns its DOM after load.
// --no-sandbox: chromium refuses to start as root with its own sandbox (CI
// builds run as root) and cannot set it up unprivileged in a container
// without user namespaces; the page is our own file, inert by its CSP.
// `timeout` bounds a hung browser; the profile is a scratch directory, so
// nothing is read from or left in $HOME.
Browsed browse(const std::string& chromium, const std::string& page, const TempDir& tmp) {
  const std::string profile = tmp.path() + "/chromium-profile";
  Ran r = capsa::cli::testing::run(
      {"/usr/bin/timeout", "-k", "5", "60", chromium, "--headless", "--no-sandbox", "--disable-gpu",
       "--no-first-run", "--disable-extensions", "--user-data-dir=" + profile,
       "--enable-logging=stderr", "--v=0", "--dump-dom", "file://" + page},
      tmp.path());
  Browsed b;
  b.status = r.status;
  b.dom = r.out;
  std::istringstream err(r.err);
  for (std::string line; std::getline(err, line);) {
    if (line.find(":CONSOLE") != std::string::npos) b.console.push_back(line);
  }
  return b;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// Refusals per worker and kind, counted here straight from the log's JSON
// (a coalesced line counts `count` of its `of`), and the last run's id.
struct Expected {
  std::string last_run;
  std::uint64_t run_lines = 0;
  std::map<std::string, std::map<std::string, std::uint64_t>> counts;
};

Expected count_from_log(const std::string& path) {
  Expected e;
  std::ifstream in(path);
  std::vector<nlohmann::json> lines;
  for (std::string text; std::getline(in, text);) lines.push_back(nlohmann::json::parse(text));
  e.last_run = lines.back()["run"].get<std::string>();
  for (const auto& j : lines) {
    if (j["run"] != e.last_run) continue;
    ++e.run_lines;
    if (!j.contains("worker")) continue;
    std::string kind = j["event"].get<std::string>();
    std::uint64_t n = 1;
    if (kind == "coalesced") {
      kind = j["of"].get<std::string>();
      n = j["count"].get<std::uint64_t>();
    }
    e.counts[j["worker"].get<std::string>()][kind] += n;
  }
  return e;
}

std::string cell(const std::string& worker, const std::string& kind, std::uint64_t n) {
  return "data-worker=\"" + worker + "\" data-kind=\"" + kind + "\">" + std::to_string(n) + "</td>";
}

class ReportBrowserTest : public ::testing::Test {
 protected:
  std::string audit() const { return tmp_.path() + "/audit.jsonl"; }
  std::string page() const { return tmp_.path() + "/report.html"; }
  Ran report(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{CAPSA_BINARY, "report", audit(), "-o", page()};
    args.insert(args.end(), extra.begin(), extra.end());
    return capsa::cli::testing::run(args, tmp_.path());
  }
  TempDir tmp_;
};

TEST_F(ReportBrowserTest, AHostileRunsPageLoadsCleanAndShowsTheLogsExactCounts) {
  REQUIRE_CHROMIUM(chromium);
  Ran ran = capsa::cli::testing::run(
      {CAPSA_BINARY, "run", "-q", "--control", "none", "--audit-log", audit(), "--define",
       std::string("bin=") + CAPSA_PLUGIN_DIR, std::string(CAPSA_EXAMPLES_DIR) + "/hostile.json"},
      tmp_.path(), /*merged=*/true);
  ASSERT_EQ(ran.status, 128 + 9) << ran.out;  // killed on its bad message

  Ran r = report();
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");  // no warning: dot drew the graph
  const Expected e = count_from_log(audit());
  EXPECT_EQ(r.out, "wrote " + page() + " (run " + e.last_run + ", " + std::to_string(e.run_lines) +
                       " lines)\n");
  const auto& h = e.counts.at("hostile");
  // What docs/EXAMPLES.md says the hostile plugin provokes.
  EXPECT_EQ(h.at("call_denied"), 2u);
  EXPECT_EQ(h.at("seccomp_violation"), 1u);
  EXPECT_EQ(h.at("bad_message"), 1u);

  Browsed b = browse(chromium, page(), tmp_);
  ASSERT_EQ(b.status, 0) << b.dom;
  EXPECT_EQ(joined(b.console), "");  // no script error, nothing blocked by the CSP
  ASSERT_NE(b.dom.find("<h1>capsa audit report</h1>"), std::string::npos) << b.dom.substr(0, 2000);
  EXPECT_NE(b.dom.find("<code id=\"run\">" + e.last_run + "</code> (the only run in the log)"),
            std::string::npos);
  std::uint64_t total = 0;
  for (const char* kind : {"call_denied", "transfer_denied", "grant_refused", "bad_message",
                           "seccomp_violation", "violation_flood"}) {
    const std::uint64_t n = h.contains(kind) ? h.at(kind) : 0;
    total += n;
    EXPECT_NE(b.dom.find(cell("hostile", kind, n)), std::string::npos) << kind << " " << n;
  }
  EXPECT_NE(b.dom.find(cell("hostile", "total", total)), std::string::npos) << total;
  // The graph, inlined: an <svg> element in its section, naming the worker.
  const auto graph = b.dom.find("<div id=\"graph-svg\"><svg");
  ASSERT_NE(graph, std::string::npos);
  EXPECT_NE(b.dom.find("hostile", graph), std::string::npos);
  EXPECT_EQ(b.dom.find("graph unavailable"), std::string::npos);
  EXPECT_EQ(b.dom.find("<script"), std::string::npos);
}

// Strings a worker chooses (a method, a grant name, a reason), written into
// a second run of the log by the real audit writer: the browser shows them
// as text; none becomes an element or runs.
TEST_F(ReportBrowserTest, HostileStringsInTheLogStayTextInTheBrowser) {
  REQUIRE_CHROMIUM(chromium);
  const std::string hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&amp;";
  {
    capsa::supervisor::AuditLog::Options o;
    o.run_id = "abcdef0123456789";
    auto log = capsa::supervisor::AuditLog::open(audit(), o);
    ASSERT_TRUE(log);
    ASSERT_TRUE((*log)->worker_started("w", 1, hostile));
    ASSERT_TRUE((*log)->call_denied("w", 1, "fs.Directory", hostile, hostile));
    ASSERT_TRUE((*log)->revoked(1, "w", hostile));
  }
  Ran r = report({"--run", "abcdef"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  Browsed b = browse(chromium, page(), tmp_);
  ASSERT_EQ(b.status, 0);
  EXPECT_EQ(joined(b.console), "");  // nothing ran, so nothing was blocked either
  EXPECT_EQ(b.dom.find("<script"), std::string::npos);
  EXPECT_EQ(b.dom.find("<img"), std::string::npos);
  // The DOM serialiser escapes text again: the hostile string is there, as text.
  EXPECT_NE(b.dom.find("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;\"'&amp;amp;"),
            std::string::npos)
      << b.dom;
  EXPECT_NE(b.dom.find(cell("w", "call_denied", 1)), std::string::npos);
}

}  // namespace
