// capsa — the capability graph: who holds what and where it came from
// (`capsa graph`, and the picture in `capsa report`; docs/AUDITING.md).
//
// Nodes are workers, the supervisor's services (one per interface it
// serves) and grants; edges say who holds a grant, which grant a grant was
// derived from (returned, attenuated, delegated: parent -> child) and which
// grants are the ends of one mediated channel. Revoked and released grants
// stay in the graph, marked, so a picture of the past shows what was cut.
//
// Two sources, one model:
//   - a live supervisor's audit report (control socket, the same report as
//     `capsa audit --all`);
//   - an audit log replayed up to a moment: every grant_created,
//     port_transferred, port_delegated, channel_created, revoked, released,
//     worker_started and worker_exited line of ONE run (grant ids restart
//     per run) with ts at or before `at`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/error.h"
#include "control_generated.h"
#include "supervisor/cli/audit_reader.h"

namespace capsa::cli {

struct GraphWorker {
  std::string name;
  bool running = false;  // false: exited (or never started) by `at`
  std::string exit;      // "exited 0", "killed", ... when not running; "" if unknown
};

enum class GraphGrantState : std::uint8_t { kLive, kRevoked, kReleased };

struct GraphGrant {
  std::uint64_t id = 0;
  std::uint64_t parent = 0;  // 0: none
  std::string holder;        // a worker's name
  std::string name;          // the policy grant or channel name; "" if returned
  std::string interface;
  std::vector<std::string> rights;
  std::string origin;        // policy, returned, attenuated, delegated
  std::string kind;          // served, server_end, direct_end ("" when the log does not say)
  std::uint64_t channel = 0; // a mediated channel's end: the channel id
  std::uint64_t via = 0;     // delegated: the mediated channel it travelled through
  GraphGrantState state = GraphGrantState::kLive;
  std::string end_reason;    // why it was revoked or released
};

struct CapGraph {
  std::string source;  // "live supervisor pid N" or "LOG at TIME, run R"
  std::string run;     // the run replayed ("" for a live supervisor)
  std::vector<GraphWorker> workers;
  std::vector<GraphGrant> grants;  // by id, ascending
  // The channels seen and their ends' grant ids (ascending). A mediated
  // channel by its id (from `channel` of its ends); a direct one, which has
  // no id (0), by its policy name: the two direct_end grants of that name.
  struct Channel {
    std::uint64_t id = 0;
    bool direct = false;
    std::string name;  // the policy channel's name; "" for one made by NewChannel
    std::string interface;
    std::vector<std::uint64_t> ends;
  };
  std::vector<Channel> channels;

  const GraphGrant* find(std::uint64_t id) const;
};

// From a verified live report.
CapGraph graph_from_report(const control::AuditReport& report);

// From audit log `files` (audit_files_of order), run `run` (exactly or a
// unique prefix; "" = the last run in the files), state at `at_ms`
// (nullopt = the end of the log; else every line with ts <= at_ms). kNotFound
// when no such run, or the prefix is ambiguous (the message lists the
// candidates); a file that cannot be read is an error. Lines that are not
// audit records are skipped (audit_reader.h); a line naming a grant the run
// never created is ignored.
Result<CapGraph> graph_from_log(const std::vector<std::string>& files, std::string_view run,
                                std::optional<std::int64_t> at_ms);

// `s` as the inside of a DOT quoted string, shown literally whatever its
// bytes (cap_graph.cc says how: invalid UTF-8, controls, quotes,
// backslashes, entities), cut at 160 bytes. For anything else drawn from
// a log (capsa report).
std::string dot_escape(std::string_view s);

// Graphviz DOT text; every string from a log or report is escaped, so a
// hostile name cannot break out of its label or inject attributes.
std::string graph_to_dot(const CapGraph& graph);

// Runs Graphviz `dot -T<format>` (svg or png) on `dot`, without a shell,
// with a time bound; the output bytes, or an error that says to install
// graphviz when `dot` is missing.
Result<std::string> render_dot(std::string_view dot, std::string_view format);

}  // namespace capsa::cli
