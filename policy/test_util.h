// Helpers for policy tests: finding where a snippet sits in a policy text
// (to assert line:column), and a scratch directory.
#pragma once

#include <string>
#include <string_view>

#include "policy/diagnostic.h"
#include "tests/support/temp_dir.h"

namespace capsa::policy::testing {

// The shared scratch directory (tests/support/temp_dir.h), named here too
// because policy and CLI tests know it as policy::testing::TempDir.
using TempDir = capsa::testing::TempDir;

// "file:line:col" of the first occurrence of `needle` in `text` (1-based,
// bytes), as the reader counts. Aborts if absent (a broken test).
std::string pos_of(std::string_view file, std::string_view text, std::string_view needle);

// True if some diagnostic is at `where` and contains `fragment`.
bool has_diag(const Diagnostics& diags, const std::string& where, std::string_view fragment);

}  // namespace capsa::policy::testing
