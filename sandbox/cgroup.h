// capsa::sandbox — one cgroup per worker: memory and process limits that
// count what rlimits cannot (memfds, tmpfs pages, kernel memory such as the
// inodes of an empty-file flood, the whole tree at once), CPU time and peak
// memory read from the kernel's own counters, and a teardown that leaves no
// process and no directory behind. Internal to sandbox/ (spawn.cc,
// worker.cc); docs/SANDBOX.md, "The worker's cgroup", says when one can be
// had and what is unbounded when not.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "sandbox/sandbox.h"

namespace capsa::sandbox::detail {

// What the cgroup enforces. 0 = no limit for that controller.
struct CgroupLimits {
  std::uint64_t memory_bytes = 0;  // memory.max / memory.limit_in_bytes (+ memsw, kmem)
  std::uint64_t max_tasks = 0;     // pids.max: every process and thread, bubblewrap included
};

// The kernel's counters for the worker's cgroup, read once it is empty.
struct CgroupUsage {
  std::optional<std::chrono::microseconds> cpu_time;  // cpu.stat / cpuacct.usage
  std::uint64_t peak_memory_bytes = 0;                // memory.peak / max_usage_in_bytes
  std::uint64_t oom_kills = 0;                        // memory.events / oom_control
};

// Removes each empty capsa-<pid>-* directory under `parent` (a cgroup
// directory, open O_RDONLY) whose supervisor <pid> no longer runs and that
// is at least `min_age` old: what a SIGKILLed supervisor left. Cgroup::create
// runs it with one minute, so that a supervisor that reused a dead one's
// pid (or runs in another pid namespace) never loses a cgroup it has just
// made and not yet entered; rmdir refuses a cgroup that has processes.
void sweep_dead(const Fd& parent, std::chrono::seconds min_age);

class Cgroup {
 public:
  // Makes the worker's cgroup under the supervisor's own (v2 when the
  // parent of the supervisor's cgroup is delegated to it with memory and
  // pids enabled; else v1 memory, pids and cpuacct hierarchies where the
  // supervisor may make children) and writes the limits. No cgroup at all
  // (unprivileged, no delegation) is not an error: the result is kNone with
  // the reason. A cgroup that was made but refused a limit is an error:
  // running unbounded after a partial setup would be a silent downgrade.
  static Result<Cgroup> create(const CgroupLimits& limits);

  Cgroup() = default;
  Cgroup(Cgroup&&) noexcept = default;
  Cgroup& operator=(Cgroup&&) noexcept;
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;
  // remove(): nothing of a worker's cgroup outlives its Worker.
  ~Cgroup();

  CgroupKind kind() const noexcept { return kind_; }
  // Why there is no cgroup (kind() == kNone), for the start-up report.
  const std::string& reason() const noexcept { return reason_; }
  // The files that move a task in (v1 `tasks`, v2 `cgroup.procs`), open
  // for writing: the clone child writes "0" (itself) into each before it
  // execs bubblewrap, so every process of the sandbox is born inside.
  // close-on-exec; owned here.
  std::vector<int> procs_fds() const;

  // Kills every process still in the cgroup (cgroup.kill on v2; on v1 each
  // pid, re-checked to be in the cgroup after its pidfd is held, so a
  // recycled pid is never hit), waits until it is empty (bounded: 2 s), and
  // reads the counters. Called once the sandbox's bubblewrap was reaped.
  Result<CgroupUsage> drain();
  // Removes the directories (drain() first if processes may remain).
  // Errors are swallowed: this runs in destructors; a directory still busy
  // after drain() stays, under a name that says whose it was.
  void remove() noexcept;

 private:
  struct Dir {
    // The parent cgroup directory (rmdir by name), one fd shared by every
    // cgroup under it while any lives (cgroup.cc, shared_parent).
    std::shared_ptr<const Fd> parent;
    Fd dir;     // the worker's cgroup directory
    std::string name;
    std::string controllers;  // v1: what the hierarchy carries ("memory,pids"); v2: ""
  };
  const Dir* find(std::string_view controller) const;
  Result<void> open_procs();
  static void kill_v1(const Dir& d);

  CgroupKind kind_ = CgroupKind::kNone;
  std::string reason_;
  std::vector<Dir> dirs_;
  std::vector<Fd> procs_;
};

}  // namespace capsa::sandbox::detail
