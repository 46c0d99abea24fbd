// The worker's cgroup: memory no rlimit counts (memfds, empty files in
// /tmp) is bounded by it, and a neighbour started before the attack keeps
// working. Where the machine offers no cgroup (an unprivileged supervisor
// here), each test asserts the documented fallback instead: the worker
// says it has none, and the same attack goes as far as its own cap.
#include <csignal>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/port.h"
#include "tests/sandbox/cgroup_util.h"
#include "tests/sandbox/fixture.h"

namespace capsa::sandbox::testing {
namespace {

// Small, so that the fallback (no cgroup: the attack runs to its cap) costs
// the shared machine little: the caps are twice these.
constexpr std::uint64_t kMemoryLimit = 64ull << 20;

Limits memory_limits() {
  Limits l = small_limits();
  l.address_space_bytes = kMemoryLimit;
  l.max_file_size_bytes = 16ull << 20;  // one memfd holds 16 MiB at most
  return l;
}

// A well-behaved worker started before an attack and checked after it: it
// said hello before, it answers ping after, and it exits 0.
class Neighbour {
 public:
  Neighbour() {
    auto spec = hostile_spec("hello").build();
    EXPECT_TRUE(spec) << spec.error().to_string();
    if (spec) run_ = start(*spec).value();
  }
  void expect_unharmed() {
    ASSERT_TRUE(run_);
    Outcome out = finish(*run_, answer_ping);
    EXPECT_EQ(out.reports, (std::vector<std::string>{"hello ready", "pong"}));
    EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
    EXPECT_EQ(out.status.code, 0);
  }

