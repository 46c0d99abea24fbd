// capsa — reading one process from /proc, for proc_fds.cc: its identity
// (parent, start time), its fd tables (every task's that is not the
// leader's), and the small files and directories that takes. Internal to
// capsa::control; the meaning of the answers is documented in proc_fds.h.
//
// Every failure is an error a caller can act on: the process is gone
// (kNotFound), we may not look (kDenied), anything else (kFailed).
#pragma once

#include <sys/types.h>

#include <charconv>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "supervisor/control/proc_fds.h"

namespace capsa::supervisor::proc {

// "/proc/PID" + rest.
std::string proc_path(pid_t pid, std::string_view rest);
// Opens a /proc path read-only (plus `flags`), retrying EINTR.
Result<Fd> open_proc(const std::string& path, int flags);
// A /proc text file (stat, children) read whole. They are small; a cap
// only guards against a kernel surprise.
Result<std::string> read_proc_file(const std::string& path);

// Calls `fn(name)` for each entry of the open directory `dir` (without "."
// and ".."), at most `max` times. Returns false if it stopped at `max`.
// getdents64 on an owned Fd rather than fdopendir: the DIR* would take the
// fd out of Fd's ownership.
Result<bool> for_each_entry(const Fd& dir, std::string_view path, std::size_t max,
                            const std::function<void(std::string_view)>& fn);

// A whole decimal number, nothing else.
template <typename T>
std::optional<T> parse_number(std::string_view s) {
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// The identity of a process: its parent and its start time (clock ticks
// since boot). (pid, start time) does not repeat in practice: a pid would
// have to be reused within one tick.
struct ProcStat {
  pid_t ppid = 0;
  std::uint64_t start = 0;
};

// Parses /proc/PID/stat: "pid (comm) state ppid ... starttime ...". comm may
// hold spaces and parentheses (a worker names itself), so fields are counted
// from the LAST ')'.
std::optional<ProcStat> parse_stat(std::string_view text);
Result<ProcStat> read_stat(pid_t pid);

// What reading one process's fd tables gave.
struct ProcessSockets {
  std::unordered_set<std::uint64_t> inodes;
  bool complete = true;
  std::string why;
};

// Records the first reason a result is incomplete.
void mark_incomplete(bool& complete, std::string& why, std::string text);

// Every fd table of process `pid`: the leader's, then each task's that is
// not the same table (kcmp KCMP_FILES), within `limits`.
Result<ProcessSockets> read_process(pid_t pid, const ProcScanLimits& limits);

}  // namespace capsa::supervisor::proc
