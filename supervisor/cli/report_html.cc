// capsa — `capsa report`'s page (report_html.h).
#include "supervisor/cli/report_html.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <fmt/format.h>

#include "supervisor/cli/format.h"

namespace capsa::cli {
namespace {

// The browser is told: nothing but this page's own inline style. No
// script-src: scripts fall back to default-src 'none' and never run.
constexpr std::string_view kCsp =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

constexpr std::string_view kStyle = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}
h1{font-size:1.5em;margin:0 0 .4em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccc}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
table{border-collapse:collapse;margin:.3em 0}th,td{padding:.15em .6em;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.z{color:#aaa}tr.total td{font-weight:600;border-top:2px solid #999}
code,.mono,td.d{font-family:ui-monospace,monospace;font-size:12px}td.mono{white-space:nowrap}td.d{word-break:break-all;max-width:60em}
nav a{margin-right:1em}.note{color:#555}.warn{color:#a00;font-weight:600}
#graph-svg{overflow:auto;border:1px solid #ddd;max-height:80vh}
#graph-svg svg{max-width:none;height:auto}
tr.c-denial td.e,tr.c-bad-message td.e{color:#b35900}tr.c-violation td.e{color:#c00;font-weight:600}
tr.c-revocation td.e{color:#7a1fa2}tr.c-grant td.e{color:#1f6f2a}tr.c-transfer td.e,tr.c-delegation td.e{color:#1d4fa0}
tr.c-release td.e{color:#666}tr.c-worker td.e{color:#444;font-weight:600}
tr.gap td{background:#fff6d5;text-align:center}
)";

// Bidirectional controls reorder what follows them on screen: a name
// holding one could make a line read as something else.
bool bidi_control(char32_t c) {
  return c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069) ||
         c == 0x061C;
}

std::string ms_time(std::int64_t ms) { return rfc3339(ms * 1'000'000); }

std::string span_text(std::int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 60'000) return fmt::format("{}.{:03}s", ms / 1000, ms % 1000);
  return age(std::chrono::milliseconds(ms));
}

std::string plural(std::uint64_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

// The run's id as shown; "(none)" for lines older than run ids.
std::string run_label(const std::string& id) { return id.empty() ? "(none)" : id; }

class Page {
 public:
  Page& raw(std::string_view s) {
    out_ += s;
    return *this;
  }
  Page& text(std::string_view s) {
    out_ += html_escape(s);
    return *this;
  }
  // A numeric cell, greyed when zero; `attrs` already escaped.
  Page& num_cell(std::uint64_t n, std::string_view attrs = {}) {
    out_ += n == 0 ? "<td class=\"n z\"" : "<td class=\"n\"";
    out_ += attrs;
    out_ += '>';
    out_ += std::to_string(n);
    out_ += "</td>";
    return *this;
  }
  Page& cell(std::string_view s, std::string_view cls = {}) {
    out_ += cls.empty() ? "<td>" : "<td class=\"" + std::string(cls) + "\">";
    text(s);
    out_ += "</td>";
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

void header(Page& p, const ReportData& d, const ReportGraph& g, std::int64_t generated_ms) {
  p.raw("<header><h1>capsa audit report</h1><dl class=\"meta\">");
  p.raw("<dt>Log</dt><dd class=\"mono\" id=\"log\">").text(d.log).raw("</dd>");
  p.raw("<dt>Files read</dt><dd class=\"mono\">");
  for (std::size_t i = 0; i < d.files.size(); ++i) p.text(i ? ", " : "").text(d.files[i]);
  p.raw(" (").text(plural(d.stats.lines, "line"));
  if (d.stats.bad != 0) {
    p.raw(", <span class=\"warn\">").text(plural(d.stats.bad, "bad line"));
    p.text(" skipped, the first at " + d.stats.first_bad).raw("</span>");
  }
  p.raw(")</dd>");
  p.raw("<dt>Run</dt><dd><code id=\"run\">").text(run_label(d.run)).raw("</code> ");
  if (d.runs.size() == 1) {
    p.text("(the only run in the log)");
  } else if (d.run_defaulted) {
    p.text(fmt::format("(the last of {} runs in the log; choose another with --run)", d.runs.size()));
  } else {
    p.text(fmt::format("(chosen with --run, one of {} runs in the log)", d.runs.size()));
  }
  p.raw("</dd>");
  const std::int64_t span = d.run_info.last_ms - d.run_info.first_ms;
  p.raw("<dt>Time span</dt><dd>").text(ms_time(d.run_info.first_ms)).text(" to ");
  p.text(ms_time(d.run_info.last_ms)).text(" (" + span_text(span) + ")").raw("</dd>");
  p.raw("<dt>Lines of the run</dt><dd id=\"lines\">").text(std::to_string(d.timeline_total)).raw("</dd>");
  p.raw("<dt>Workers</dt><dd>");
  if (d.workers.empty()) p.text("none");
  for (std::size_t i = 0; i < d.workers.size(); ++i) {
    const ReportWorker& w = d.workers[i];
    p.text(i ? ", " : "").raw("<b>").text(w.name).raw("</b>");
    if (!w.status.empty()) p.text(" (" + w.status + ")");
  }
  p.raw("</dd><dt>Graph</dt><dd>");
  if (g.svg.empty()) {
    p.raw("<span class=\"warn\">").text("unavailable: " + g.unavailable).raw("</span>");
  } else {
    p.text(plural(g.workers, "worker") + ", " + plural(g.grants, "grant"));
  }
  p.raw("</dd><dt>Generated</dt><dd>").text(ms_time(generated_ms)).text(" by capsa report").raw("</dd></dl>");
  p.raw("<nav><a href=\"#refusals\">Denials and violations</a><a href=\"#workers\">Workers</a>"
        "<a href=\"#graph\">Capability graph</a><a href=\"#timeline\">Timeline</a>"
        "<a href=\"#runs\">Runs and events</a></nav></header>");
}

const char* kind_title(std::string_view kind) {
  if (kind == "call_denied") return "calls denied";
  if (kind == "transfer_denied") return "transfers denied";
  if (kind == "grant_refused") return "grants refused";
  if (kind == "bad_message") return "bad messages";
  if (kind == "seccomp_violation") return "seccomp violations";
  if (kind == "violation_flood") return "violation floods";
  return "other";
}

void refusals(Page& p, const ReportData& d) {
  p.raw("<section id=\"refusals\"><h2>Denials and violations per worker</h2>");
  p.raw("<p class=\"note\">Counted from the log: every line, and a coalesced line's count for the "
        "lines it stands for.</p>");
  p.raw("<table id=\"refusal-table\"><thead><tr><th>Worker</th>");
  for (std::string_view k : kRefusalKinds) p.raw("<th>").text(kind_title(k)).raw("</th>");
  p.raw("<th>total</th></tr></thead><tbody>");
  std::map<std::string_view, std::uint64_t> totals;
  std::uint64_t grand = 0;
  for (const ReportWorker& w : d.workers) {
    const std::string worker_attr = html_escape(w.name);
    p.raw("<tr data-worker=\"" + worker_attr + "\">").cell(w.name);
    std::uint64_t sum = 0;
    for (std::string_view k : kRefusalKinds) {
      auto it = w.refusals.find(k);
      const std::uint64_t n = it == w.refusals.end() ? 0 : it->second;
      sum += n;
      totals[k] += n;
      p.num_cell(n, " data-worker=\"" + worker_attr + "\" data-kind=\"" + std::string(k) + "\"");
    }
    grand += sum;
    p.num_cell(sum, " data-worker=\"" + worker_attr + "\" data-kind=\"total\"");
    p.raw("</tr>");
  }
  p.raw("<tr class=\"total\"><td>all workers</td>");
  for (std::string_view k : kRefusalKinds) {
    p.num_cell(totals[k], " data-worker=\"*\" data-kind=\"" + std::string(k) + "\"");
  }
  p.num_cell(grand, " data-worker=\"*\" data-kind=\"total\"").raw("</tr></tbody></table>");

  p.raw("<h3>By what was refused</h3>");
  if (d.breakdown.empty()) {
    p.raw("<p>Nothing was refused in this run.</p>");
  } else {
    p.raw("<table id=\"refusal-breakdown\"><thead><tr><th>Worker</th><th>Kind</th><th>What</th>"
          "<th>Count</th><th>First</th><th>Last</th></tr></thead><tbody>");
    for (const RefusalRow& r : d.breakdown) {
      p.raw("<tr>").cell(r.worker).cell(r.kind).cell(r.what, "d").num_cell(r.count);
      p.cell(ms_time(r.first_ms), "mono").cell(ms_time(r.last_ms), "mono").raw("</tr>");
    }
    p.raw("</tbody></table>");
    if (d.breakdown_folded) {
      p.raw(fmt::format("<p class=\"note\">More than {} distinct refusals: the rest are counted in "
                        "\"(others)\" rows.</p>",
                        kMaxBreakdownRows));
    }
  }
  p.raw("</section>");
}

void workers(Page& p, const ReportData& d) {
  p.raw("<section id=\"workers\"><h2>Workers</h2>");
  p.raw("<p class=\"note\">Started, ended and the supervisor's own counters from each worker's "
        "worker_exited line (\"-\" when the line does not say).</p>");
  p.raw("<table><thead><tr><th>Worker</th><th>PID</th><th>Started</th><th>Ended</th><th>Status</th>"
        "<th>calls</th><th>denials</th><th>violations</th></tr></thead><tbody>");
  auto counter = [&](std::int64_t n) {
    if (n < 0) return p.cell("-", "n z");
    return p.num_cell(static_cast<std::uint64_t>(n));
  };
  for (const ReportWorker& w : d.workers) {
    p.raw("<tr>").cell(w.name).cell(w.pid.empty() ? "-" : w.pid, "n");
    p.cell(w.started_ms ? ms_time(w.started_ms) : "-", "mono");
    p.cell(w.ended_ms ? ms_time(w.ended_ms) : "-", "mono");
    p.cell(w.status.empty() ? (w.started_ms ? "no exit in the log" : "-") : w.status);
    counter(w.calls);
    counter(w.denials);
    counter(w.violations);
    p.raw("</tr>");
  }
  p.raw("</tbody></table></section>");
}

void graph(Page& p, const ReportGraph& g) {
  p.raw("<section id=\"graph\"><h2>Capability graph</h2>");
  if (g.svg.empty()) {
    p.raw("<p class=\"warn\" id=\"graph-unavailable\">").text("graph unavailable: " + g.unavailable);
    p.raw("</p></section>");
    return;
  }
  p.raw("<p class=\"note\">").text(g.source);
  p.text(": workers, the supervisor's services and grants; parent to child edges for returned, "
         "attenuated and delegated grants; revoked and released grants drawn apart.");
  p.raw("</p><div id=\"graph-svg\">").raw(g.svg).raw("</div></section>");
}

void timeline(Page& p, const ReportData& d) {
  p.raw("<section id=\"timeline\"><h2>Timeline</h2><p class=\"note\">");
  if (d.timeline_omitted == 0) {
    p.text(fmt::format("Every line of the run: {}.", d.timeline_total));
  } else {
    p.text(fmt::format("{} lines in the run: the first {} and the last {} are shown, {} in between "
                       "are not (the counts above include them).",
                       d.timeline_total, d.timeline_head, d.timeline.size() - d.timeline_head,
                       d.timeline_omitted));
  }
  p.text(" A coalesced line stands for the number of lines in its count column.");
  p.raw("</p><table id=\"timeline-table\"><thead><tr><th>Time (UTC)</th><th>Seq</th><th>Event</th>"
        "<th>Worker</th><th>Count</th><th>Details</th></tr></thead><tbody>");
  for (std::size_t i = 0; i < d.timeline.size(); ++i) {
    if (i == d.timeline_head && d.timeline_omitted != 0) {
      p.raw("<tr class=\"gap\" id=\"timeline-gap\"><td colspan=\"6\">");
      p.text(fmt::format("{} lines not shown", d.timeline_omitted)).raw("</td></tr>");
    }
    const TimelineRow& t = d.timeline[i];
    p.raw("<tr class=\"c-").raw(category_name(t.category)).raw("\">");
    p.cell(ms_time(t.ts_ms), "mono").num_cell(t.seq);
    p.cell(t.of.empty() ? t.event : t.of + " (coalesced)", "e");
    p.cell(t.workers).num_cell(t.count).cell(t.details, "d").raw("</tr>");
  }
  p.raw("</tbody></table></section>");
}

void runs_and_events(Page& p, const ReportData& d) {
  constexpr std::size_t kMaxRunsShown = 50;
  p.raw("<section id=\"runs\"><h2>Runs in the log</h2>");
  const std::size_t from = d.runs.size() > kMaxRunsShown ? d.runs.size() - kMaxRunsShown : 0;
  if (from != 0) p.raw("<p class=\"note\">").text(fmt::format("The last {} of {}.", kMaxRunsShown, d.runs.size())).raw("</p>");
  p.raw("<table><thead><tr><th>Run</th><th>First line</th><th>Last line</th><th>Lines</th></tr></thead><tbody>");
  for (std::size_t i = from; i < d.runs.size(); ++i) {
    const RunInfo& r = d.runs[i];
    p.raw(r.id == d.run ? "<tr class=\"total\">" : "<tr>").cell(run_label(r.id), "mono");
    p.cell(ms_time(r.first_ms), "mono").cell(ms_time(r.last_ms), "mono").num_cell(r.lines).raw("</tr>");
  }
  p.raw("</tbody></table><h2>Lines by event (this run)</h2><table id=\"event-counts\"><thead><tr>"
        "<th>Event</th><th>Lines</th></tr></thead><tbody>");
  for (const auto& [event, n] : d.events) {
    p.raw("<tr>").cell(event, "mono").num_cell(n).raw("</tr>");
  }
  p.raw("</tbody></table></section>");
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

bool icontains(std::string_view s, std::string_view needle) {
  for (std::size_t i = 0; i + needle.size() <= s.size(); ++i) {
    if (iequals_prefix(s.substr(i), needle)) return true;
  }
  return false;
}

// The elements Graphviz's SVG renderer writes. `a` carries a tooltip
// (xlink:title); its link attributes are refused below, so it is inert.
constexpr std::string_view kSvgElements[] = {
    "a",    "svg",  "g",       "title",  "desc", "path", "polygon",        "polyline",       "ellipse",
    "circle", "rect",  "line",   "text", "tspan", "defs",          "linearGradient", "radialGradient",
    "stop"};

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '-' || c == '_' || c == '.';
}

Error svg_error(std::string_view why) {
  return Error{Errc::kBadMessage, "not an SVG drawn by Graphviz dot: " + std::string(why), 0};
}

}  // namespace

std::string html_escape(std::string_view in) {
  const std::string s = printable(in);  // C0, DEL and C1 controls as \xNN
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    switch (c) {
      case '&': out += "&amp;"; continue;
      case '<': out += "&lt;"; continue;
      case '>': out += "&gt;"; continue;
      case '"': out += "&quot;"; continue;
      case '\'': out += "&#39;"; continue;
      default: break;
    }
    const auto u = static_cast<unsigned char>(c);
    // Three-byte sequences: decode to spot the bidirectional controls.
    if ((u & 0xF0) == 0xE0 && i + 2 < s.size()) {
      const char32_t cp = (static_cast<char32_t>(u & 0x0F) << 12) |
                          (static_cast<char32_t>(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
                          (static_cast<char32_t>(static_cast<unsigned char>(s[i + 2]) & 0x3F));
      if (bidi_control(cp)) {
        out += fmt::format("\\u{:04x}", static_cast<std::uint32_t>(cp));
        i += 2;
        continue;
      }
    } else if (u == 0xD8 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x9C) {
      out += "\\u061c";  // ARABIC LETTER MARK, two bytes
      ++i;
      continue;
    }
    out += c;
  }
  return out;
}

Result<std::string> checked_svg(std::string_view svg) {
  if (svg.size() > kMaxSvgBytes) {
    return std::unexpected(svg_error(fmt::format("{} bytes, more than {}", svg.size(), kMaxSvgBytes)));
  }
  // The prolog: <?xml ...?>, <!DOCTYPE ...>, comments and blanks only.
  std::size_t pos = 0;
  for (;;) {
    while (pos < svg.size() && std::isspace(static_cast<unsigned char>(svg[pos]))) ++pos;
    std::string_view rest = svg.substr(pos);
    std::size_t end = std::string_view::npos;
    if (rest.starts_with("<?xml")) end = rest.find("?>"), end = end == rest.npos ? end : end + 2;
    else if (rest.starts_with("<!DOCTYPE")) end = rest.find('>'), end = end == rest.npos ? end : end + 1;
    else if (rest.starts_with("<!--")) end = rest.find("-->"), end = end == rest.npos ? end : end + 3;
    else break;
    if (end == std::string_view::npos) return std::unexpected(svg_error("an unterminated prolog"));
    pos += end;
  }
  std::string_view body = svg.substr(pos);
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.remove_suffix(1);
  if (!body.starts_with("<svg") || !body.ends_with("</svg>")) {
    return std::unexpected(svg_error("it is not one <svg> element"));
  }
  // Every tag: an allowed element; no handler, link or script in its attributes.
  int depth = 0;
  std::size_t svg_opened = 0;
  for (std::size_t i = 0; i < body.size();) {
    const std::size_t lt = body.find('<', i);
    if (lt == std::string_view::npos) break;
    if (depth == 0 && lt != 0) return std::unexpected(svg_error("content after </svg>"));
    std::string_view t = body.substr(lt);
    if (t.starts_with("<!--")) {
      const std::size_t e = t.find("-->");
      if (e == std::string_view::npos) return std::unexpected(svg_error("an unterminated comment"));
      i = lt + e + 3;
      continue;
    }
    const bool closing = t.starts_with("</");
    std::size_t k = closing ? 2 : 1;
    const std::size_t name_start = k;
    while (k < t.size() && name_char(t[k])) ++k;
    const std::string_view name = t.substr(name_start, k - name_start);
    if (std::find(std::begin(kSvgElements), std::end(kSvgElements), name) == std::end(kSvgElements)) {
      return std::unexpected(svg_error("element <" + cut_utf8(name, 40) + ">"));
    }
    bool self_closing = false;
    for (;;) {
      while (k < t.size() && std::isspace(static_cast<unsigned char>(t[k]))) ++k;
      if (k >= t.size()) return std::unexpected(svg_error("an unterminated tag"));
      if (t[k] == '>') break;
      if (t.substr(k).starts_with("/>") && !closing) {
        self_closing = true;
        ++k;
        break;
      }
      if (closing) return std::unexpected(svg_error("attributes in a closing tag"));
      const std::size_t a = k;
      while (k < t.size() && name_char(t[k])) ++k;
      const std::string_view attr = t.substr(a, k - a);
      if (attr.empty() || k >= t.size() || t[k] != '=' || k + 1 >= t.size() || (t[k + 1] != '"' && t[k + 1] != '\'')) {
        return std::unexpected(svg_error("a malformed attribute"));
      }
      const char quote = t[k + 1];
      const std::size_t v = k + 2;
      const std::size_t ve = t.find(quote, v);
      if (ve == std::string_view::npos) return std::unexpected(svg_error("an unterminated attribute"));
      const std::string_view value = t.substr(v, ve - v);
      if (iequals_prefix(attr, "on") || attr == "href" || attr.ends_with(":href") ||
          value.find('<') != std::string_view::npos || icontains(value, "javascript:") ||
          (icontains(value, "url(") && !icontains(value, "url(#"))) {
        return std::unexpected(svg_error("attribute " + cut_utf8(attr, 40) + " on <" + std::string(name) + ">"));
      }
      k = ve + 1;
    }
    if (name == "svg" && !closing) ++svg_opened;
    if (closing) --depth;
    else if (!self_closing) ++depth;
    if (depth < 0) return std::unexpected(svg_error("unbalanced tags"));
    i = lt + k + 1;
  }
  if (depth != 0 || svg_opened != 1) return std::unexpected(svg_error("unbalanced tags"));
  return std::string(body);
}

std::string report_html(const ReportData& d, const ReportGraph& g, std::int64_t generated_ms) {
  Page p;
  p.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
  p.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"").raw(kCsp).raw("\">\n");
  p.raw("<meta name=\"viewport\" content=\"width=device-width\">\n");
  p.raw("<title>").text("capsa report: run " + run_label(d.run)).raw("</title>\n");
  p.raw("<style>").raw(kStyle).raw("</style></head>\n<body>\n");
  header(p, d, g, generated_ms);
  refusals(p, d);
  workers(p, d);
  graph(p, g);
  timeline(p, d);
  runs_and_events(p, d);
  p.raw("\n</body></html>\n");
  return p.take();
}

}  // namespace capsa::cli
