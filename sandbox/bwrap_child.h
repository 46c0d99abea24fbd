// capsa::sandbox — starting bubblewrap: the long-lived fork thread and the
// clone child that execs it. Internal to sandbox/ (spawn.cc).
#pragma once

#include <sys/types.h>

#include <vector>

#include "sandbox/host_file.h"  // kUnprivilegedId
#include "sandbox/mount_plan.h"
#include "sandbox/spec.h"

namespace capsa::sandbox::detail {


// What the clone child needs, prepared by the parent: after the clone it
// shares the parent's memory (CLONE_VM) and must not allocate, lock or
// touch anything but this.
struct ExecJob {
  // bubblewrap's fds: 0 and 3..8 (launcher_protocol.h), args, the launcher
  // and, without staging, the program and every bind source.
  static constexpr int kMax = kFirstBindFd + 1 + static_cast<int>(kMaxBinds);
  // Sources are dup'ed at or above this before the clone, so the dup2
  // sequence cannot clobber a source that sits on a target number.
  static constexpr int kMovedBase = 128;
  int count = 0;
  int moved[kMax];    // sources, already dup'ed above the targets (close-on-exec)
  int targets[kMax];  // the fd numbers bubblewrap gets them as
  int keep_below = 0;  // everything >= this is closed
  bool drop = false;   // setgroups(0) + setres[gu]id(65534) before exec
  // The cgroup files that move a task in (cgroup.h), written first: the
  // child moves itself, so bubblewrap and all it starts are born in the
  // worker's cgroup. These are the parent's fd numbers, valid in the
  // child's copy of the table until the dup2 sequence, hence first.
  static constexpr int kMaxCgroups = 4;
  int cgroups = 0;
  int cgroup_procs[kMaxCgroups];
  // As root: mounts attached in a mount namespace of the child's own before
  // it drops (mount_plan.h). Mount points are made on a fresh tmpfs.
  int staged = 0;
  int stage_tree[kMax];
  const char* stage_at[kMax];
  bool stage_dir[kMax];
  const char* path = nullptr;
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
  // Written by the child before it gives up (it shares our memory); read by
  // the parent once the clone returned. 0 = it exec'ed bubblewrap.
  int failed_step = 0;
  int failed_errno = 0;
  int failed_index = 0;  // the staged mount, for kStepAttach
};

enum ChildStep : int {
  kStepNone = 0, kStepCgroup, kStepUnshare, kStepPrivate, kStepStageTmpfs, kStepMountPoint, kStepAttach,
  kStepFds, kStepDrop, kStepExec,
};

// What failed in the child, for spawn()'s error.
const char* step_name(int step);

// Starts the child that execs bubblewrap, on the fork thread: dup()s each of
// `sources` high (owned there, closed when the job ends), then
// clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) with every signal blocked.
// Returns 0 and sets *pid and *pidfd, or the clone's errno. When the clone
// worked the child may still have given up: job.failed_step says.
int clone_bubblewrap(ExecJob& job, const std::vector<int>& sources, pid_t* pid, int* pidfd);

}  // namespace capsa::sandbox::detail
