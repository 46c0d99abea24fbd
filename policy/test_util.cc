#include "policy/test_util.h"

#include <cstdlib>

namespace capsa::policy::testing {

std::string pos_of(std::string_view file, std::string_view text, std::string_view needle) {
  auto at = text.find(needle);
  if (at == std::string_view::npos) std::abort();
  std::uint32_t line = 1, col = 1;
  for (std::size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::string(file) + ":" + std::to_string(line) + ":" + std::to_string(col);
}

bool has_diag(const Diagnostics& diags, const std::string& where, std::string_view fragment) {
  for (const Diagnostic& d : diags) {
    if (d.where.to_string() == where && d.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

}  // namespace capsa::policy::testing
