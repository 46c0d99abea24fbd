// `capsa report`'s data and page, in-process, on logs the real audit writer
// made: exact counts (coalesced lines included), the run chosen, the
// timeline's bound, every hostile string escaped, and the SVG check.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "supervisor/audit/audit_log.h"
#include "supervisor/cli/report_data.h"
#include "supervisor/cli/report_html.h"
#include "tests/support/temp_dir.h"

namespace capsa::cli {
namespace {

using supervisor::AuditFields;
using supervisor::AuditLog;
using capsa::testing::TempDir;

constexpr std::string_view kHostile = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>";

std::size_t count_of(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t p = hay.find(needle); p != std::string_view::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

supervisor::SeccompViolation violation(std::string_view worker, std::string_view syscall, int nr) {
  supervisor::SeccompViolation v;
  v.worker = worker;
  v.pid = 42;
  v.syscall = syscall;
  v.syscall_nr = nr;
  v.action = "errno EPERM";
  return v;
}

// Run 1: quiet. Run 2: worker "w" is denied 3 calls with a hostile method
// name, makes 25 socket violations (10 written, 15 coalesced into one
// line) and one bad message, and exits; worker "quiet" is refused nothing.
AuditLog::Options with_run(std::string id, std::uint32_t coalesce_after = 10) {
  AuditLog::Options o;
  o.run_id = std::move(id);
  o.coalesce_after = coalesce_after;
  return o;
}

ReportGraph no_graph(std::string why) {
  ReportGraph g;
  g.unavailable = std::move(why);
  return g;
}

struct TwoRuns {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  std::string run1, run2;
  TwoRuns() {
    {
      auto log = AuditLog::open(path, with_run("1111aaaa2222bbbb"));
      EXPECT_TRUE(log);
      run1 = (*log)->run_id();
      EXPECT_TRUE((*log)->worker_started("w", 10, "/bin/w"));
    }
    auto log = AuditLog::open(path, with_run("3333cccc4444dddd"));
    EXPECT_TRUE(log);
    AuditLog& a = **log;
    run2 = a.run_id();
    const std::string rights[] = {"Write"};
    EXPECT_TRUE(a.worker_started("w", 20, "/bin/w"));
    EXPECT_TRUE(a.worker_started("quiet", 21, "/bin/q"));
    supervisor::GrantDetail detail;
    detail.name = kHostile;
    EXPECT_TRUE(a.grant_created(1, "w", "log.Sink", supervisor::GrantOrigin::kPolicy, rights, 0, detail));
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(a.call_denied("w", 1, "log.Sink", kHostile, "not in rights"));
    for (int i = 0; i < 25; ++i) EXPECT_TRUE(a.seccomp_violation(violation("w", "socket", 41)));
    EXPECT_TRUE(a.bad_message("w", 1, "unknown method", "kill"));
    EXPECT_TRUE(a.revoked(1, "w", kHostile));
    EXPECT_TRUE(a.flush_coalesced("w"));
    supervisor::WorkerExit killed;
    killed.signal = 9;
    EXPECT_TRUE(a.worker_exited("w", 20, killed));
  }
};

TEST(Report, CountsEveryRefusalOfTheLastRunCoalescedOnesIncluded) {
  TwoRuns t;
  auto d = gather_report(t.path, {t.path}, "");
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->runs.size(), 2u);
  EXPECT_EQ(d->run, t.run2);
  EXPECT_TRUE(d->run_defaulted);
  const ReportWorker* w = d->worker("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->refusals.at("call_denied"), 3u);
  EXPECT_EQ(w->refusals.at("seccomp_violation"), 25u);  // 10 lines + a coalesced count of 15
  EXPECT_EQ(w->refusals.at("bad_message"), 1u);
  EXPECT_EQ(w->refusals.size(), 3u);
  EXPECT_EQ(w->pid, "20");
  EXPECT_EQ(w->status, "ended (signal 9)");  // AuditLog::worker_exited's line has no status
  ASSERT_NE(d->worker("quiet"), nullptr);
  EXPECT_TRUE(d->worker("quiet")->refusals.empty());
  EXPECT_EQ(d->events.at("coalesced"), 1u);
  EXPECT_EQ(d->events.at("seccomp_violation"), 10u);
  // audit_opened, 2 starts, grant, 3 denials, 10 violations, coalesced,
  // bad message, revoked, exit.
  EXPECT_EQ(d->timeline_total, 21u);
  EXPECT_EQ(d->timeline.size(), 21u);
  EXPECT_EQ(d->timeline_omitted, 0u);
  auto coalesced = std::find_if(d->timeline.begin(), d->timeline.end(),
                                [](const TimelineRow& r) { return r.event == "coalesced"; });
  ASSERT_NE(coalesced, d->timeline.end());
  EXPECT_EQ(coalesced->of, "seccomp_violation");
  EXPECT_EQ(coalesced->count, 15u);
  EXPECT_EQ(coalesced->category, EventCategory::kViolation);
  // The breakdown: one row per (kind, what), the coalesced line in its row.
  ASSERT_EQ(d->breakdown.size(), 3u);
  EXPECT_EQ(d->breakdown[0].kind, "call_denied");
  EXPECT_EQ(d->breakdown[0].what, "log.Sink." + std::string(kHostile) + ": not in rights");
  EXPECT_EQ(d->breakdown[1].kind, "bad_message");
  EXPECT_EQ(d->breakdown[2].kind, "seccomp_violation");
  EXPECT_EQ(d->breakdown[2].what, "socket (41), errno EPERM");
  EXPECT_EQ(d->breakdown[2].count, 25u);
}

TEST(Report, RunIsChosenByPrefixAndABadOneIsRefusedWithTheRunsListed) {
  TwoRuns t;
  auto d = gather_report(t.path, {t.path}, "1111");
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->run, t.run1);
  EXPECT_FALSE(d->run_defaulted);
  EXPECT_EQ(d->timeline_total, 2u);  // audit_opened, worker_started
  EXPECT_TRUE(d->worker("w")->refusals.empty());
  auto none = gather_report(t.path, {t.path}, "ffff");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::kNotFound);
  EXPECT_NE(none.error().message.find("1111aaaa2222bbbb 3333cccc4444dddd"), std::string::npos)
      << none.error().message;
  // A file with no record at all says so, with its bad lines.
  TempDir dir;
  const std::string empty = dir.path() + "/empty.jsonl";
  { std::ofstream(empty) << "not json\n"; }
  auto nothing = gather_report(empty, {empty}, "");
  ASSERT_FALSE(nothing);
  EXPECT_NE(nothing.error().message.find("1 bad lines"), std::string::npos) << nothing.error().message;
}

// A hostile method, grant name and revocation reason come out escaped: no
// element, attribute or entity of theirs reaches the page.
TEST(Report, EveryStringFromTheLogIsEscapedAndThePageHasNoScript) {
  TwoRuns t;
  auto d = gather_report(t.path, {t.path}, "");
  ASSERT_TRUE(d);
  const ReportGraph g = no_graph(std::string(kHostile));  // an error text can quote the log, too
  const std::string page = report_html(*d, g, 0);
  EXPECT_EQ(lower(page).find("<script"), std::string::npos);
  EXPECT_EQ(lower(page).find("<img"), std::string::npos);
  EXPECT_EQ(page.find(kHostile), std::string::npos);
  const std::string escaped =
      "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;&lt;img src=x onerror=alert(2)&gt;";
  // The breakdown, the timeline's 3 denials (method), the grant's name and
  // the revocation's reason (details), the graph's reason in the header and
  // in its section.
  EXPECT_EQ(count_of(page, escaped), 8u) << page;
  EXPECT_NE(page.find("Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'"),
            std::string::npos);
  EXPECT_NE(page.find("data-worker=\"w\" data-kind=\"seccomp_violation\">25<"), std::string::npos);
  EXPECT_NE(page.find("data-worker=\"w\" data-kind=\"call_denied\">3<"), std::string::npos);
  EXPECT_NE(page.find("data-worker=\"*\" data-kind=\"total\">29<"), std::string::npos);
  EXPECT_NE(page.find("graph unavailable: &lt;script&gt;"), std::string::npos);
}

TEST(Report, EscapingCoversQuotesControlsAndBidiOverrides) {
  EXPECT_EQ(html_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(html_escape("x\ny\x1b[31m\x7f"), "x\\x0ay\\x1b[31m\\x7f");
  EXPECT_EQ(html_escape("evil\u202Etxt.exe"), "evil\\u202etxt.exe");
  EXPECT_EQ(html_escape("\u2067a\u2069"), "\\u2067a\\u2069");
  EXPECT_EQ(html_escape("caf\u00e9 \u65e5\u672c"), "caf\u00e9 \u65e5\u672c");  // other text untouched
  EXPECT_EQ(cut_utf8("\u65e5\u65e5", 4), "\u65e5...");  // never half a character
  EXPECT_EQ(cut_utf8("abc", 3), "abc");
}

// 6,000 lines: the first and last 2,500 are rows, the 1,000 between are
// counted and said to be missing, and the counts stay exact.
TEST(Report, TheTimelineIsBoundedAndTheCountsAreNot) {
  TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  {
    auto log = AuditLog::open(path, with_run("5555eeee6666ffff", 0));
    ASSERT_TRUE(log);
    for (int i = 0; i < 5999; ++i) {
      ASSERT_TRUE((*log)->call_denied("w", 1, "fs.Directory", "m" + std::to_string(i % 3000), "no"));
    }
  }
  auto d = gather_report(path, {path}, "");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->timeline_total, 6000u);
  EXPECT_EQ(d->timeline.size(), kTimelineHead + kTimelineTail);
  EXPECT_EQ(d->timeline_head, kTimelineHead);
  EXPECT_EQ(d->timeline_omitted, 1000u);
  EXPECT_EQ(d->timeline[kTimelineHead - 1].seq, kTimelineHead);
  EXPECT_EQ(d->timeline[kTimelineHead].seq, 3501u);
  EXPECT_EQ(d->timeline.back().seq, 6000u);
  EXPECT_EQ(d->worker("w")->refusals.at("call_denied"), 5999u);
  // 3,000 distinct methods: 2,000 rows, the rest in "(others)".
  EXPECT_TRUE(d->breakdown_folded);
  EXPECT_EQ(d->breakdown.size(), kMaxBreakdownRows + 1);
  std::uint64_t sum = 0;
  for (const RefusalRow& r : d->breakdown) sum += r.count;
  EXPECT_EQ(sum, 5999u);
  const std::string page = report_html(*d, no_graph("none"), 0);
  EXPECT_EQ(count_of(page, "<tr class=\"c-denial\">"), 4999u);  // and audit_opened's row
  EXPECT_EQ(count_of(page, "<tr class=\"c-run\">"), 1u);
  EXPECT_NE(page.find("1000 lines not shown"), std::string::npos);
  EXPECT_LT(page.size(), 4u << 20);
}

// What `dot -Tsvg` writes (Graphviz 2.43, abridged), then what it must not.
constexpr std::string_view kDotSvg = R"svg(<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"
 "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<!-- Generated by graphviz version 2.43.0 (0)
 -->
<!-- Title: capsa Pages: 1 -->
<svg width="62pt" height="44pt"
 viewBox="0.00 0.00 62.00 44.00" xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
<g id="graph0" class="graph" transform="scale(1 1) rotate(0) translate(4 40)">
<title>capsa</title>
<polygon fill="white" stroke="transparent" points="-4,4 -4,-40 58,-40 58,4 -4,4"/>
<!-- w&#45;&lt;script&gt; -->
<g id="node1" class="node">
<title>w&#45;&lt;script&gt;</title>
<ellipse fill="none" stroke="black" cx="27" cy="-18" rx="27" ry="18"/>
<text text-anchor="middle" x="27" y="-14.3" font-family="Times,serif" font-size="14.00">&lt;script&gt;</text>
</g>
</g>
</svg>
)svg";

