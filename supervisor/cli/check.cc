#include "supervisor/cli/check.h"

#include <filesystem>
#include <system_error>

#include "policy/explain.h"
#include "policy/loader.h"
#include "supervisor/supervisor.h"

namespace capsa::cli {

CLI::App* add_check_command(CLI::App& app, CheckOptions& options) {
  CLI::App* cmd = app.add_subcommand("check", "Validate a policy file and explain what it grants");
  cmd->add_option("POLICY", options.policy_path, "policy file (JSON with comments)")->required();
  cmd->add_option("-D,--define", options.defines, "set the policy variable ${NAME}")
      ->type_name("NAME=VALUE");
  cmd->add_flag("--json", options.json, "print the result as JSON for tools");
  cmd->add_flag("--no-fs-checks", options.no_fs_checks,
                "do not check that programs, binds and directory roots exist here");
  return cmd;
}

bool apply_defines(const std::vector<std::string>& defines, std::string_view command,
                   policy::LoadOptions& load, std::ostream& err) {
  for (const std::string& d : defines) {
    auto eq = d.find('=');
    if (eq == std::string::npos || eq == 0) {
      err << "capsa " << command << ": --define wants NAME=VALUE, got \"" << d << "\"\n";
      return false;
    }
    load.defines[d.substr(0, eq)] = d.substr(eq + 1);
  }
  // Relative values used as paths resolve against where the command runs
  // (policy/loader.h).
  std::error_code ec;
  load.base_dir = std::filesystem::current_path(ec).string();
  return true;
}

int run_check(const CheckOptions& options, std::ostream& out, std::ostream& err) {
  policy::LoadOptions load;
  load.build.check_filesystem = !options.no_fs_checks;
  if (!apply_defines(options.defines, "check", load, err)) return kExitUsage;
  // The catalog `capsa run` checks against: the supervisor's own.
  auto result = policy::load_policy_file(options.policy_path, supervisor::Supervisor::api_catalog(), load);
  if (!result) {
    const policy::Diagnostics& diags = result.error();
    if (options.json) {
      out << policy::diagnostics_json(diags);
    } else {
      err << policy::format_diagnostics(diags);
      err << options.policy_path << ": invalid policy, " << diags.size()
          << (diags.size() == 1 ? " error\n" : " errors\n");
    }
    return kExitInvalid;
  }
  if (options.json) {
    out << policy::explain_json(*result);
  } else {
    std::size_t w = result->workers.size(), c = result->channels.size();
    out << options.policy_path << ": valid policy, " << w << (w == 1 ? " worker, " : " workers, ")
        << c << (c == 1 ? " channel\n\n" : " channels\n\n");
    out << policy::explain_text(*result);
  }
  return kExitValid;
}

}  // namespace capsa::cli
