// capsa — the `capsa audit` subcommand.
//
// Asks a running supervisor, over its control socket (control_client.h),
// for every live grant: its id, holder, policy name, interface, rights,
// origin, parent, age, calls, bytes, and whether the kernel agrees that
// the holder has the port (supervisor/control/proc_fds.h); and for its workers.
// A readable table, or one JSON object with --json.
//
//   capsa audit [--control SOCKET] [--json] [--all]
//
// --control names the supervisor's socket. Without it, the live sockets in
// the default directory (control_client.h, default_control_dir) are looked
// up: exactly one is used; with several, they are listed and the command
// exits 2 asking for --control. --all also shows the ended (revoked,
// released) grants the supervisor still keeps.
//
// Exit status: 0 done, 1 no supervisor reachable or it answered an error,
// 2 usage error (including "several supervisors, say which").
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

#include "control_generated.h"
#include "supervisor/control/client.h"

namespace capsa::cli {

struct AuditOptions {
  std::string control;  // "" = find the one in the default directory
  bool json = false;
  bool all = false;
};

CLI::App* add_audit_command(CLI::App& app, AuditOptions& options);
int run_audit(const AuditOptions& options, std::ostream& out, std::ostream& err);

// The two renderings of a (verified) report, for run_audit and tests.
// Text from the report is never trusted to be printable: control
// characters are shown escaped in the table (cli/format.h, printable), and
// JSON strings are escaped by nlohmann-json, invalid UTF-8 as U+FFFD.
std::string format_audit_table(const control::AuditReport& report, bool all);
std::string format_audit_json(const control::AuditReport& report);

// Shared with `capsa revoke`: connects to the control socket named by
// --control, or to the only live one in the default directory.
// The client connected to it, or nullptr with the exit status to return
// (1 none reachable, 2 several: say which); why is written to `err`.
struct ControlTarget {
  std::unique_ptr<supervisor::ControlClient> client;
  int exit_status = 0;
};
ControlTarget connect_control(const std::string& option, std::string_view command,
                              std::ostream& err);

// connect_control, then the verified audit report (with the ended grants
// the supervisor keeps when `include_ended`): `capsa audit` and `capsa
// graph`. No snapshot: `exit_status` to return, why written to `err`.
struct FetchedAudit {
  std::optional<supervisor::AuditSnapshot> snapshot;
  int exit_status = 0;
};
FetchedAudit fetch_audit(const std::string& control, bool include_ended, std::string_view command,
                         std::ostream& err);

}  // namespace capsa::cli
