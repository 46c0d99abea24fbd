// The CPU time a sandbox has used so far, from /proc, for a kill without a
// cgroup: once SIGKILL lands, the launcher can no longer report the
// worker's rusage, and bubblewrap's covers only bubblewrap.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <map>
#include <vector>

#include "capabilities/fd.h"
#include "sandbox/worker_state.h"

namespace capsa::sandbox::detail {
namespace {

struct Stat {
  pid_t ppid = 0;
  std::uint64_t ticks = 0;  // utime + stime + cutime + cstime
};

// "/proc/PID/stat": "pid (comm) state ppid ... utime stime cutime cstime ...".
// comm is the process's own choice (it may hold ") "): fields are counted
// from the last ')'.
std::optional<Stat> read_stat(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::array<char, 1024> buf;
  const ssize_t n = ::read(fd.get(), buf.data(), buf.size() - 1);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf.data(), static_cast<std::size_t>(n));
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::vector<std::uint64_t> f;  // from "state" on; state itself reads as 0
  std::string rest(text.substr(close + 1));
  char* p = rest.data();
  while (f.size() < 15 && *p != '\0') {
    while (*p == ' ') ++p;
    char* end = p;
    f.push_back(std::strtoull(p, &end, 10));
    while (*end != ' ' && *end != '\0') ++end;
    p = end;
  }
  if (f.size() < 15) return std::nullopt;
  return Stat{static_cast<pid_t>(f[1]), f[11] + f[12] + f[13] + f[14]};
}

}  // namespace

std::optional<std::chrono::microseconds> tree_cpu_time(pid_t root) {
  if (!read_stat(root)) return std::nullopt;
  std::map<pid_t, Stat> all;
  if (DIR* dir = ::opendir("/proc")) {
    while (const dirent* e = ::readdir(dir)) {
      const pid_t pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      if (auto st = read_stat(pid)) all[pid] = *st;
    }
    ::closedir(dir);
  }
  std::uint64_t ticks = 0;
  std::vector<pid_t> todo{root};
  // Each entry is counted once and then dropped, so even a parent link
  // made inconsistent by pid reuse during the scan cannot loop.
  while (!todo.empty()) {
    const pid_t pid = todo.back();
    todo.pop_back();
    auto it = all.find(pid);
    if (it == all.end()) continue;
    ticks += it->second.ticks;
    all.erase(it);
    for (const auto& [child, st] : all) {
      if (st.ppid == pid) todo.push_back(child);
    }
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return std::chrono::microseconds(ticks * 1'000'000 / static_cast<std::uint64_t>(hz > 0 ? hz : 100));
}

}  // namespace capsa::sandbox::detail
