#include "supervisor/cli/install_layout.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace capsa::cli {

std::string installed_launcher_path() {
  if (const char* env = std::getenv("CAPSA_LAUNCHER"); env != nullptr && *env != '\0') return {};
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  // CAPSA_LAUNCHER_FROM_BINDIR: the launcher relative to the install's bin
  // directory ("../libexec/capsa/capsa-launcher"), set by CMake from
  // GNUInstallDirs.
  auto launcher = (exe.parent_path() / CAPSA_LAUNCHER_FROM_BINDIR).lexically_normal();
  if (::access(launcher.c_str(), X_OK) != 0) return {};
  return launcher.string();
}

}  // namespace capsa::cli
