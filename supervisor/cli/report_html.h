// capsa — `capsa report`'s page: one self-contained HTML file (report.h).
//
// Self-contained and inert: inline CSS, the graph as inline SVG, no script
// and nothing loaded from anywhere. A Content-Security-Policy meta tag says
// so to the browser (default-src 'none': no script, no fetch, no image,
// font or frame; only the inline style), so even a string that escaped
// its escaping could neither run nor call out.
//
// Every string from the log is hostile (a worker chooses method names,
// file names, reasons): html_escape() escapes & < > " ' and shows control
// and bidirectional-override characters as \xNN / \uNNNN, so a name can
// neither make markup nor disguise itself. The SVG from Graphviz is inlined
// only after checked_svg() accepts it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "capabilities/error.h"
#include "supervisor/cli/report_data.h"

namespace capsa::cli {

// Text or an attribute value (always double-quoted) for HTML.
std::string html_escape(std::string_view s);

// Graphviz `dot -Tsvg` output, checked and reduced to its <svg> element:
// the XML prolog, DOCTYPE and comments before it are dropped; it must be
// one <svg>...</svg> whose elements are the ones dot draws with (g, path,
// polygon, text, ...) and whose attributes carry no event handler, link or
// javascript: (dot escapes labels, so none of this can come from a name; a
// check against a changed or replaced `dot` binary). Bounded by
// kMaxSvgBytes. kBadMessage with the reason otherwise.
inline constexpr std::size_t kMaxSvgBytes = 16u << 20;
Result<std::string> checked_svg(std::string_view svg);

// The graph section: the checked SVG, or why there is none.
struct ReportGraph {
  std::string svg;          // from checked_svg(); "" when unavailable
  std::string unavailable;  // the reason, when svg is ""
  std::string source;       // CapGraph::source
  std::size_t workers = 0;
  std::size_t grants = 0;
};

// The whole page. `generated_ms`: when (Unix ms), shown in the header.
std::string report_html(const ReportData& data, const ReportGraph& graph, std::int64_t generated_ms);

}  // namespace capsa::cli
