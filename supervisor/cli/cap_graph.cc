#include "supervisor/cli/cap_graph.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "supervisor/cli/format.h"
#include "supervisor/control/wire.h"

extern char** environ;

namespace capsa::cli {
namespace {

namespace ctl = capsa::control;

std::string_view fb_str(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : s->string_view();
}

GraphWorker& worker_named(CapGraph& g, std::string_view name) {
  for (auto& w : g.workers) {
    if (w.name == name) return w;
  }
  g.workers.push_back(GraphWorker{.name = std::string(name), .running = false, .exit = ""});
  return g.workers.back();
}

// Fills graph.channels from the grants' `channel` and direct ends' names.
void collect_channels(CapGraph& g) {
  std::map<std::uint64_t, CapGraph::Channel> mediated;
  std::map<std::string, CapGraph::Channel> direct;
  for (const auto& gr : g.grants) {
    CapGraph::Channel* c = nullptr;
    if (gr.channel != 0) {
      c = &mediated[gr.channel];
      c->id = gr.channel;
    } else if (gr.kind == "direct_end") {
      c = &direct[gr.name];
      c->direct = true;
    } else {
      continue;
    }
    if (c->interface.empty()) c->interface = gr.interface;
    // A policy channel's ends carry its name (their copies too); a channel
    // made by NewChannel is named after its interface.
    if (c->name.empty() && gr.name != gr.interface) c->name = gr.name;
    c->ends.push_back(gr.id);  // grants are in id order
  }
  for (auto& [id, c] : mediated) g.channels.push_back(std::move(c));
  for (auto& [name, c] : direct) {
    c.name = name;
    g.channels.push_back(std::move(c));
  }
}

std::string_view origin_name(ctl::GrantOrigin o) { return supervisor::wire_name(o); }

std::string kind_name(ctl::GrantKind k) {
  switch (k) {
    case ctl::GrantKind::ServerEnd: return "server_end";
    case ctl::GrantKind::DirectEnd: return "direct_end";
    case ctl::GrantKind::Object: return "object";
    default: return "served";
  }
}

}  // namespace

const GraphGrant* CapGraph::find(std::uint64_t id) const {
  auto it = std::lower_bound(grants.begin(), grants.end(), id,
                             [](const GraphGrant& g, std::uint64_t v) { return g.id < v; });
  return it != grants.end() && it->id == id ? &*it : nullptr;
}

CapGraph graph_from_report(const ctl::AuditReport& report) {
  CapGraph g;
  g.source = "live supervisor pid " + std::to_string(report.supervisor_pid()) + " at " +
             rfc3339(report.now_ns());
  if (report.workers()) {
    for (const auto* w : *report.workers()) {
      GraphWorker gw{.name = std::string(fb_str(w->name())), .running = w->running(), .exit = ""};
      if (!w->running()) {
        gw.exit = !fb_str(w->start_error()).empty()
                      ? "not started: " + std::string(fb_str(w->start_error()))
                      : std::string(fb_str(w->exit()));
      }
      g.workers.push_back(std::move(gw));
    }
  }
  if (report.grants()) {
    for (const auto* e : *report.grants()) {
      GraphGrant gr;
      gr.id = e->id();
      gr.parent = e->parent();
      gr.holder = std::string(fb_str(e->worker()));
      gr.name = std::string(fb_str(e->name()));
      gr.interface = std::string(fb_str(e->interface()));
      if (const auto* rights = e->rights()) {
        for (const auto* r : *rights) gr.rights.emplace_back(fb_str(r));
      }
      gr.origin = std::string(origin_name(e->origin()));
      gr.kind = kind_name(e->kind());
      gr.channel = e->channel();
      gr.via = e->via();
      // The report keeps no reason for an ended grant (the log has it).
      if (e->state() == ctl::GrantState::Revoked) gr.state = GraphGrantState::kRevoked;
      if (e->state() == ctl::GrantState::Released) gr.state = GraphGrantState::kReleased;
      if (!gr.holder.empty()) (void)worker_named(g, gr.holder);
      g.grants.push_back(std::move(gr));
    }
  }
  std::sort(g.grants.begin(), g.grants.end(),
            [](const GraphGrant& a, const GraphGrant& b) { return a.id < b.id; });
  // Ids are unique in a supervisor; a report that repeats one is not
  // trusted to draw two nodes of one name.
  g.grants.erase(std::unique(g.grants.begin(), g.grants.end(),
                             [](const GraphGrant& a, const GraphGrant& b) { return a.id == b.id; }),
                 g.grants.end());
  collect_channels(g);
  return g;
}

namespace {

// The runs of `files`, in the order their first lines come.
Result<std::vector<std::string>> runs_of(const std::vector<std::string>& files) {
  std::vector<std::string> runs;
  std::set<std::string> seen;
  ReadStats stats;
  CAPSA_TRY(read_audit_files(
      files,
      [&](AuditRecord& r) {
        if (seen.insert(r.run).second) runs.push_back(r.run);
        return true;
      },
      stats));
  return runs;
}

Result<std::string> choose_run(const std::vector<std::string>& runs, std::string_view want,
                               const std::vector<std::string>& files) {
  std::string where = files.empty() ? "the log" : files.back();
  if (runs.empty()) return make_error(Errc::kNotFound, "no audit records in " + where);
  if (want.empty()) return runs.back();
  std::vector<std::string> hits;
  for (const auto& r : runs) {
    if (r == want) return r;
    if (r.starts_with(want)) hits.push_back(r);
  }
  std::string list;
  for (const auto& r : (hits.empty() ? runs : hits)) list += (list.empty() ? "" : ", ") + (r.empty() ? "(none)" : r);
  if (hits.empty()) {
    return make_error(Errc::kNotFound, "no run " + printable(want) + " in " + where + " (runs: " + list + ")");
  }
  if (hits.size() > 1) {
    return make_error(Errc::kNotFound, "run " + printable(want) + " is ambiguous: " + list);
  }
  return hits.front();
}

std::vector<std::string> str_array(const nlohmann::json& line, std::string_view key) {
  std::vector<std::string> out;
  auto it = line.find(key);
  if (it == line.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string exit_text(const AuditRecord& r) {
  std::string status = r.str("status");
  if (status.empty()) status = "exited";
  if (status == "exited" && r.line.contains("exit_code")) {
    const auto& c = r.line["exit_code"];
    if (c.is_number_integer()) status += " " + std::to_string(c.get<std::int64_t>());
  }
  if (status == "signaled" && r.line.contains("signal")) {
    const auto& s = r.line["signal"];
    if (s.is_number_integer()) status += " " + std::to_string(s.get<std::int64_t>());
  }
  return status;
}

}  // namespace

Result<CapGraph> graph_from_log(const std::vector<std::string>& files, std::string_view run,
                                std::optional<std::int64_t> at_ms) {
  CAPSA_ASSIGN_OR_RETURN(auto runs, runs_of(files));
  CAPSA_ASSIGN_OR_RETURN(std::string chosen, choose_run(runs, run, files));

  CapGraph g;
  g.run = chosen;
  std::map<std::uint64_t, GraphGrant> grants;
  std::int64_t last_ts = 0;
  ReadStats stats;
  auto on_record = [&](AuditRecord& r) {
    if (r.run != chosen) return true;
    if (at_ms && r.ts_ms > *at_ms) return true;  // not stopped: clocks may step back
    last_ts = std::max(last_ts, r.ts_ms);
    const std::string& ev = r.event;
    if (ev == "audit_opened" && chosen.empty()) {
      // A log written before run ids: each supervisor's lines begin with
      // audit_opened, and ids restart there; keep the last run's.
      grants.clear();
      g.workers.clear();
    } else if (ev == "worker_started" || ev == "worker_attached") {
      GraphWorker& w = worker_named(g, r.str("worker"));
      w.running = true;
      w.exit.clear();
    } else if (ev == "worker_exited") {
      GraphWorker& w = worker_named(g, r.str("worker"));
      w.running = false;
      w.exit = exit_text(r);
    } else if (ev == "worker_start_failed") {
      GraphWorker& w = worker_named(g, r.str("worker"));
      w.running = false;
      w.exit = "not started: " + r.str("reason");
    } else if (ev == "grant_created") {
      const std::uint64_t id = r.unum("grant");
      if (id == 0 || grants.contains(id)) return true;  // a repeated id keeps the first
      GraphGrant gr;
      gr.id = id;
      gr.parent = r.unum("parent_grant");
      gr.holder = r.str("worker");
      gr.name = r.str("name");
      gr.interface = r.str("interface");
      gr.rights = str_array(r.line, "rights");
      gr.origin = r.str("origin");
      gr.kind = r.str("kind");
      gr.channel = r.unum("channel");
      if (gr.kind.empty()) gr.kind = "served";
      // A delegated copy of a channel end is an end of the same channel
      // (logs written before grant_created carried `channel` say so only here).
      if (auto p = grants.find(gr.parent);
          gr.origin == "delegated" && gr.channel == 0 && p != grants.end() && p->second.channel != 0) {
        gr.channel = p->second.channel;
        if (gr.kind == "served") gr.kind = p->second.kind;
      }
      if (!gr.holder.empty()) {
        GraphWorker& w = worker_named(g, gr.holder);
        // It got a grant: it was running then (an attached worker's first
        // line may be its bootstrap grant).
        if (w.exit.empty()) w.running = true;
      }
      grants.emplace(id, std::move(gr));
    } else if (ev == "port_delegated") {
      auto it = grants.find(r.unum("grant"));
      if (it == grants.end()) return true;
      if (it->second.parent == 0) it->second.parent = r.unum("parent");
      it->second.via = r.unum("channel");
    } else if (ev == "channel_created") {
      const std::uint64_t ch = r.unum("channel");
      for (auto [key, kind] : {std::pair{"client_grant", "served"}, std::pair{"server_grant", "server_end"}}) {
        auto it = grants.find(r.unum(key));
        if (it == grants.end() || ch == 0) continue;
        if (it->second.channel == 0) it->second.channel = ch;
        if (it->second.kind == "served") it->second.kind = kind;
      }
    } else if (ev == "revoked" || ev == "released") {
      auto it = grants.find(r.unum("grant"));
      // The first end counts: a grant ends once.
      if (it == grants.end() || it->second.state != GraphGrantState::kLive) return true;
      it->second.state = ev == "revoked" ? GraphGrantState::kRevoked : GraphGrantState::kReleased;
      it->second.end_reason = r.str("reason");
    }
    // port_transferred names the holder grant_created named already (the
    // supervisor hands the port to it); the other events do not change the
    // graph.
    return true;
  };
  CAPSA_TRY(read_audit_files(files, on_record, stats));
  for (auto& [id, gr] : grants) g.grants.push_back(std::move(gr));
  collect_channels(g);
  std::string when = at_ms ? rfc3339(*at_ms * 1'000'000) : "its end";
  g.source = (files.empty() ? std::string("log") : files.back()) + " at " + when + ", run " +
             (chosen.empty() ? "(none)" : chosen);
  return g;
}

// --- DOT ---------------------------------------------------------------------

namespace {

// How much of one string a label shows: a picture, not a dump (the audit
// log and `capsa audit --json` have the whole text).
constexpr std::size_t kMaxLabelBytes = 160;
constexpr std::size_t kMaxRightsShown = 6;

// Appends code point `cp` as UTF-8.
void put_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// One valid UTF-8 sequence at s[i]: its code point and length; nullopt for
// an invalid one (overlong, surrogate, beyond U+10FFFF, cut short).
std::optional<std::pair<char32_t, std::size_t>> decode(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  char32_t cp = 0;
  if (c < 0x80) return std::pair{char32_t(c), std::size_t{1}};
  if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1f; }
  else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0f; }
  else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07; }
  else return std::nullopt;
  if (i + n > s.size()) return std::nullopt;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b(k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return std::nullopt;
  }
  return std::pair{cp, n};
}

}  // namespace

