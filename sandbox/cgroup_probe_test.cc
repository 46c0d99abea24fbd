// Finding where a worker's cgroup goes, from /proc/self/cgroup and
// /proc/self/mountinfo as the kernel writes them (hybrid and pure-v2
// hosts, a container's view of a sub-tree).
#include "sandbox/cgroup_probe.h"

#include <gtest/gtest.h>

namespace capsa::sandbox::detail {
namespace {

// This host's layout: v1 controllers, one per mount (cpu and cpuacct apart),
// and an empty v2 hierarchy at /sys/fs/cgroup/unified.
constexpr const char* kHybridMounts =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr const char* kHybridSelf =
    "8:pids:/\n4:memory:/process_api/855e\n2:cpuacct:/\n0::/\n";

TEST(CgroupProbe, HybridHostGivesEachV1HierarchyAndTheV2Root) {
  auto v1 = v1_bases_from(kHybridSelf, kHybridMounts);
  ASSERT_EQ(v1.size(), 3u);
  EXPECT_EQ(v1[0].path, "/sys/fs/cgroup/memory/process_api/855e");
  EXPECT_EQ(v1[0].controllers, "memory");
  EXPECT_EQ(v1[1].path, "/sys/fs/cgroup/pids");
  EXPECT_EQ(v1[2].path, "/sys/fs/cgroup/cpuacct");
  // In the v2 root: the root itself (no internal-process rule there).
  EXPECT_EQ(v2_base_from(kHybridSelf, kHybridMounts).path, "/sys/fs/cgroup/unified");
}

// Controllers mounted together share one directory, made once.
TEST(CgroupProbe, CoMountedControllersShareOneDirectory) {
  auto v1 = v1_bases_from("3:cpu,cpuacct:/a\n4:memory,pids:/b\n",
                          "1 0 0:1 / /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                          "2 0 0:2 / /cg/memory,pids rw - cgroup cgroup rw,memory,pids\n");
  ASSERT_EQ(v1.size(), 2u);
  EXPECT_EQ(v1[0].path, "/cg/memory,pids/b");
  EXPECT_EQ(v1[0].controllers, "memory,pids");
  EXPECT_TRUE(carries(v1[0], "pids"));
  EXPECT_EQ(v1[1].path, "/cg/cpu,cpuacct/a");
  EXPECT_EQ(v1[1].controllers, "cpuacct");
}

// Pure v2 under systemd: a service's leaf; worker cgroups go beside it, in
// its parent (the delegated cgroup).
TEST(CgroupProbe, V2LeafGivesItsParent) {
  const char* mounts = "26 1 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
  EXPECT_EQ(v2_base_from("0::/system.slice/capsa.service/supervisor\n", mounts).path,
            "/sys/fs/cgroup/system.slice/capsa.service");
  EXPECT_EQ(v2_base_from("0::/top\n", mounts).path, "/sys/fs/cgroup");
  EXPECT_TRUE(v1_bases_from("0::/top\n", mounts).empty());
}

// A mount of a sub-tree (a container's view): paths are relative to its
// root; a cgroup outside the mounted sub-tree is not reachable through it.
TEST(CgroupProbe, MountOfASubTree) {
  const char* mounts = "5 1 0:9 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
  auto inside = v1_bases_from("4:memory:/docker/abc/w\n", mounts);
  ASSERT_EQ(inside.size(), 1u);
  EXPECT_EQ(inside[0].path, "/sys/fs/cgroup/memory/w");
  EXPECT_TRUE(v1_bases_from("4:memory:/other\n", mounts).empty());
  EXPECT_TRUE(v1_bases_from("4:memory:/docker/abcd\n", mounts).empty());
}

// What a hostile or odd mount table cannot make us do: lines without the
// separator, escaped mount points, no cgroup line at all.
TEST(CgroupProbe, MalformedInputGivesNothing) {
  EXPECT_TRUE(v1_bases_from("", "").empty());
  EXPECT_TRUE(v2_base_from("", "").path.empty());
  EXPECT_TRUE(v1_bases_from("4:memory:/x\n", "35 31 0:32 / /sys/fs/cgroup/memory rw cgroup\n").empty());
  EXPECT_TRUE(v1_bases_from("4:memory:/x\n",
                            "35 31 0:32 / /sys/fs/cg\\040roup rw - cgroup cgroup rw,memory\n")
                  .empty());
  EXPECT_TRUE(v2_base_from("0::relative\n", "1 0 0:1 / /cg rw - cgroup2 cgroup2 rw\n").path.empty());
}

}  // namespace
}  // namespace capsa::sandbox::detail