 private:
  std::optional<Running> run_;
};

Outcome run_in(const Spec& spec, CgroupKind* kind, std::string* note) {
  auto run = start(spec);
  if (!run) return {};
  *kind = run->worker.cgroup();
  *note = run->worker.cgroup_note();
  return finish(*run);
}

// What a worker without a cgroup reports, and that it is right not to have
// one: the machine offers none to this process.
void expect_no_cgroup(CgroupKind kind, const std::string& note) {
  EXPECT_EQ(kind, CgroupKind::kNone);
  EXPECT_TRUE(note.starts_with("no cgroup: ")) << note;
  EXPECT_FALSE(machine_offers_cgroup()) << "the machine offers a cgroup; the sandbox made none: " << note;
}

TEST_F(HostileTest, WorkerHasACgroupWhenTheMachineOffersOne) {
  auto spec = hostile_spec("hello").build();
  ASSERT_TRUE(spec);
  auto run = start(*spec);
  ASSERT_TRUE(run);
  if (machine_offers_cgroup()) {
    EXPECT_NE(run->worker.cgroup(), CgroupKind::kNone) << run->worker.cgroup_note();
    // This worker's cgroup, one directory per hierarchy (v1: memory, pids,
    // cpuacct), all of one name.
    const auto dirs = leftover_cgroups();
    ASSERT_FALSE(dirs.empty());
    const std::string name = dirs[0].substr(dirs[0].rfind('/'));
    for (const std::string& d : dirs) EXPECT_TRUE(d.ends_with(name)) << d;
    // The limits, as the kernel holds them: memory = address_space_bytes,
    // tasks = max_processes + bubblewrap + the launcher; the worker's own
    // processes inside.
    const Limits l = small_limits();
    int memory_files = 0;
    for (const std::string& d : dirs) {
      for (const char* f : {"memory.max", "memory.limit_in_bytes"}) {
        std::ifstream in(d + "/" + f);
        std::uint64_t v = 0;
        if (in >> v) {
          EXPECT_EQ(v, l.address_space_bytes) << d << "/" << f;
          ++memory_files;
        }
      }
      std::ifstream pids(d + "/pids.max");
      std::uint64_t max = 0;
      if (pids >> max) {
        EXPECT_EQ(max, l.max_processes + 2) << d;
      }
      std::ifstream procs(d + "/cgroup.procs");
      int count = 0;
      for (int pid; procs >> pid;) ++count;
      EXPECT_EQ(count, 3) << d << ": bubblewrap, the launcher and the worker";
    }
    EXPECT_EQ(memory_files, 1);
  } else {
    expect_no_cgroup(run->worker.cgroup(), run->worker.cgroup_note());
    EXPECT_EQ(leftover_cgroups(), std::vector<std::string>{});
  }
  Outcome out = finish(*run, answer_ping);
  EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
  EXPECT_EQ(out.status.cgroup, run->worker.cgroup());
  // Removed at the reap, not only when the Worker goes.
  EXPECT_EQ(leftover_cgroups(), std::vector<std::string>{});
}

// An attack on memory no rlimit counts, with a neighbour started before it.
// With a cgroup: the worker said `first` and was OOM-killed when the
// sandbox's memory reached the limit, "limit memory"; the cgroup's peak
// never passes the limit (slack 0: the kernel refuses the charge that
// would) and is at least half of it. Without: it said `first`, then
// `unbounded` (its own cap, far past the limit), and exited.
void expect_bounded_by_cgroup(const std::string& attack, const std::string& arg, const Limits& l,
                              const std::string& first, const std::string& unbounded) {
  Neighbour neighbour;
  auto spec = hostile_spec(attack, {arg}).limits(l).build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  CgroupKind kind{};
  std::string note;
  Outcome out = run_in(*spec, &kind, &note);
  if (kind != CgroupKind::kNone) {
    EXPECT_EQ(out.reports, std::vector<std::string>{first});
    EXPECT_EQ(out.status.kind, ExitKind::kLimitMemory) << out.status.to_string();
    EXPECT_EQ(out.status.signal, SIGKILL) << out.status.to_string();
    EXPECT_LE(out.status.peak_memory_bytes, l.address_space_bytes) << out.status.to_string();
    EXPECT_GE(out.status.peak_memory_bytes, l.address_space_bytes / 2) << out.status.to_string();
    std::cout << attack << ": " << out.status.to_string() << "\n";
  } else {
    expect_no_cgroup(kind, note);
    EXPECT_EQ(out.reports, (std::vector<std::string>{first, unbounded}));
    EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
  }
  neighbour.expect_unharmed();
  EXPECT_EQ(leftover_cgroups(), std::vector<std::string>{});
}

// memfds filled with write(), twice the limit asked for.
TEST_F(HostileTest, MemfdFillIsBoundedByTheCgroup) {
  const std::string cap = std::to_string(2 * kMemoryLimit >> 20);
  expect_bounded_by_cgroup("memfd_fill", cap, memory_limits(), "memfd_fill filling cap_mib=" + cap,
                           "memfd_fill unbounded mib=" + cap);
}

// Empty files in /tmp: no byte of the tmpfs cap, only kernel memory
// (inodes, dentries), which the cgroup charges to the sandbox. 200,000
// files are about 200 MiB of kernel memory when nothing bounds them.
TEST_F(HostileTest, InodeFloodIsBoundedByTheCgroup) {
  Limits l = memory_limits();
  l.address_space_bytes = 32ull << 20;
  const std::string cap = "200000";
  expect_bounded_by_cgroup("inode_flood", cap, l, "inode_flood creating cap=" + cap,
                           "inode_flood unbounded files=" + cap);
}

// A spinner killed at its wall limit reports the CPU it used: the cgroup's
// counter, or without one what /proc said just before the kill (before the
// fix: about 0, bubblewrap's own). It spins for the whole two seconds; a
// tenth of one is a bound that holds on a 2-core machine shared with
// other builds, and far above what bubblewrap itself uses.
TEST_F(HostileTest, WallKillReportsTheCpuTimeUsed) {
  Limits l = small_limits();
  l.wall_seconds = 2;
  l.cpu_seconds = 30;
  auto spec = hostile_spec("cpu_spin").limits(l).build();
  ASSERT_TRUE(spec);
  Outcome out = run_spec(*spec);
  EXPECT_EQ(out.reports, std::vector<std::string>{"cpu_spin spinning"});
  EXPECT_EQ(out.status.kind, ExitKind::kLimitWall) << out.status.to_string();
  EXPECT_GE(out.status.cpu_time, std::chrono::milliseconds(200)) << out.status.to_string();
  std::cout << "wall kill: " << out.status.to_string() << "\n";
  EXPECT_LE(out.status.cpu_time, out.status.wall_time + std::chrono::milliseconds(100))
      << out.status.to_string();
}

// The worker's view of its cgroup: its own cgroup namespace, rooted at its
// cgroup, so /proc/self/cgroup shows "/" for each hierarchy; and no cgroup
// file system to write to.
TEST_F(HostileTest, WorkerSeesOnlyItsOwnCgroupRoot) {
  Outcome out = run_attack("cgroup_view");
  expect_verdict(out, "cgroup_view outside=0 sys_cgroup=ENOENT mount=EPERM",
                 {"mount"});
}

// require_cgroup: the worker starts in a cgroup, or not at all, with the
// reason.
TEST_F(HostileTest, RequireCgroupRefusesToStartWithoutOne) {
  auto spec = hostile_spec("hello").require_cgroup(true).build();
  ASSERT_TRUE(spec);
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  auto worker = spawn(*spec, channel->second.release_fd());
  if (machine_offers_cgroup()) {
    ASSERT_TRUE(worker) << worker.error().to_string();
    EXPECT_NE(worker->cgroup(), CgroupKind::kNone);
  } else {
    ASSERT_FALSE(worker);
    EXPECT_TRUE(worker.error().message.starts_with(
        "worker hostile-hello requires a cgroup (require_cgroup) and none can be made: no cgroup: "))
        << worker.error().message;
  }
}

}  // namespace
}  // namespace capsa::sandbox::testing
