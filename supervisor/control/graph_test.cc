// `capsa graph` (supervisor/cli/cap_graph.h, graph.h) against a real
// supervisor: a policy grant attenuated, a port delegated over a mediated
// channel and revoked with a hostile reason through the control socket.
// The live graph (control socket) and the graph rebuilt from the audit log
// it wrote must agree with that log exactly (every parent -> child edge is
// a grant_created parent_grant or a port_delegated parent, and no other);
// --at before the revocation shows the grant live, at it revoked. Hostile
// strings in every field give DOT that real Graphviz renders to an SVG that
// python3's XML parser accepts, with no node or attribute injected.
#include <fcntl.h>

#include <chrono>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "capabilities/validator.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/cli/audit_reader.h"
#include "supervisor/cli/cap_graph.h"
#include "supervisor/cli/format.h"
#include "supervisor/cli/graph.h"
#include "supervisor/cli/revoke.h"
#include "supervisor/cli/test_util.h"
#include "supervisor/control/server_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;
using Edge = std::pair<std::uint64_t, std::uint64_t>;

// The parent -> child edges of a DOT text (class "parent").
std::set<Edge> parent_edges(const std::string& dot, std::size_t* count = nullptr) {
  static const std::regex re(R"(g(\d+) -> g(\d+) \[class="parent")");
  std::set<Edge> out;
  std::size_t n = 0;
  for (auto it = std::sregex_iterator(dot.begin(), dot.end(), re); it != std::sregex_iterator(); ++it) {
    out.emplace(std::stoull((*it)[1]), std::stoull((*it)[2]));
    ++n;
  }
  if (count != nullptr) *count = n;
  return out;
}

// Parses `svg` with python3's XML parser; the number of Graphviz nodes
// (<g class="node ...">) it holds, or -1 if it is not XML.
int svg_nodes(const std::string& svg, const std::string& dir) {
  const std::string path = dir + "/graph.svg";
  std::ofstream(path, std::ios::binary) << svg;
  auto r = cli::testing::run(
      {"/usr/bin/python3", "-c",
       "import sys, xml.etree.ElementTree as E\n"
       "root = E.parse(sys.argv[1]).getroot()\n"
       "print(sum(1 for g in root.iter('{http://www.w3.org/2000/svg}g')"
       " if g.get('class', '').split()[:1] == ['node']))",
       path},
      dir);
  if (r.status != 0) {
    ADD_FAILURE() << "python3 rejected the SVG: " << r.err;
    return -1;
  }
  return std::stoi(r.out);
}

// GraphOptions without designated initializers (every field has a default).
cli::GraphOptions options(std::string control, std::string log, std::string run = "",
                          std::string at = "", std::string format = "dot", std::string output = "") {
  cli::GraphOptions o;
  o.control = std::move(control);
  o.log = std::move(log);
  o.run = std::move(run);
  o.at = std::move(at);
  o.format = std::move(format);
  o.output = std::move(output);
  return o;
}

class GraphTest : public ControlTest {
 protected:
  const Interface& echo_iface() { return *sup_->registry().find("capsa.test.Echo"); }

  // b's end of "pipe" receives a Put and answers it; the port it carried.
  Fd serve_put(Port& server) {
    Encoder enc;
    if (!server.wait_readable(5000).value_or(false)) return Fd();
    auto p = server.receive();
    if (!p) return Fd();
    auto call = validate(std::move(*p), echo_iface(), ValidateOptions{});
    if (!call) return Fd();
    const auto* req = call->payload_as<capsa::test::PutRequest>();
    if (!req->port().has_value()) return Fd();
    Fd port = call->take_handle(*req->port());
    auto& fbb = enc.payload_builder();
    fbb.Finish(capsa::test::CreatePutReply(fbb, 1, flatbuffers::nullopt));
    Header h{MessageKind::kReply, call->call_id(), 1, call->method()->reply.type_hash, Errc::kFailed, {}};
    if (!send_message(server, enc, h, enc.payload_bytes(), {})) return Fd();
    return port;
  }

  std::string graph(cli::GraphOptions o) {
    std::ostringstream out, err;
    EXPECT_EQ(cli::run_graph(o, out, err), 0) << err.str();
    return out.str();
  }
};

const std::string kHostile =
    "x\", shape=none, label=\"pwned\"]; g999 [label=\"injected\"]; //\n"
    "<script>alert(1)</script> &bogus; \\N \\G \x1b[31m \xc2\x9b \xff\xc0\xaf \xed\xa0\x80 \xef\xbf\xbe";

