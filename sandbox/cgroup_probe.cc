#include "sandbox/cgroup_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "capabilities/fd.h"

namespace capsa::sandbox::detail {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const std::size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

bool has_token(std::string_view list, std::string_view token, char sep) {
  auto parts = split(list, sep);
  return std::find(parts.begin(), parts.end(), token) != parts.end();
}

}  // namespace

std::string read_small(int dir, const char* path) {
  Fd fd(::openat(dir, path, O_RDONLY | O_CLOEXEC));
  std::string out;
  if (!fd.valid()) return out;
  std::array<char, 4096> buf;
  while (out.size() < 64 * 1024) {
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n <= 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  return out;
}

namespace {

struct Mount {
  std::string_view root;   // the mount's root within its file system
  std::string_view point;  // where it is mounted
  std::string_view type;
  std::string_view super_options;
};

// "36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup cgroup rw,memory"
std::vector<Mount> cgroup_mounts(std::string_view mountinfo) {
  std::vector<Mount> out;
  for (std::string_view line : split(mountinfo, '\n')) {
    const std::size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    auto left = split(line.substr(0, dash), ' ');
    auto right = split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    if (right[0] != "cgroup" && right[0] != "cgroup2") continue;
    // Escaped characters (\040...) in a cgroup mount point: not ours to guess.
    if (left[4].find('\\') != std::string_view::npos) continue;
    out.push_back({left[3], left[4], right[0], right[2]});
  }
  return out;
}

// The host path of `cg` (a path in the hierarchy) under mount `m`, or ""
// when the mount does not show it (a mount of a sub-tree that does not hold
// us, e.g. inside a container's cgroup namespace).
std::string host_path(const Mount& m, std::string_view cg) {
  std::string_view root = m.root == "/" ? "" : m.root;
  if (!cg.starts_with(root)) return "";
  cg.remove_prefix(root.size());
  if (!cg.empty() && cg.front() != '/') return "";
  std::string path(m.point);
  if (cg != "/") path += cg;
  return path;
}

}  // namespace

CgroupBase v2_base_from(std::string_view self_cgroup, std::string_view mountinfo) {
  std::string_view own;
  for (std::string_view line : split(self_cgroup, '\n')) {
    if (line.starts_with("0::")) own = line.substr(3);
  }
  if (own.empty() || own.front() != '/') return {};
  // The supervisor's own cgroup cannot have controlled children while it
  // runs in it, unless it is the root.
  std::string_view parent = own == "/" ? own : own.substr(0, std::max<std::size_t>(1, own.rfind('/')));
  for (const Mount& m : cgroup_mounts(mountinfo)) {
    if (m.type != "cgroup2") continue;
    std::string path = host_path(m, parent);
    if (!path.empty()) return {std::move(path), ""};
  }
  return {};
}

std::vector<CgroupBase> v1_bases_from(std::string_view self_cgroup, std::string_view mountinfo) {
  std::vector<CgroupBase> out;
  const auto mounts = cgroup_mounts(mountinfo);
  for (std::string_view controller : {"memory", "pids", "cpuacct"}) {
    for (std::string_view line : split(self_cgroup, '\n')) {
      auto f = split(line, ':');
      if (f.size() != 3 || !has_token(f[1], controller, ',')) continue;
      for (const Mount& m : mounts) {
        if (m.type != "cgroup" || !has_token(m.super_options, controller, ',')) continue;
        std::string path = host_path(m, f[2]);
        if (path.empty()) continue;
        // Controllers mounted together ("cpu,cpuacct") share one directory.
        const bool seen = std::any_of(out.begin(), out.end(),
                                      [&](const CgroupBase& b) { return b.path == path; });
        if (seen) break;
        std::string carried;
        for (std::string_view c : {"memory", "pids", "cpuacct"}) {
          if (has_token(m.super_options, c, ',')) carried += (carried.empty() ? "" : ",") + std::string(c);
        }
        out.push_back({std::move(path), std::move(carried)});
        break;
      }
    }
  }
  return out;
}

bool carries(const CgroupBase& base, std::string_view controller) {
  return has_token(base.controllers, controller, ',');
}

CgroupBase find_v2_base(std::string* why) {
  CgroupBase base = v2_base_from(read_small(AT_FDCWD, "/proc/self/cgroup"), read_small(AT_FDCWD, "/proc/self/mountinfo"));
  if (base.path.empty()) {
    *why = "no cgroup v2 hierarchy holds the supervisor";
    return {};
  }
  const std::string enabled = read_small(AT_FDCWD, (base.path + "/cgroup.subtree_control").c_str());
  for (std::string_view c : {"memory", "pids"}) {
    std::string_view list = enabled;
    while (!list.empty() && list.back() == '\n') list.remove_suffix(1);
    if (!has_token(list, c, ' ')) {
      *why = "cgroup v2: " + base.path + " does not delegate the " + std::string(c) +
             " controller (cgroup.subtree_control)";
      return {};
    }
  }
  return base;
}

std::vector<CgroupBase> find_v1_bases() {
  return v1_bases_from(read_small(AT_FDCWD, "/proc/self/cgroup"), read_small(AT_FDCWD, "/proc/self/mountinfo"));
}

}  // namespace capsa::sandbox::detail
