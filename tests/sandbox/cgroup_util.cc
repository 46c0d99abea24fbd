#include "tests/sandbox/cgroup_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace capsa::sandbox::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

// "/sys/fs/cgroup/unified" on hybrid systems, "/sys/fs/cgroup" on pure v2.
std::string v2_mount() {
  return fs::exists("/sys/fs/cgroup/unified/cgroup.controllers") ? "/sys/fs/cgroup/unified"
                                                                 : "/sys/fs/cgroup";
}

// v2 first: the directory that would hold worker cgroups, if it delegates.
std::string v2_parent() {
  std::istringstream in(slurp("/proc/self/cgroup"));
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("0::")) continue;
    std::string own = line.substr(3);
    std::string parent = own == "/" ? "" : own.substr(0, own.rfind('/'));
    std::string dir = v2_mount() + parent;
    const std::string enabled = slurp(dir + "/cgroup.subtree_control");
    if (has_word(enabled, "memory") && has_word(enabled, "pids")) return dir;
  }
  return "";
}

}  // namespace

std::vector<std::string> cgroup_parents() {
  std::vector<std::string> out;
  if (std::string v2 = v2_parent(); !v2.empty()) out.push_back(v2);
  std::istringstream in(slurp("/proc/self/cgroup"));
  for (std::string line; std::getline(in, line);) {
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    for (const char* c : {"memory", "pids", "cpuacct"}) {
      std::string mounted = "/sys/fs/cgroup/" + std::string(c);
      if (("," + controllers + ",").find("," + std::string(c) + ",") == std::string::npos) continue;
      if (!fs::exists(mounted + "/cgroup.procs")) continue;
      out.push_back(mounted + line.substr(b + 1));
    }
  }
  return out;
}

bool machine_offers_cgroup() {
  const std::string probe = "capsa-probe-" + std::to_string(::getpid());
  if (std::string v2 = v2_parent(); !v2.empty() && ::mkdir((v2 + "/" + probe).c_str(), 0755) == 0) {
    ::rmdir((v2 + "/" + probe).c_str());
    return true;
  }
  for (const std::string& dir : cgroup_parents()) {
    if (!dir.starts_with("/sys/fs/cgroup/memory")) continue;
    if (::mkdir((dir + "/" + probe).c_str(), 0755) == 0) {
      ::rmdir((dir + "/" + probe).c_str());
      return true;
    }
  }
  return false;
}

std::vector<std::string> leftover_cgroups(int owner) {
  std::vector<std::string> out;
  const std::string prefix = "capsa-" + std::to_string(owner != 0 ? owner : ::getpid()) + "-";
  for (const std::string& dir : cgroup_parents()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path().string());
    }
  }
  return out;
}

}  // namespace capsa::sandbox::testing