// The text of one DOT quoted string (without its quotes) showing `s`
// literally, whatever its bytes:
//   - invalid UTF-8 and the non-characters XML refuses (U+FFFE, U+FFFF)
//     become U+FFFD: Graphviz would otherwise warn and write an SVG that is
//     not XML;
//   - controls (C0, DEL, C1) are shown as \xNN, so a newline in a name is
//     text, not a line break, and nothing reaches the SVG that XML forbids;
//   - `"` and `\` are escaped, so the string cannot end early (no attribute
//     can be injected) and no Graphviz escape (\N, \G, \l...) is formed;
//   - `&` is written &amp;: Graphviz passes what looks like an entity
//     (&name;) into SVG untouched, and an unknown one is not XML. `<` and
//     `>` need nothing: a quoted string is never an HTML label and Graphviz
//     escapes them in SVG.
// Cut at kMaxLabelBytes (on a code point boundary), with an ellipsis.
std::string dot_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t i = 0, shown = 0;
  while (i < s.size()) {
    if (shown >= kMaxLabelBytes) {
      out += "\xe2\x80\xa6";  // …
      break;
    }
    auto d = decode(s, i);
    char32_t cp = d ? d->first : char32_t{0xfffd};
    const std::size_t len = d ? d->second : 1;
    shown += len;
    i += len;
    if (cp == 0xfffe || cp == 0xffff) cp = 0xfffd;
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
      out += fmt::format("\\\\x{:02x}", static_cast<unsigned>(cp));
    } else if (cp == '"') {
      out += "\\\"";
    } else if (cp == '\\') {
      out += "\\\\";
    } else if (cp == '&') {
      out += "&amp;";
    } else {
      put_utf8(out, cp);
    }
  }
  return out;
}

