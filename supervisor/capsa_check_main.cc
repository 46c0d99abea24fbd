// capsa — the command line. main() only wires the subcommands, each in its
// own cli_<name>.{h,cc}; exit status 2 for every usage error.
#include <iostream>

#include <CLI/CLI.hpp>

#include "supervisor/cli_check.h"

int main(int argc, char** argv) {
  CLI::App app{"capsa: capability-security sandbox runtime for untrusted workers"};
  app.require_subcommand(1);
  capsa::cli::CheckOptions check;
  CLI::App* check_cmd = capsa::cli::add_check_command(app, check);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help or the usage error
    return rc == 0 ? 0 : capsa::cli::kExitUsage;
  }
  if (check_cmd->parsed()) return capsa::cli::run_check(check, std::cout, std::cerr);
  return capsa::cli::kExitUsage;
}
