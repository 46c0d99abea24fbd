// capsa — the kernel's view of who holds a port.
//
// The grant table says which worker should hold each port; the kernel says
// which processes actually do. A port is an AF_UNIX socket, and every open
// fd of a process shows up in /proc/PID/fd as a magic link whose target is
// "socket:[INODE]". The supervisor knows the inode of the holder's end of
// every port it created (GrantView::port_inode), so reading the fd tables
// of a worker's process tree (the bwrap process we started and all its
// descendants) and matching inodes tells, for each live grant, whether the
// holder still has it, has passed it to another worker, or has let go of it.
//
// What the answer means (and does not):
//   - "held": some process of the holder's tree has an fd on that socket
//     now. Certain: inodes of live sockets are unique, so a match is a real
//     holding, never a coincidence.
//   - "held by W": not in the holder's tree, but in worker W's tree (the
//     holder sent the port on: a delegation the grant table may not know).
//   - "not held": no process of any checked tree holds it. The holder closed
//     it (and the supervisor has not seen the hang-up yet), or the port is
//     in flight inside a message queued on some socket (an fd in an
//     SCM_RIGHTS message belongs to no process until it is received), or it
//     was sent to a process outside every worker's tree.
//   - "unknown": the holder has no known process (a worker attached without
//     a pid), or its /proc could not be read (permission, a limit below
//     was reached before the inode was found); the detail says which.
//   A scan is a snapshot taken over time, not an atomic picture: a port
//   that moves between two processes while they are read can be missed.
//
// Process discovery: a process's children are listed by
// /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN); when the kernel lacks
// that file, one scan of /proc/*/stat builds the parent map instead. Only
// thread-group leaders appear in /proc, and a stat's ppid is the parent's
// thread-group id, so the map is of processes, as wanted. A pid can be
// reused between the moment it is listed and the moment its fds are read
// (a sandboxed process exits and its parent reaps it): each process's
// start time and parent are read before and after its fd table, and a
// process that changed is dropped from the result instead of being
// credited with a stranger's fds.
//
// Threads: a thread created without CLONE_FILES has an fd table of its own,
// invisible in /proc/PID/fd; every task's table is read
// (/proc/PID/task/TID/fd), except those kcmp(KCMP_FILES) shows to be the
// leader's (so the common case reads one table per process).
//
// Permissions: reading another process's fd table needs
// PTRACE_MODE_READ_FSCREDS access. A root supervisor has it everywhere; an
// unprivileged one has it over its own sandboxes (bwrap's user namespace is
// owned by the supervisor's uid, which holds every capability in it), so
// both can check their workers. EACCES is reported, never guessed around.
//
// Everything here blocks on /proc reads: call it off the supervisor's loop
// thread (Call::off_loop).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "capabilities/error.h"

namespace capsa::supervisor {

// Bounds of one scan, against a hostile worker that forks or opens fds
// without end to make the supervisor's audit slow. A sandbox's own rlimits
// (RLIMIT_NPROC, RLIMIT_NOFILE) normally keep it far below these. When a
// bound is reached the scan stops there and says so: inodes already found
// are still certain ("held"), but "not held" becomes "unknown".
struct ProcScanLimits {
  std::size_t max_processes = 1024;      // processes per worker tree
  std::size_t max_depth = 32;            // generations below the root
  std::size_t max_tasks = 1024;          // threads read per process
  std::size_t max_fds = 1u << 16;        // fd entries read per task
  std::size_t max_proc_entries = 1u << 20;  // /proc entries read by the fallback scan
};

// The sockets one process tree holds.
struct TreeSockets {
  pid_t root = 0;
  std::vector<pid_t> pids;                   // processes whose fds were read, root first
  std::unordered_set<std::uint64_t> inodes;  // socket inodes held by any of them
  // False when some process could not be read or a limit was reached:
  // then the absence of an inode proves nothing. `why` says what happened
  // (the first thing that did).
  bool complete = true;
  std::string why;
};

// The socket inodes in the fd table(s) of process `pid` (all its tasks).
// kNotFound when the process does not exist, kDenied without permission
// (EACCES/EPERM), kFailed otherwise. `pid` must be a thread-group id.
Result<std::unordered_set<std::uint64_t>> socket_inodes_of(pid_t pid,
                                                           const ProcScanLimits& limits = {});

// `root` and its descendants (root first, breadth first), at most
// limits.max_processes of them and limits.max_depth generations deep.
// kNotFound when `root` does not exist. `truncated` is set when a bound was
// reached.
Result<std::vector<pid_t>> process_tree(pid_t root, const ProcScanLimits& limits,
                                        bool* truncated = nullptr);

// Reads the fd tables of `root`'s tree. kNotFound if `root` is gone, kDenied
// if its own table cannot be read; problems with descendants only make the
// result incomplete.
Result<TreeSockets> sockets_held_by_tree(pid_t root, const ProcScanLimits& limits = {});

// --- the check `capsa audit` shows -----------------------------------------

enum class KernelVerdict : std::uint8_t { kUnknown, kHeld, kNotHeld, kHeldByOther };
std::string_view kernel_verdict_name(KernelVerdict v) noexcept;  // "held", "not held", ...

// A worker whose process tree to read. Two workers may name the same pid
// (workers attached in one process); then they are one tree.
struct HolderProcess {
  std::string worker;
  pid_t pid = 0;  // 0: no known process
};

// One port to look for: the inode of the holder's end.
struct PortToCheck {
  std::string holder;      // worker name
  pid_t holder_pid = 0;    // 0: no known process
  std::uint64_t inode = 0;  // 0: unknown
};

struct KernelCheck {
  KernelVerdict verdict = KernelVerdict::kUnknown;
  // kHeldByOther: the worker(s) holding it, comma-separated.
  // kHeld: other workers that hold it too, if any ("" usually).
  // kUnknown: why.
  std::string detail;
};

// "held", "held (also by w2)", "not held", "held by w2", "unknown: why".
std::string kernel_check_text(KernelVerdict verdict, std::string_view detail);
inline std::string kernel_check_text(const KernelCheck& c) {
  return kernel_check_text(c.verdict, c.detail);
}

// Reads each distinct pid's tree once (the holders of `ports` and every
// worker in `workers`), then decides each port. The result is parallel to
// `ports`.
std::vector<KernelCheck> check_holders(std::span<const HolderProcess> workers,
                                       std::span<const PortToCheck> ports,
                                       const ProcScanLimits& limits = {});

}  // namespace capsa::supervisor