namespace {

std::string q(std::string_view s) { return "\"" + dot_escape(s) + "\""; }

// A label of lines, each escaped; "\n" between them is Graphviz's line break.
std::string label(std::initializer_list<std::string_view> lines) {
  std::string out = "\"";
  bool first = true;
  for (auto l : lines) {
    if (l.empty()) continue;
    if (!first) out += "\\n";
    out += dot_escape(l);
    first = false;
  }
  return out + "\"";
}

std::string rights_text(const std::vector<std::string>& rights) {
  if (rights.empty()) return "(no rights)";
  std::string out;
  for (std::size_t i = 0; i < rights.size() && i < kMaxRightsShown; ++i) {
    if (i != 0) out += ',';
    out += rights[i];
  }
  if (rights.size() > kMaxRightsShown) out += ",+" + std::to_string(rights.size() - kMaxRightsShown);
  return out;
}

std::string_view state_name(GraphGrantState s) {
  switch (s) {
    case GraphGrantState::kRevoked: return "revoked";
    case GraphGrantState::kReleased: return "released";
    default: return "live";
  }
}

// Origin -> how its parent edge looks.
std::string_view edge_style(std::string_view origin) {
  if (origin == "returned") return "color=\"#1f5fbf\", style=solid";
  if (origin == "attenuated") return "color=\"#b8860b\", style=dashed";
  if (origin == "delegated") return "color=\"#2e8b57\", style=bold";
  return "color=black, style=solid";
}

bool served_by_supervisor(const GraphGrant& g) { return g.kind == "served" && g.channel == 0; }

}  // namespace

