#include "supervisor/cli/audit_path.h"

#include <sys/stat.h>

#include <cerrno>

#include "capabilities/sys.h"

namespace capsa::cli {

Result<std::string> default_audit_log_path(uid_t euid, const char* xdg_state_home, const char* home) {
  if (euid == 0) return std::string("/var/log/capsa/audit.jsonl");
  if (xdg_state_home != nullptr && xdg_state_home[0] == '/') {
    return std::string(xdg_state_home) + "/capsa/audit.jsonl";
  }
  if (home == nullptr || home[0] != '/') {
    return make_error(Errc::kInvalidArgument,
                      "no default audit log: HOME is not an absolute path and XDG_STATE_HOME is not "
                      "set; give one with --audit-log FILE");
  }
  return std::string(home) + "/.local/state/capsa/audit.jsonl";
}

Result<void> make_parent_directories(const std::string& file) {
  // Each prefix in turn; one that exists keeps its owner's permissions.
  for (std::size_t i = file.find('/', 1); i != std::string::npos; i = file.find('/', i + 1)) {
    const std::string dir = file.substr(0, i);
    auto made = sys("mkdir", dir, [&] { return ::mkdir(dir.c_str(), 0700); });
    if (!made && made.error().sys_errno != EEXIST) return std::unexpected(made.error());
  }
  return {};
}

}  // namespace capsa::cli
