#include "supervisor/cli/revoke.h"

#include "supervisor/cli/audit.h"
#include "supervisor/control/client.h"

namespace capsa::cli {

CLI::App* add_revoke_command(CLI::App& app, RevokeOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "revoke", "Revoke a grant (and every grant derived from it) on a running supervisor");
  cmd->add_option("ID", options.grant, "the grant id, as `capsa audit` shows it")->required();
  cmd->add_option("--control", options.control,
                  "the supervisor's control socket (default: the only one running)")
      ->type_name("SOCKET");
  cmd->add_option("--reason", options.reason, "why, for the audit log")->type_name("TEXT");
  return cmd;
}

int run_revoke(const RevokeOptions& options, std::ostream& out, std::ostream& err) {
  if (options.reason.size() > supervisor::kMaxRevokeReasonBytes) {
    err << "capsa revoke: --reason is longer than " << supervisor::kMaxRevokeReasonBytes
        << " bytes\n";
    return 2;
  }
  ControlTarget target = connect_control(options.control, "revoke", err);
  if (!target.client) return target.exit_status;
  auto ids = target.client->revoke(options.grant, options.reason);
  if (!ids) {
    err << "capsa revoke: grant " << options.grant << ": " << ids.error().to_string() << "\n";
    return 1;
  }
  out << "revoked";
  for (std::uint64_t id : *ids) out << ' ' << id;
  out << '\n';
  return 0;
}

}  // namespace capsa::cli
