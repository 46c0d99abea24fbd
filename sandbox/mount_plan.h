// capsa::sandbox — how the host files of a spec reach the sandbox: the
// bubblewrap options, and the fds and mounts they refer to. Internal to
// sandbox/ (spawn.cc). docs/SANDBOX.md, "What is bound, and how", says why.
//
// bubblewrap (0.8) looks every bind source up by name, after it has entered
// the sandbox's user namespace as the sandbox's uid; its --ro-bind-fd is no
// exception (it realpath()s /proc/self/fd/N, then binds that name and
// checks that the mount is the fd's inode). So:
//   - the launcher is not bound at all: bubblewrap execs it through
//     /.capsa/launcher, a symlink to /proc/self/fd/9, where fd 9 is the
//     supervisor's O_PATH fd of it (a magic link: no directory is searched);
//   - the program is not the operator's file but a copy of it under a
//     neutral name (program_copy.h), bound like a ro_bind source;
//   - as root, the program and every ro_bind source are copied as mounts
//     from the supervisor's own fds (open_tree(OPEN_TREE_CLONE)), and the
//     clone child attaches them under a tmpfs on /tmp in a mount namespace
//     of its own, before it drops to uid 65534; bubblewrap then binds them
//     from there, a path that uid 65534 can resolve;
//   - otherwise (no CAP_SYS_ADMIN: an unprivileged supervisor), they are
//     passed with --ro-bind-fd: bubblewrap resolves the fd's current name as
//     the caller's uid, which could open it in the first place (root without
//     CAP_SYS_ADMIN lands here too, but its bubblewrap resolves as 65534:
//     private directories fail there; docs/SANDBOX.md), and refuses
//     to start when the mount is not the fd's inode (a file renamed away is
//     still found under its new name; a deleted one is refused).
#pragma once

#include <string>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "sandbox/host_file.h"
#include "sandbox/launcher_protocol.h"
#include "sandbox/spec.h"

namespace capsa::sandbox::detail {

// The launcher's fd in bubblewrap (exec'ed through the symlink
// kLauncherInSandbox, launcher_protocol.h; the program is bound at
// kProgramInSandbox).
inline constexpr int kLauncherFd = 9;
// Without staging: the program is fd 10 in bubblewrap, ro_binds 11, 12, ...
inline constexpr int kFirstBindFd = 10;
// The root of the staging tmpfs (mounted over the host's /tmp, in the clone
// child's private mount namespace only; bubblewrap reads nothing else there).
inline constexpr const char* kStageDir = "/tmp";

// Kernel information in /proc that a worker has no business reading: the
// boot command line, kernel symbols and log, modules, memory and device
// layout, other users' keys, timers and interrupts (what runc's maskedPaths
// hides, and the rest of the host-wide files that describe the machine
// rather than the worker). Each that exists and that others than root may
// open is covered by /dev/null (reads as empty, writes go nowhere); the
// rest (mode 0400) the worker cannot open. /proc/sys, sysrq-trigger, irq
// and bus are already read-only binds of bubblewrap's.
inline constexpr const char* kMaskedProcFiles[] = {
    "cmdline",    "kallsyms",    "kmsg",       "modules",      "kcore",      "keys",
    "key-users",  "latency_stats", "timer_list", "timer_stats", "sched_debug", "interrupts",
    "softirqs",   "iomem",       "ioports",    "vmallocinfo",  "slabinfo",   "buddyinfo",
    "zoneinfo",   "pagetypeinfo", "kpagecount", "kpageflags",  "kpagecgroup", "config.gz",
    "mtrr",       "devices",     "partitions", "diskstats",    "swaps",      "locks",
    "consoles",   "dma",         "misc",       "bootconfig",   "lockdep",    "schedstat"};
// Directories of hardware and driver detail: an empty read-only tmpfs over
// each that exists.
inline constexpr const char* kMaskedProcDirs[] = {"acpi", "asound", "scsi", "driver"};

// A mount the clone child attaches before it starts bubblewrap.
struct StagedMount {
  Fd tree;           // a detached copy of the mount at the supervisor's fd
  std::string at;    // its mount point under kStageDir
  bool dir = false;
  std::string what;  // the host path it was opened at, for errors
};

struct MountPlan {
  std::vector<StagedMount> staged;  // as root: the program, then each ro_bind
  std::vector<int> passed;          // otherwise: fds (borrowed from HostFiles) that
                                    // bubblewrap gets as kFirstBindFd + i
  std::vector<std::string> args;    // bubblewrap's options, launcher and binds included
};

// `program` is what is bound at kProgramInSandbox: the neutral copy of
// files.program (program_copy.h), so that no host path of it shows in the
// worker's mount table. `stage`: try the root way (falls back to passing
// fds when the kernel says EPERM, e.g. a root without CAP_SYS_ADMIN in a
// container).
Result<MountPlan> plan_mounts(const Spec& spec, const HostFiles& files, const Fd& program,
                              bool stage);

}  // namespace capsa::sandbox::detail
