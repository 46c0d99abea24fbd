// capsa::sandbox — the program as the sandbox gets it: a copy under a
// neutral name, made once per distinct program and per supervisor process.
// Internal to sandbox/ (spawn.cc). docs/SANDBOX.md, "What is bound, and how".
//
// Why: a bind mount's line in the worker's /proc/self/mountinfo shows, as
// its "root" field, the bound file's path within its filesystem. Binding the
// operator's program file itself would tell an untrusted worker where it
// lives on the host (/home/alice/projects/...). A copy of it in a private
// directory on a tmpfs shows only "/capsa-programs-XXXXXX/p3".
//
// What is copied is the file that open_host_file() opened and checked
// (read through that fd, never looked up by name again), so the guarantees
// of host_file.h hold: a rename, a symlink or another file put at the path
// after the open changes nothing. A file deleted since the open (no link
// left) is refused, as a bind of it was: deleting a program stops it from
// starting, even for a caller that opened it earlier.
//
// The key of a copy is the opened file's (st_dev, st_ino, st_size,
// st_mtime, st_ctime): a program replaced on disk is another inode, and one
// rewritten in place has a new mtime/ctime, so either gets a new copy; an
// unchanged program is copied once. A program that changes while it is
// being copied is refused for this spawn (the copy would be torn).
//
// Where: the first of $XDG_RUNTIME_DIR, /dev/shm, /run, /tmp that exists,
// is not mounted noexec (a bind keeps its mount's flags) and lets us make a
// directory; in it a fresh 0700 directory "capsa-programs-XXXXXX" owned by
// the supervisor's user, files 0555 (the sandbox's uid 65534 executes, and
// reads a script, as "other"; nobody else can reach them through the 0700
// directory, and nothing writes them again). None usable: spawn() fails,
// naming each candidate and why.
//
// Lifetime: the directory is removed (with its files) when the process
// exits normally (atexit; only in the process that made it, not in a fork
// of it). A supervisor that dies otherwise (SIGKILL) leaves it: the next
// supervisor of the same user that makes its cache in the same parent
// removes every capsa-programs-* of that user whose owner is gone. Each
// directory names its owner in a file "owner": pid, start time (a pid
// reused by another process has another start time) and pid namespace
// (a pid means nothing in another; such a directory is left alone); one
// without that file yet is left alone for a minute. Live workers keep
// running: their mounts hold the copy's inode, not its name. The cache
// holds no fd between spawns: each spawn opens the directory and the copy
// by name and checks that they are the ones it made (inode, owner).
//
// Bounds: at most kMaxProgramCopies copies and kMaxProgramCopyBytes bytes;
// past either, the least recently used copies are dropped (unlinked; a
// spawn in progress that uses one keeps its name until it returns, running
// workers keep its inode). A program larger than kMaxProgramCopyBytes on
// its own is refused. The bytes live in the tmpfs, i.e. in memory charged
// to the supervisor, once per distinct program, not per worker. A copy is
// made under the cache's lock: spawns on other threads wait for it (once
// per program version; 3.5 ms for 8.6 MB here).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa::sandbox::detail {

inline constexpr std::size_t kMaxProgramCopies = 64;
inline constexpr std::uint64_t kMaxProgramCopyBytes = 512ull << 20;

// One copy, lent to one spawn: an O_PATH fd of it (what is bound, by
// open_tree or --ro-bind-fd) and a hold that keeps its name until the spawn
// has bound it (an unprivileged bubblewrap resolves the fd's name).
struct ProgramCopy {
  Fd fd;
  std::shared_ptr<const void> hold;
};

// The copy of `program` (an fd from open_host_file), made now if there is
// none for this version of the file. `what` (its host path) is for errors
// only, and never reaches the copy's name.
Result<ProgramCopy> program_copy(const Fd& program, const std::string& what);

// The cache's directory ("/dev/shm/capsa-programs-XXXXXX"), or "" before the
// first copy. For tests and for docs' "how to look".
std::string program_copies_dir();

// Removes every capsa-programs-* directory under `parent` owned by this
// process's effective uid whose owner (same pid namespace) no longer runs.
// Called when a cache is made; exposed for tests.
void sweep_dead_program_copies(const std::string& parent);

}  // namespace capsa::sandbox::detail
