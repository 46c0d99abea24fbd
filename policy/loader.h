// capsa policy — reading a policy file into the one builder.
//
//   LoadOptions opt;
//   opt.defines["bin"] = "/opt/capsa/bin";
//   Checked<Policy> p = load_policy_file("/etc/capsa/plugins.json",
//                                        builtin_api_catalog(), opt);
//
// Steps: read (regular file, at most 1 MiB), parse JSON with comments keeping
// positions (policy/jsonc.h), check the tree against policy.fbs
// (policy/schema_check.h), expand ${NAME} variables, feed PolicyBuilder with
// the position of every value, try_build(). Problems from every step are
// reported together, sorted by position; a syntax error stops at the parse.
//
// Variables: in every string value, ${NAME} is replaced by the value of NAME
// (letters, digits, _; not starting with a digit) and "$$" by "$". NAME comes
// from LoadOptions::defines (`capsa check --define NAME=VALUE`); `policy_dir`
// is predefined as the absolute directory of the policy file, unless defined.
// An undefined variable is an error at its line:column, never an empty string
// (which could turn "${root}/data" into "/data").
//
// Relative paths in variables: where a path is expected (program, ro_binds,
// seccomp_profile, a directory constraint such as root) and the string
// starts with a variable whose value is a relative path, that value is taken
// relative to LoadOptions::base_dir (the command line sets the current
// directory), so `--define bin=build/plugins` works from where it is typed.
// Elsewhere (args, env) values are used as they are.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "policy/api_catalog.h"
#include "policy/builder.h"
#include "policy/diagnostic.h"
#include "policy/model.h"

namespace capsa::policy {

struct LoadOptions {
  BuildOptions build;
  std::map<std::string, std::string, std::less<>> defines;
  // Absolute directory that relative variable values in paths resolve
  // against (above); "" = leave them relative (then they are an error).
  std::string base_dir;
};

Checked<Policy> load_policy_file(const std::string& path, const ApiCatalog& catalog,
                                 const LoadOptions& options = {});

// `file` names the text in diagnostics; if it is an absolute path its
// directory is `policy_dir`.
Checked<Policy> load_policy_text(std::string_view text, const std::string& file,
                                 const ApiCatalog& catalog, const LoadOptions& options = {});

}  // namespace capsa::policy
