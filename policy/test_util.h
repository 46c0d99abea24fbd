// Helpers for policy tests: a scratch directory with placeholder programs,
// and finding where a snippet sits in a policy text (to assert line:column).
#pragma once

#include <string>
#include <string_view>

#include "policy/diagnostic.h"

namespace capsa::policy::testing {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `name` (relative) with `content`; returns its absolute path.
  std::string write(const std::string& name, std::string_view content) const;
  // Writes an executable placeholder script; returns its absolute path.
  std::string executable(const std::string& name) const;
  std::string mkdir(const std::string& name) const;

 private:
  std::string path_;
};

// "file:line:col" of the first occurrence of `needle` in `text` (1-based,
// bytes), as the reader counts. Aborts if absent (a broken test).
std::string pos_of(std::string_view file, std::string_view text, std::string_view needle);

// True if some diagnostic is at `where` and contains `fragment`.
bool has_diag(const Diagnostics& diags, const std::string& where, std::string_view fragment);

}  // namespace capsa::policy::testing