TEST_F(GraphTest, LiveAndReplayedGraphsMatchTheAuditLog) {
  make([](policy::PolicyBuilder& b) {
    for (const char* n : {"a", "b"}) {
      echo_worker(b, n).grant("mobile", "capsa.test.Echo").all_rights().transferable(true);
    }
    b.channel("pipe").interface("capsa.test.Echo").client("a").server("b");
  });
  RawBootstrap a = attach("a");
  RawBootstrap b = attach("b");
  serve_and_run(sock_);
  auto mobile = a.get("mobile");
  auto ca = a.get("pipe");
  auto cb = b.get("pipe");
  auto echo_got = a.get("echo");
  ASSERT_TRUE(mobile && ca && cb && echo_got);
  // Attenuated: a's only copy of "echo" goes in, so "echo" is released.
  auto narrow = a.attenuate(std::move(echo_got->port), {"Echo"});
  ASSERT_TRUE(narrow) << narrow.error().to_string();
  // Delegated: a sends a copy of "mobile" to b over the mediated channel.
  Client client(std::move(ca->port), echo_iface());
  auto answer = std::async(std::launch::async, [&] {
    auto& fbb = client.payload_builder();
    fbb.Finish(capsa::test::CreatePutRequest(fbb, 0));
    std::vector<Handle> h;
    h.push_back(Handle{HandleKind::kPort, Fd(::fcntl(mobile->port.fd().get(), F_DUPFD_CLOEXEC, 0))});
    return client.call(1, client.payload_bytes(), std::move(h));
  });
  Fd at_b = serve_put(cb->port);
  ASSERT_TRUE(at_b.valid());
  ASSERT_TRUE(answer.get());

  const auto gs = grants();
  const GrantView* own = grant_named(gs, "a", "mobile");
  const GrantView* copy = grant_named(gs, "b", "mobile");
  const GrantView* att = nullptr;
  for (const auto& g : gs) att = g.origin == GrantOrigin::kAttenuated ? &g : att;
  ASSERT_TRUE(own && copy && att);
  const std::uint64_t own_id = own->id, copy_id = copy->id, att_id = att->id;
  ASSERT_EQ(copy->parent, own_id);

  // Live: the delegated edge with its channel.
  std::string live = graph(options(sock_, ""));
  EXPECT_NE(live.find(fmt::format("g{} -> g{} [class=\"parent\"", own_id, copy_id)), std::string::npos) << live;
  EXPECT_NE(live.find("label=\"delegated via ch "), std::string::npos) << live;
  EXPECT_NE(live.find(fmt::format("g{} [shape=ellipse, class=\"grant live\"", copy_id)), std::string::npos);
  EXPECT_NE(live.find("subgraph cluster_c0"), std::string::npos) << "the channel's ends are grouped\n" << live;

  // The clock moves on (at most a few ms, bounded), so that --at can name a
  // moment after the copy was made and before it was revoked.
  const auto made = std::chrono::system_clock::now();
  while (std::chrono::system_clock::now() - made < std::chrono::milliseconds(3)) {
  }
  std::ostringstream rout, rerr;
  ASSERT_EQ(cli::run_revoke({.control = sock_, .reason = kHostile, .grant = std::to_string(own_id)}, rout, rerr), 0)
      << rerr.str();
  EXPECT_EQ(rout.str(), fmt::format("revoked {} {}\n", own_id, copy_id));

  std::string after = graph(options(sock_, ""));
  EXPECT_NE(after.find(fmt::format("g{} [shape=ellipse, class=\"grant revoked\"", copy_id)), std::string::npos)
      << after;
  // Rendered by real Graphviz, the live picture is XML.
  cli::GraphOptions svg_opts = options(sock_, "", "", "", "svg", dir_.path() + "/live.svg");
  ASSERT_EQ(graph(svg_opts), "");
  std::ifstream in(svg_opts.output);
  std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_GT(svg_nodes(svg, dir_.path()), 0);

  // The log: every derivation it records, and nothing else, is an edge.
  std::set<Edge> logged;
  std::size_t logged_lines = 0;
  std::int64_t revoked_ts = 0, copy_created_ts = 0;
  for (const auto& line : audit_lines(audit_path_)) {
    auto r = cli::parse_audit_line(line);
    ASSERT_TRUE(r) << line;
    if (r->event == "grant_created" && r->unum("parent_grant") != 0) {
      logged.emplace(r->unum("parent_grant"), r->unum("grant"));
      ++logged_lines;
    }
    if (r->event == "port_delegated") logged.emplace(r->unum("parent"), r->unum("grant"));
    if (r->event == "grant_created" && r->unum("grant") == copy_id) copy_created_ts = r->ts_ms;
    if (r->event == "revoked" && r->unum("grant") == copy_id) revoked_ts = r->ts_ms;
  }
  ASSERT_EQ(logged.size(), 2u) << "attenuated and delegated";
  const auto files = cli::audit_files_of(audit_path_);
  auto replay = cli::graph_from_log(files, "", std::nullopt);
  ASSERT_TRUE(replay) << replay.error().to_string();
  std::size_t edges = 0;
  const std::string dot = cli::graph_to_dot(*replay);
  EXPECT_EQ(parent_edges(dot, &edges), logged) << dot;
  EXPECT_EQ(edges, logged_lines);
  // Live, a released grant's children move up to its parent (so revoking
  // an ancestor still reaches them): the attenuated copy of the released
  // "echo" has no parent there; the log keeps where it came from.
  EXPECT_EQ(parent_edges(after), (std::set<Edge>{{own_id, copy_id}}));
  const cli::GraphGrant* c = replay->find(copy_id);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state, cli::GraphGrantState::kRevoked);
  EXPECT_EQ(c->end_reason, fmt::format("parent grant {} revoked", own_id));
  // The operator's words after who asked, invalid UTF-8 as U+FFFD (the
  // log's rules), the rest byte for byte.
  const std::string& why = replay->find(own_id)->end_reason;
  EXPECT_TRUE(why.starts_with("operator (")) << why;
  EXPECT_NE(why.find(kHostile.substr(0, 80)), std::string::npos) << why;
  EXPECT_EQ(c->origin, "delegated");
  EXPECT_NE(c->via, 0u);
  EXPECT_EQ(c->channel, 0u) << "a copy of a served port is not a channel end";
  const cli::GraphGrant* pipe_a = nullptr;
  for (const auto& g : replay->grants) pipe_a = g.holder == "a" && g.name == "pipe" ? &g : pipe_a;
  ASSERT_NE(pipe_a, nullptr);
  EXPECT_NE(pipe_a->channel, 0u);
  ASSERT_EQ(replay->channels.size(), 1u);
  EXPECT_EQ(replay->channels[0].ends.size(), 2u);
  // The attenuated copy's parent: a's "echo", released when it went in.
  const cli::GraphGrant* narrowed = replay->find(att_id);
  ASSERT_NE(narrowed, nullptr);
  const cli::GraphGrant* echo_grant = replay->find(narrowed->parent);
  ASSERT_NE(echo_grant, nullptr);
  EXPECT_EQ(echo_grant->name, "echo");
  EXPECT_EQ(echo_grant->state, cli::GraphGrantState::kReleased);
  EXPECT_TRUE(logged.contains({echo_grant->id, att_id}));

  // --at: before the revocation the copy is live, at it revoked.
  ASSERT_GT(revoked_ts, copy_created_ts);
  auto before = cli::graph_from_log(files, "", revoked_ts - 1);
  auto at = cli::graph_from_log(files, "", revoked_ts);
  ASSERT_TRUE(before && at);
  ASSERT_NE(before->find(copy_id), nullptr);
  EXPECT_EQ(before->find(copy_id)->state, cli::GraphGrantState::kLive);
  EXPECT_EQ(at->find(copy_id)->state, cli::GraphGrantState::kRevoked);
  auto early = cli::graph_from_log(files, "", copy_created_ts - 1);
  ASSERT_TRUE(early);
  EXPECT_EQ(early->find(copy_id), nullptr) << "not made yet";

  // The hostile reason stays inside its tooltip: Graphviz renders the
  // replayed graph and the SVG is XML with exactly the nodes drawn.
  const std::string at_text = cli::rfc3339(revoked_ts * 1'000'000);
  cli::GraphOptions o = options("", audit_path_, "", at_text, "svg");
  std::string replay_svg = graph(o);
  const int nodes = svg_nodes(replay_svg, dir_.path());
  const std::size_t expected = at->workers.size() + at->grants.size() + 1 /* capsa.Bootstrap */ +
                               1 /* capsa.test.Echo */;
  EXPECT_EQ(nodes, static_cast<int>(expected)) << replay_svg;
  EXPECT_EQ(replay_svg.find("injected</text>"), std::string::npos);
}