TEST(Report, ASvgFromDotIsInlinedWithoutItsPrologAndAnythingElseIsRefused) {
  auto ok = checked_svg(kDotSvg);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_TRUE(ok->starts_with("<svg width=\"62pt\""));
  EXPECT_TRUE(ok->ends_with("</g>\n</svg>"));
  EXPECT_EQ(ok->find("DOCTYPE"), std::string::npos);
  auto refused = [](std::string_view from, std::string_view to) {
    std::string s(kDotSvg);
    const auto p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    s.replace(p, from.size(), to);
    auto r = checked_svg(s);
    EXPECT_FALSE(r) << to;
    return r ? std::string() : r.error().message;
  };
  EXPECT_NE(refused("<title>capsa</title>", "<script>alert(1)</script>").find("element <script>"),
            std::string::npos);
  EXPECT_NE(refused("<title>capsa</title>", "<foreignObject></foreignObject>").find("<foreignObject>"),
            std::string::npos);
  EXPECT_NE(refused("<g id=\"node1\"", "<g onload=\"alert(1)\" id=\"node1\"").find("attribute onload"),
            std::string::npos);
  // dot's tooltips are <a xlink:title=...>: kept; a link is not.
  std::string tooltip(kDotSvg);
  tooltip.replace(tooltip.find("<ellipse"), 8, "<a xlink:title=\"released: &lt;x&gt;\"></a><ellipse");
  EXPECT_TRUE(checked_svg(tooltip));
  EXPECT_NE(refused("<g id=\"node1\" class=\"node\">", "<g><a xlink:href=\"https://example.com/\"></a>")
                .find("attribute xlink:href on <a>"),
            std::string::npos);
  refused("<g id=\"node1\" class=\"node\">", "<g><a href=\"javascript:alert(1)\"></a>");
  refused("fill=\"none\"", "fill=\"url(https://example.com/x)\"");
  refused("</svg>\n", "</svg><svg></svg>");
  refused("</svg>\n", "</svg><b>x</b>");
  refused("<ellipse", "<ellipse x=\"<\"");
  refused("<!-- Title", "<!ENTITY x \"y\"><!-- Title");
  refused("</g>\n</svg>", "</svg>");
  EXPECT_FALSE(checked_svg("capsa: dot: not found"));
  EXPECT_FALSE(checked_svg(std::string(kMaxSvgBytes + 1, ' ')));
}

}  // namespace
}  // namespace capsa::cli
