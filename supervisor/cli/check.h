// capsa — the `capsa check POLICY` subcommand.
//
// Validates a policy file and explains it: for each worker, what it runs,
// its sandbox and limits, and each grant with its API, rights and
// constraints; a readable table, or JSON with --json. Exit status: 0 valid,
// 1 invalid, 2 usage error (bad option, bad --define).
//
//   capsa check [--json] [--no-fs-checks] [--define NAME=VALUE]... POLICY
//
// --define sets a ${NAME} variable of the policy (docs/POLICY.md); a
// relative value used as a path (`-D bin=build/plugins`) is relative to the
// current directory.
// --no-fs-checks skips the checks that programs, read-only binds and
// directory roots exist on this machine, to review a policy written for
// another one; paths must still be absolute, and a seccomp profile named by
// the policy is still read. The supervisor never skips them.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "policy/loader.h"

namespace capsa::cli {

inline constexpr int kExitValid = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUsage = 2;

struct CheckOptions {
  std::string policy_path;
  std::vector<std::string> defines;  // "NAME=VALUE"
  bool json = false;
  bool no_fs_checks = false;
};

// Adds the subcommand to `app`; `options` is filled when it is parsed.
CLI::App* add_check_command(CLI::App& app, CheckOptions& options);

// --define, shared with `capsa run`: sets load.defines from "NAME=VALUE"
// strings. False, with the reason on `err`, for one without a name or '='.
bool apply_defines(const std::vector<std::string>& defines, std::string_view command,
                   policy::LoadOptions& load, std::ostream& err);

// Runs it: the explanation (or JSON) on `out`, errors on `err` (in --json
// mode the errors are JSON on `out`). Returns the exit status.
int run_check(const CheckOptions& options, std::ostream& out, std::ostream& err);

}  // namespace capsa::cli