std::string graph_to_dot(const CapGraph& graph) {
  std::string out;
  out += "// capsa graph: " + dot_escape(graph.source) + "\n";  // no line break, valid UTF-8
  out += "digraph capsa {\n";
  out += "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", fontsize=12, label=" +
         label({"capsa: " + graph.source}) + "];\n";
  out += "  node [fontname=\"Helvetica\", fontsize=10];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=9];\n";

  // Node ids are ours (w0, s0, g12); only labels and tooltips carry strings
  // from the log or report, escaped.
  std::map<std::string, std::size_t> worker_index;
  out += "\n  // workers\n";
  for (const auto& w : graph.workers) {
    const std::size_t i = worker_index.size();
    if (!worker_index.emplace(w.name, i).second) continue;
    std::string state = w.running ? "running" : (w.exit.empty() ? "ended" : w.exit);
    out += fmt::format("  w{} [shape=box, style=\"rounded,bold{}\", class=\"worker\", label={}];\n", i,
                       w.running ? "" : ",dashed", label({"worker", w.name, state}));
  }

  std::map<std::string, std::size_t> service_index;  // interface -> s<N>, by name
  for (const auto& g : graph.grants) {
    if (served_by_supervisor(g)) service_index.emplace(g.interface, 0);
  }
  for (std::size_t n = 0; auto& [iface, i] : service_index) i = n++;
  out += "\n  // the supervisor's services, one per interface it serves\n";
  for (const auto& [iface, i] : service_index) {
    out += fmt::format(
        "  s{} [shape=component, style=filled, fillcolor=\"#eef3fb\", class=\"service\", label={}];\n", i,
        label({"supervisor", iface}));
  }

  auto grant_node = [&](const GraphGrant& g) {
    std::string text = "#" + std::to_string(g.id);
    if (!g.name.empty()) text += " " + g.name;
    std::string how = g.origin;
    if (g.kind == "server_end") how += ", server end";
    if (g.kind == "direct_end") how += ", direct end";
    if (g.kind == "served" && g.channel != 0) how += ", client end";
    if (g.state != GraphGrantState::kLive) how += ", " + std::string(state_name(g.state));
    std::string attrs = fmt::format("shape=ellipse, class=\"grant {}\", label={}", state_name(g.state),
                                    label({text, g.interface, rights_text(g.rights), how}));
    if (g.state == GraphGrantState::kLive) {
      attrs += ", style=filled, fillcolor=\"#fffbe6\"";
      attrs += ", tooltip=" + q("grant " + std::to_string(g.id) + " held by " + g.holder);
    } else {
      // Drawn apart: grey and dashed, why in the tooltip.
      attrs += ", style=\"dashed,filled\", fillcolor=grey92, color=grey55, fontcolor=grey40";
      std::string why = std::string(state_name(g.state)) + (g.end_reason.empty() ? "" : ": " + g.end_reason);
      attrs += ", tooltip=" + q(why);
    }
    return fmt::format("g{} [{}];\n", g.id, attrs);
  };

  std::set<std::uint64_t> in_cluster;
  out += "\n  // channels: their ends grouped\n";
  for (std::size_t i = 0; i < graph.channels.size(); ++i) {
    const auto& c = graph.channels[i];
    std::string title = c.direct ? "direct channel" : "channel " + std::to_string(c.id);
    out += fmt::format("  subgraph cluster_c{} {{\n    style=\"rounded,dashed\"; color=\"#7a5195\"; label={};\n", i,
                       label({title, c.name, c.interface}));
    for (std::uint64_t e : c.ends) {
      const GraphGrant* g = graph.find(e);
      if (g == nullptr || !in_cluster.insert(e).second) continue;
      out += "    " + grant_node(*g);
    }
    out += "  }\n";
  }

  out += "\n  // grants\n";
  for (const auto& g : graph.grants) {
    if (!in_cluster.contains(g.id)) out += "  " + grant_node(g);
  }

  // Parents the graph does not hold (a log whose beginning was rotated
  // away): drawn, so that every derivation in the log is an edge.
  std::set<std::uint64_t> missing;
  for (const auto& g : graph.grants) {
    if (g.parent != 0 && graph.find(g.parent) == nullptr) missing.insert(g.parent);
  }
  for (std::uint64_t id : missing) {
    out += fmt::format("  g{} [shape=ellipse, style=dotted, class=\"grant unknown\", label=\"#{}\\n(not in the log)\"];\n",
                       id, id);
  }

  out += "\n  // holder -> grant, grant -> the service that serves it\n";
  for (const auto& g : graph.grants) {
    const bool live = g.state == GraphGrantState::kLive;
    const std::string faded = live ? "" : ", style=dashed, color=grey55";
    if (auto w = worker_index.find(g.holder); w != worker_index.end()) {
      out += fmt::format("  w{} -> g{} [class=\"holds\", arrowhead=none{}];\n", w->second, g.id, faded);
    }
    if (served_by_supervisor(g)) {
      out += fmt::format("  g{} -> s{} [class=\"served\", style=dotted, arrowhead=open, color=grey45];\n", g.id,
                         service_index.at(g.interface));
    }
  }

  out += "\n  // parent -> child: returned, attenuated, delegated\n";
  for (const auto& g : graph.grants) {
    if (g.parent == 0) continue;
    std::string text = g.origin;
    if (g.via != 0) text += " via ch " + std::to_string(g.via);
    out += fmt::format("  g{} -> g{} [class=\"parent\", {}, label={}];\n", g.parent, g.id, edge_style(g.origin),
                       q(text));
  }
  out += "}\n";
  return out;
}

