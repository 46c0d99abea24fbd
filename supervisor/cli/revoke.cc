#include "supervisor/cli/revoke.h"

#include <charconv>

#include "supervisor/cli/audit.h"
#include "supervisor/control/client.h"

namespace capsa::cli {
namespace {

// "WORKER/NAME" -> the id of the live grant NAME that the policy gave
// WORKER (no parent: not one returned by a call), from an audit report.
Result<std::uint64_t> find_named_grant(supervisor::ControlClient& client, std::string_view worker,
                                       std::string_view name) {
  CAPSA_ASSIGN_OR_RETURN(auto snapshot, client.audit(/*include_ended=*/false));
  std::string names;
  for (const control::GrantEntry* g : *snapshot.report().grants()) {
    if (g->worker() == nullptr || g->worker()->string_view() != worker || g->parent() != 0) continue;
    std::string_view n = g->name() != nullptr ? g->name()->string_view() : std::string_view();
    if (n == name) return g->id();
    if (!n.empty()) names += std::string(names.empty() ? "" : ", ") + std::string(n);
  }
  return make_error(Errc::kNotFound, "worker \"" + std::string(worker) + "\" holds no live grant \"" +
                                         std::string(name) + "\" (its named grants: " +
                                         (names.empty() ? "none" : names) + ")");
}

}  // namespace

CLI::App* add_revoke_command(CLI::App& app, RevokeOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "revoke", "Revoke a grant (and every grant derived from it) on a running supervisor");
  cmd->add_option("GRANT", options.grant,
                  "the grant: its id, as `capsa audit` shows it, or WORKER/NAME for the grant "
                  "the policy names NAME for that worker")
      ->required()
      ->check([](const std::string& v) -> std::string {
        auto slash = v.find('/');
        bool id = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
        bool named = slash != std::string::npos && slash != 0 && slash + 1 < v.size() &&
                     v.find('/', slash + 1) == std::string::npos;
        return id || named ? std::string() : "GRANT must be an id or WORKER/NAME, got \"" + v + "\"";
      });
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
  std::uint64_t grant = 0;
  const auto slash = options.grant.find('/');
  if (slash == std::string::npos) {
    const char* end = options.grant.data() + options.grant.size();
    auto [ptr, ec] = std::from_chars(options.grant.data(), end, grant);
    if (ec != std::errc() || ptr != end) {
      err << "capsa revoke: GRANT must be an id or WORKER/NAME, got \"" << options.grant << "\"\n";
      return 2;
    }
  }
  ControlTarget target = connect_control(options.control, "revoke", err);
  if (!target.client) return target.exit_status;
  if (slash != std::string::npos) {
    auto found = find_named_grant(*target.client, std::string_view(options.grant).substr(0, slash),
                                  std::string_view(options.grant).substr(slash + 1));
    if (!found) {
      err << "capsa revoke: " << found.error().message << "\n";
      return 1;
    }
    grant = *found;
  }
  auto ids = target.client->revoke(grant, options.reason);
  if (!ids) {
    err << "capsa revoke: grant " << grant << ": " << ids.error().to_string() << "\n";
    return 1;
  }
  out << "revoked";
  for (std::uint64_t id : *ids) out << ' ' << id;
  out << '\n';
  return 0;
}

}  // namespace capsa::cli
