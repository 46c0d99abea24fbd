#include "policy/diagnostic.h"

#include <algorithm>
#include <tuple>

namespace capsa::policy {

std::string SourceLoc::to_string() const {
  if (!known()) return {};
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Diagnostic::to_string() const {
  if (!where.known()) return "error: " + message;
  return where.to_string() + ": error: " + message;
}

std::string format_diagnostics(const Diagnostics& diags) {
  std::string out;
  for (const Diagnostic& d : diags) {
    out += d.to_string();
    out += '\n';
  }
  return out;
}

void sort_diagnostics(Diagnostics& diags) {
  std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.where.known() != b.where.known()) return a.where.known();
    return std::tie(a.where.file, a.where.line, a.where.column) <
           std::tie(b.where.file, b.where.line, b.where.column);
  });
  // One problem per position: a value that failed an early step (schema,
  // variables) is not reported again by a later one.
  auto same_place = [](const Diagnostic& a, const Diagnostic& b) {
    return a.where.known() && b.where.known() && a.where.file == b.where.file &&
           a.where.line == b.where.line && a.where.column == b.where.column;
  };
  diags.erase(std::unique(diags.begin(), diags.end(), same_place), diags.end());
}

}  // namespace capsa::policy