// --- rendering ---------------------------------------------------------------

namespace {

constexpr const char* kDot = "/usr/bin/dot";
constexpr std::chrono::seconds kRenderTimeout{10};
constexpr std::size_t kMaxRenderedBytes = 256u << 20;
constexpr std::size_t kMaxStderrBytes = 4096;

Result<std::pair<Fd, Fd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    return make_error(Errc::kFailed, "pipe2 failed", errno);
  }
  return std::pair{Fd(p[0]), Fd(p[1])};
}

}  // namespace

Result<std::string> render_dot(std::string_view dot, std::string_view format) {
  if (format != "svg" && format != "png") {
    return make_error(Errc::kInvalidArgument, "unknown format '" + printable(format) + "' (dot, svg or png)");
  }
  if (::access(kDot, X_OK) != 0) {
    return make_error(Errc::kNotFound,
                      std::string("Graphviz's ") + kDot + " is not installed: install graphviz: apt-get install graphviz");
  }
  // The input goes through a socket, not a pipe: send(MSG_NOSIGNAL) to a
  // `dot` that died early is an error here, not a SIGPIPE that kills us.
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return make_error(Errc::kFailed, "socketpair failed", errno);
  }
  Fd in_ours(sv[0]), in_theirs(sv[1]);
  if (::fcntl(in_ours.get(), F_SETFL, O_NONBLOCK) != 0) return make_error(Errc::kFailed, "fcntl failed", errno);
  CAPSA_ASSIGN_OR_RETURN(auto out_pipe, make_pipe());
  CAPSA_ASSIGN_OR_RETURN(auto err_pipe, make_pipe());
  // The child's ends must block (dot does not expect O_NONBLOCK): the flag
  // is on the open file description, so clear it on the write ends.
  for (int fd : {out_pipe.second.get(), err_pipe.second.get()}) {
    if (::fcntl(fd, F_SETFL, 0) != 0) return make_error(Errc::kFailed, "fcntl failed", errno);
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_theirs.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe.second.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe.second.get(), 2);
  const std::string type = "-T" + std::string(format);
  char* argv[] = {const_cast<char*>(kDot), const_cast<char*>(type.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, kDot, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  in_theirs.reset();
  out_pipe.second.reset();
  err_pipe.second.reset();
  if (rc != 0) return make_error(Errc::kFailed, std::string("cannot run ") + kDot, rc);

  std::string output, errors;
  std::size_t sent = 0;
  bool out_open = true, err_open = true, timed_out = false, too_big = false;
  const auto deadline = std::chrono::steady_clock::now() + kRenderTimeout;
  char buf[65536];
  while (out_open || err_open) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3] = {{out_pipe.first.get(), POLLIN, 0}, {err_pipe.first.get(), POLLIN, 0},
                     {in_ours.valid() ? in_ours.get() : -1, POLLOUT, 0}};
    if (!out_open) fds[0].fd = -1;
    if (!err_open) fds[1].fd = -1;
    const int n = ::poll(fds, 3, static_cast<int>(left.count()));
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0 && in_ours.valid()) {
      const ssize_t w = ::send(in_ours.get(), dot.data() + sent, dot.size() - sent, MSG_NOSIGNAL);
      if (w > 0) sent += static_cast<std::size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == dot.size()) in_ours.reset();  // EOF for dot
    }
    for (int k = 0; k < 2; ++k) {
      if (fds[k].revents == 0) continue;
      const ssize_t r = ::read(fds[k].fd, buf, sizeof(buf));
      if (r > 0) {
        std::string& to = k == 0 ? output : errors;
        const std::size_t cap = k == 0 ? kMaxRenderedBytes : kMaxStderrBytes;
        to.append(buf, std::min(static_cast<std::size_t>(r), cap - std::min(cap, to.size())));
        if (k == 0 && output.size() >= kMaxRenderedBytes) too_big = true;
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        (k == 0 ? out_open : err_open) = false;
      }
    }
    if (too_big) break;
  }
  if (timed_out || too_big) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return make_error(Errc::kFailed, fmt::format("{} did not finish within {} s: killed", kDot, kRenderTimeout.count()));
  }
  if (too_big) return make_error(Errc::kFailed, fmt::format("{}'s output exceeds {} bytes", kDot, kMaxRenderedBytes));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!errors.empty() && errors.back() == '\n') errors.pop_back();
    return make_error(Errc::kFailed,
                      fmt::format("{} -T{} failed ({}): {}", kDot, format,
                                  WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                    : "signal " + std::to_string(WTERMSIG(status)),
                                  printable(errors)));
  }
  return output;
}

}  // namespace capsa::cli
