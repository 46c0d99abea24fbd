// capsa — the `capsa revoke` subcommand.
//
// Revokes a grant on a running supervisor, over its control socket: the
// grant and every live grant derived from it (returned by a call on it,
// attenuated from it). Its holder sees the port closed, calls in flight
// fail with `revoked`; a policy grant stays revoked for that worker (a Get
// of the same name answers `revoked`). Prints the ids revoked, the asked
// one first:
//
//   capsa revoke [--control SOCKET] [--reason TEXT] ID | WORKER/NAME
//   revoked 7 9 12
//
// WORKER/NAME names the live grant NAME the policy gave WORKER (found in an
// audit report, then revoked by its id): ids differ from run to run, names
// are in the policy.
//
// The audit log records the revocation with the reason and the operator's
// uid and pid. --control as for `capsa audit` (cli_audit.h).
//
// Exit status: 0 revoked, 1 refused or failed (the supervisor's error is
// printed: no live grant with that id, a channel end that cannot be
// revoked, ...) or no supervisor reachable, 2 usage error.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

namespace capsa::cli {

struct RevokeOptions {
  std::string control;  // "" = find the one in the default directory
  std::string reason;
  std::string grant;  // digits (an id) or WORKER/NAME
};

CLI::App* add_revoke_command(CLI::App& app, RevokeOptions& options);
int run_revoke(const RevokeOptions& options, std::ostream& out, std::ostream& err);

}  // namespace capsa::cli
