// capsa — the `capsa report` subcommand (report.h).
#include "supervisor/cli/report.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "supervisor/cli/audit_reader.h"
#include "supervisor/cli/cap_graph.h"
#include "supervisor/cli/check.h"
#include "supervisor/cli/report_data.h"
#include "supervisor/cli/report_html.h"

namespace capsa::cli {
namespace {

// Past this many grants a drawing is unreadable and `dot` slow; `capsa
// graph` draws it on its own when asked.
constexpr std::size_t kMaxGraphGrants = 1000;

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

ReportGraph graph_of(const std::vector<std::string>& files, const std::string& run) {
  ReportGraph out;
  Result<CapGraph> g = graph_from_log(files, run, std::nullopt);
  if (!g) {
    out.unavailable = g.error().to_string();
    return out;
  }
  out.source = g->source;
  out.workers = g->workers.size();
  out.grants = g->grants.size();
  if (g->grants.size() > kMaxGraphGrants) {
    out.unavailable = std::to_string(g->grants.size()) + " grants, more than the " +
                      std::to_string(kMaxGraphGrants) + " a page draws (capsa graph --log draws it)";
    return out;
  }
  Result<std::string> svg = render_dot(graph_to_dot(*g), "svg");
  if (!svg) {
    out.unavailable = svg.error().to_string();
    return out;
  }
  Result<std::string> checked = checked_svg(*svg);
  if (!checked) {
    out.unavailable = checked.error().to_string();
    return out;
  }
  out.svg = std::move(*checked);
  return out;
}

Result<void> write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(Errc::kFailed, sys_error("write"), errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

// OUT whole or not at all: a temporary file beside it (mkstemp: O_EXCL,
// mode 0600, so nothing planted at a guessable name is written through),
// renamed over OUT once complete.
Result<void> write_page(const std::string& path, std::string_view page) {
  std::string tmp = path + ".XXXXXX";
  Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return make_error(Errc::kFailed, sys_error("create " + tmp), errno);
  Result<void> w = write_all(fd.get(), page);
  if (w && ::fsync(fd.get()) != 0) w = make_error(Errc::kFailed, sys_error("fsync " + tmp), errno);
  fd.reset();
  if (w && ::rename(tmp.c_str(), path.c_str()) != 0) {
    w = make_error(Errc::kFailed, sys_error("rename to " + path), errno);
  }
  if (!w) ::unlink(tmp.c_str());
  return w;
}

}  // namespace

CLI::App* add_report_command(CLI::App& app, ReportOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "report", "Write one self-contained HTML page about a run in an audit log: its capability "
                "graph, timeline, and denials and violations per worker");
  cmd->add_option("LOG", options.log, "the audit log (its rotated files LOG.1 ... are read too)")
      ->required();
  cmd->add_option("-o,--output", options.output, "the page to write (- for stdout)")
      ->required()
      ->type_name("FILE");
  cmd->add_option("--run", options.run,
                  "the run to report: its id or a unique prefix (default: the last in the log)")
      ->type_name("RUN");
  return cmd;
}

int run_report(const ReportOptions& options, std::ostream& out, std::ostream& err) {
  const std::vector<std::string> files = audit_files_of(options.log);
  if (files.empty()) {
    err << "capsa report: no audit log at " << options.log << "\n";
    return 1;
  }
  Result<ReportData> data = gather_report(options.log, files, options.run);
  if (!data) {
    err << "capsa report: " << data.error().message << "\n";
    return 1;
  }
  if (data->stats.bad != 0) {
    err << "capsa report: skipped " << data->stats.bad << " bad line(s), the first at "
        << data->stats.first_bad << "\n";
  }
  const ReportGraph graph = graph_of(files, data->run);
  if (graph.svg.empty()) err << "capsa report: the page has no graph: " << graph.unavailable << "\n";
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  const std::string page = report_html(*data, graph, now.count());
  if (options.output == "-") {
    out << page;
    out.flush();
    return out ? 0 : 1;
  }
  if (Result<void> w = write_page(options.output, page); !w) {
    err << "capsa report: " << w.error().message << "\n";
    return 1;
  }
  out << "wrote " << options.output << " (run "
      << (data->run.empty() ? std::string("(none)") : data->run) << ", "
      << data->timeline_total << " lines)\n";
  return 0;
}

}  // namespace capsa::cli
