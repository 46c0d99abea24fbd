#include "tests/support/fd_count.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace capsa::testing {

std::size_t open_fd_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) std::abort();
  std::size_t n = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n - 1;  // the DIR's own fd
}

std::string describe_open_fds() {
  std::string out;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return "(cannot read /proc/self/fd)";
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::string path = std::string("/proc/self/fd/") + e->d_name;
    char target[256];
    ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
    target[n > 0 ? n : 0] = '\0';
    out += e->d_name;
    out += " -> ";
    out += target;
    out += "\n";
  }
  ::closedir(dir);
  return out;
}

}  // namespace capsa::testing
