#include "tests/support/test_programs.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace capsa::testing {

std::string test_bin_dir() {
  if (const char* d = std::getenv("CAPSA_TEST_BIN_DIR"); d != nullptr && *d != '\0') return d;
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  // Without /proc there is no way to find the helpers: relative names make
  // the first spawn fail with a message that names the program.
  return ec ? std::string(".") : self.parent_path().string();
}

std::string test_program(std::string_view name) { return test_bin_dir() + "/" + std::string(name); }

}  // namespace capsa::testing
