// capsa::sandbox — where the supervisor may make a worker's cgroup: read
// from its own /proc/self/cgroup and /proc/self/mountinfo. Internal
// (cgroup.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace capsa::sandbox::detail {

// A directory under which a child cgroup would be made.
struct CgroupBase {
  std::string path;        // absolute host path of the directory
  // v1: those of memory, pids and cpuacct the hierarchy carries, in that
  // order, comma-separated ("memory", "memory,pids"); v2: "".
  std::string controllers;
};

// Whether `base` carries `controller` (v1).
bool carries(const CgroupBase& base, std::string_view controller);

// cgroup v2: the parent of the supervisor's own cgroup (or the root, when
// the supervisor is in it), when that directory has both "memory" and
// "pids" in its cgroup.subtree_control: the layout a delegated subtree has
// (systemd Delegate=yes with DelegateSubgroup=, or root). A cgroup in which
// the supervisor itself runs cannot have controlled children (v2's
// no-internal-process rule), hence the parent. Empty path when there is
// none; `why` then says what was missing.
CgroupBase find_v2_base(std::string* why);

// cgroup v1: the supervisor's own cgroup in each v1 hierarchy that carries
// memory, pids or cpuacct (one entry per hierarchy; controllers mounted
// together share one). Empty when no such hierarchy is mounted.
std::vector<CgroupBase> find_v1_bases();

// A small kernel file, whole (cgroup and proc files are well under 64 KiB;
// anything longer is cut, and then found wanting by its parser). "" when
// it cannot be read. `dir` is a directory fd or AT_FDCWD.
std::string read_small(int dir, const char* path);

// Parsing, exposed for tests. `self_cgroup` is /proc/self/cgroup,
// `mountinfo` /proc/self/mountinfo.
CgroupBase v2_base_from(std::string_view self_cgroup, std::string_view mountinfo);
std::vector<CgroupBase> v1_bases_from(std::string_view self_cgroup, std::string_view mountinfo);

}  // namespace capsa::sandbox::detail
