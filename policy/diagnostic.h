// capsa policy — diagnostics: what is wrong, and where.
//
// A policy is rejected as a whole (no partial load) with every problem found,
// each with its file:line:column when it came from a file. The builder and
// the loader both report through this type, so a policy built in C++ and one
// read from a file produce the same messages.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <vector>

namespace capsa::policy {

// A position in a policy (or seccomp profile) file. Lines and columns count
// from 1; a column counts bytes, so a tab or a multi-byte UTF-8 character is
// one column per byte. `line == 0` means "not from a file" (built in C++).
struct SourceLoc {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;

  bool known() const noexcept { return line != 0; }
  // "policy.json:12:14", or "" when not known.
  std::string to_string() const;
};

struct Diagnostic {
  SourceLoc where;
  std::string message;  // what is wrong and what is allowed

  // "policy.json:12:14: error: unknown API \"fs.Dir\"; known: ..."
  std::string to_string() const;
};

using Diagnostics = std::vector<Diagnostic>;

// A whole-or-nothing result: the value, or every problem found.
template <typename T>
using Checked = std::expected<T, Diagnostics>;

// One diagnostic per line, in the order given.
std::string format_diagnostics(const Diagnostics& diags);

// Orders diagnostics by file, line, column (stable; unknown positions last),
// so a report reads top to bottom like the file, and keeps only the first
// diagnostic of each position (a value is reported once, for its first fault).
void sort_diagnostics(Diagnostics& diags);

}  // namespace capsa::policy
