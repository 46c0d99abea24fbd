#include "policy/test_util.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace capsa::policy::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "capsa-policy-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, std::string_view content) const {
  std::string p = path_ + "/" + name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) std::abort();
  return p;
}

std::string TempDir::executable(const std::string& name) const {
  std::string p = write(name, "#!/bin/sh\nexit 0\n");
  if (::chmod(p.c_str(), 0755) != 0) std::abort();
  return p;
}

std::string TempDir::mkdir(const std::string& name) const {
  std::string p = path_ + "/" + name;
  std::filesystem::create_directories(p);
  return p;
}

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