// Every field a log or a report can fill, hostile; the DOT keeps each in
// its quotes: Graphviz draws exactly the nodes and edges we wrote.
TEST(GraphDot, HostileStringsStayInTheirLabels) {
  const std::string evil = kHostile + std::string("\0nul", 4);
  cli::CapGraph g;
  g.source = evil;
  g.workers.push_back({.name = evil, .running = false, .exit = evil});
  g.workers.push_back({.name = "ok", .running = true, .exit = ""});
  cli::GraphGrant a;
  a.id = 1;
  a.holder = evil;
  a.name = evil;
  a.interface = evil;
  a.rights = {evil, "Get"};
  a.origin = evil;
  a.kind = "served";
  cli::GraphGrant b = a;
  b.id = 2;
  b.parent = 1;
  b.holder = "ok";
  b.origin = "delegated";
  b.channel = 5;
  b.via = 5;
  b.state = cli::GraphGrantState::kRevoked;
  b.end_reason = evil;
  g.grants = {a, b};
  g.channels.push_back({.id = 5, .direct = false, .name = evil, .interface = evil, .ends = {2}});
  const std::string dot = cli::graph_to_dot(g);
  for (char ch : dot) {
    auto u = static_cast<unsigned char>(ch);
    ASSERT_TRUE(u >= 0x20 || ch == '\n') << "raw control byte " << int(u) << " in\n" << dot;
  }
  EXPECT_EQ(dot.find("\xc2\x9b"), std::string::npos);
  // The quotes that would end the string are escaped.
  EXPECT_EQ(dot.find(R"(g999 [label="injected"])"), std::string::npos) << dot;
  EXPECT_NE(dot.find(R"(g999 [label=\"injected\"])"), std::string::npos) << dot;
  EXPECT_EQ(cli::dot_escape("a\"b\\c\nd&e<f>"), "a\\\"b\\\\c\\\\x0ad&amp;e<f>");
  EXPECT_EQ(cli::dot_escape("\xff"), "\xef\xbf\xbd");

  auto svg = cli::render_dot(dot, "svg");
  ASSERT_TRUE(svg) << svg.error().to_string();
  TempDir dir;
  // 2 workers, 1 service (grant 1), 2 grants: nothing injected.
  EXPECT_EQ(svg_nodes(*svg, dir.path()), 5) << *svg;
  EXPECT_EQ(svg->find("injected</text>"), std::string::npos);
  EXPECT_NE(svg->find("&lt;script&gt;"), std::string::npos) << "shown as text";
  auto png = cli::render_dot(dot, "png");
  ASSERT_TRUE(png) << png.error().to_string();
  EXPECT_EQ(png->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  auto bad = cli::render_dot("digraph { a -> }", "svg");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("syntax error"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(cli::render_dot(dot, "-o/tmp/x"));
}

// Two runs in one file (the real writer, opened twice): the last by
// default, another by a prefix of its id, none by an unknown one.
TEST(GraphLog, ChoosesARun) {
  TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  std::vector<std::string> runs;
  for (const char* worker : {"first", "second"}) {
    auto log = AuditLog::open(path);
    ASSERT_TRUE(log);
    std::string rights[] = {"Echo"};
    ASSERT_TRUE((*log)->grant_created(1, worker, "capsa.test.Echo", GrantOrigin::kPolicy, rights, 0,
                                      {.name = "echo", .policy_grant = {}, .constraints = nullptr, .kind = {}, .channel = 0}));
    runs.push_back(cli::parse_audit_line(audit_lines(path).back())->run);
  }
  const auto files = cli::audit_files_of(path);
  auto last = cli::graph_from_log(files, "", std::nullopt);
  ASSERT_TRUE(last) << last.error().to_string();
  EXPECT_EQ(last->run, runs[1]);
  ASSERT_EQ(last->grants.size(), 1u);
  EXPECT_EQ(last->grants[0].holder, "second");
  auto first = cli::graph_from_log(files, runs[0].substr(0, 6), std::nullopt);
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_EQ(first->grants[0].holder, "first");
  auto none = cli::graph_from_log(files, "zz", std::nullopt);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::kNotFound);
  EXPECT_NE(none.error().message.find(runs[0]), std::string::npos) << "lists the runs";

  std::ostringstream out, err;
  EXPECT_EQ(cli::run_graph(options("", path, "zz"), out, err), 1);
  EXPECT_EQ(cli::run_graph(options("", "", "zz"), out, err), 2) << "--run without --log";
  EXPECT_EQ(cli::run_graph(options("", path, "", "yesterday"), out, err), 2);
  EXPECT_EQ(cli::run_graph(options("", dir.path() + "/none"), out, err), 1);
}

}  // namespace
}  // namespace capsa::supervisor
