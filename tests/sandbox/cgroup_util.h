// capsa sandbox suite — what the machine offers in cgroups, found without
// the sandbox's own code, so that a test can tell "the sandbox made no
// cgroup because it could not" from "the sandbox failed to make one".
#pragma once

#include <string>
#include <vector>

namespace capsa::sandbox::testing {

// The directories under which this process could make child cgroups: the
// parent of its v2 cgroup when that delegates memory and pids, and its own
// cgroup in the v1 memory, pids and cpuacct hierarchies (mounted under
// /sys/fs/cgroup). Whether it may is not checked here.
std::vector<std::string> cgroup_parents();

// True when this process can make a memory cgroup: it makes and removes
// one (a v2 child of a delegating parent, or a v1 memory child).
bool machine_offers_cgroup();

// Entries named capsa-<owner>-* under any of cgroup_parents(): cgroups the
// sandbox made for the workers of supervisor `owner` (default: this
// process) and did not remove.
std::vector<std::string> leftover_cgroups(int owner = 0);

}  // namespace capsa::sandbox::testing
