#include "supervisor/control/proc_fds.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>

#include "capabilities/fd.h"
#include "capabilities/sys.h"

namespace capsa::supervisor {
namespace {

// errno of a failed /proc access as an error a caller can act on: the
// process is gone (kNotFound), we may not look (kDenied), or something else.
Error proc_error(std::string_view what, const std::string& path, int err) {
  Errc code = Errc::kFailed;
  if (err == ENOENT || err == ESRCH) code = Errc::kNotFound;
  if (err == EACCES || err == EPERM) code = Errc::kDenied;
  Error e = sys_error(what, path, err);
  e.code = code;
  return e;
}

std::string proc_path(pid_t pid, std::string_view rest) {
  std::string p = "/proc/" + std::to_string(pid);
  p += rest;
  return p;
}

Result<Fd> open_proc(const std::string& path, int flags) {
  for (;;) {
    int fd = ::open(path.c_str(), flags | O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) return Fd(fd);
    if (errno == EINTR) continue;
    return std::unexpected(proc_error("open", path, errno));
  }
}

// A /proc text file (stat, children) read whole. They are small; the cap
// only guards against a kernel surprise.
Result<std::string> read_proc_file(const std::string& path) {
  auto fd = open_proc(path, 0);
  if (!fd) return std::unexpected(fd.error());
  std::string out;
  std::array<char, 4096> buf{};
  while (out.size() < (1u << 20)) {
    ssize_t n = ::read(fd->get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(proc_error("read", path, errno));
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  return out;
}

// Calls `fn(name)` for each entry of the open directory `dir` (without "."
// and ".."), at most `max` times. Returns false if it stopped at `max`.
// getdents64 on an owned Fd rather than fdopendir: the DIR* would take the
// fd out of Fd's ownership.
template <typename Fn>
Result<bool> for_each_entry(const Fd& dir, std::string_view path, std::size_t max, Fn&& fn) {
  alignas(8) std::array<char, 8192> buf{};
  std::size_t seen = 0;
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(proc_error("getdents64", std::string(path), errno));
    if (n == 0) return true;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
      unsigned short reclen = 0;
      std::memcpy(&reclen, buf.data() + off + 16, sizeof reclen);
      const char* name = buf.data() + off + 19;
      off += reclen;
      if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
      if (seen++ == max) return false;
      fn(std::string_view(name));
    }
  }
}

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
std::optional<ProcStat> parse_stat(std::string_view text) {
  auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  ProcStat st;
  // Fields after comm: state is field 3, ppid 4, starttime 22.
  int field = 2;
  std::size_t i = 0;
  bool have_ppid = false, have_start = false;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    std::size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j == i) break;
    ++field;
    std::string_view tok = rest.substr(i, j - i);
    if (field == 4) {
      auto v = parse_number<pid_t>(tok);
      if (!v) return std::nullopt;
      st.ppid = *v;
      have_ppid = true;
    } else if (field == 22) {
      auto v = parse_number<std::uint64_t>(tok);
      if (!v) return std::nullopt;
      st.start = *v;
      have_start = true;
      break;
    }
    i = j;
  }
  if (!have_ppid || !have_start) return std::nullopt;
  return st;
}

Result<ProcStat> read_stat(pid_t pid) {
  std::string path = proc_path(pid, "/stat");
  auto text = read_proc_file(path);
  if (!text) return std::unexpected(text.error());
  auto st = parse_stat(*text);
  if (!st) return make_error(Errc::kFailed, "cannot parse " + path);
  return *st;
}

// The inode in a "socket:[12345]" link target, nullopt for anything else.
std::optional<std::uint64_t> socket_inode_of_link(std::string_view target) {
  constexpr std::string_view kPrefix = "socket:[";
  if (!target.starts_with(kPrefix) || !target.ends_with(']')) return std::nullopt;
  return parse_number<std::uint64_t>(target.substr(kPrefix.size(),
                                                   target.size() - kPrefix.size() - 1));
}

// What reading one process's fd tables gave.
struct ProcessSockets {
  std::unordered_set<std::uint64_t> inodes;
  bool complete = true;
  std::string why;
};

void mark_incomplete(bool& complete, std::string& why, std::string text) {
  if (complete) why = std::move(text);
  complete = false;
}

// Adds the socket inodes of one fd table (/proc/PID/task/TID/fd).
// kNotFound if the task is gone.
Result<void> read_fd_table(const std::string& dir_path, const ProcScanLimits& limits,
                           ProcessSockets& out) {
  auto dir = open_proc(dir_path, O_DIRECTORY);
  if (!dir) return std::unexpected(dir.error());
  std::array<char, 64> target{};
  Error link_error;
  bool link_failed = false;
  auto whole = for_each_entry(*dir, dir_path, limits.max_fds, [&](std::string_view name) {
    std::string n(name);
    ssize_t len = ::readlinkat(dir->get(), n.c_str(), target.data(), target.size());
    if (len < 0) {
      // ENOENT: the fd was closed while we listed; nothing held there now.
      if (errno != ENOENT && !link_failed) {
        link_error = proc_error("readlink", dir_path + "/" + n, errno);
        link_failed = true;
      }
      return;
    }
    auto inode = socket_inode_of_link(
        std::string_view(target.data(), static_cast<std::size_t>(len)));
    if (inode) out.inodes.insert(*inode);
  });
  if (!whole) return std::unexpected(whole.error());
  if (!*whole) {
    mark_incomplete(out.complete, out.why,
                    dir_path + " has more than " + std::to_string(limits.max_fds) +
                        " fds; the rest were not read");
  }
  if (link_failed) mark_incomplete(out.complete, out.why, link_error.message);
  return {};
}

// Whether tasks `pid` and `tid` share one fd table. False when kcmp cannot
// tell (not built in, refused by a seccomp filter): then both are read.
bool same_fd_table(pid_t pid, pid_t tid) {
  long rc = ::syscall(SYS_kcmp, pid, tid, KCMP_FILES, 0, 0);
  return rc == 0;
}

// Every fd table of process `pid`: the leader's, then each task's that is
// not the same table.
Result<ProcessSockets> read_process(pid_t pid, const ProcScanLimits& limits) {
  ProcessSockets out;
  std::string task_dir = proc_path(pid, "/task");
  auto leader = read_fd_table(proc_path(pid, "/fd"), limits, out);
  // A leader that already exited (its threads live on) has no table to
  // read; its tasks do. Any other failure on the leader decides.
  bool leader_gone = !leader && leader.error().code == Errc::kNotFound;
  if (!leader && !leader_gone) return std::unexpected(leader.error());
  auto tasks = open_proc(task_dir, O_DIRECTORY);
  if (!tasks) {
    if (leader_gone) return std::unexpected(leader.error());
    mark_incomplete(out.complete, out.why, tasks.error().message);
    return out;
  }
  std::vector<pid_t> tids;
  auto whole = for_each_entry(*tasks, task_dir, limits.max_tasks, [&](std::string_view name) {
    if (auto tid = parse_number<pid_t>(name)) tids.push_back(*tid);
  });
  if (!whole) {
    mark_incomplete(out.complete, out.why, whole.error().message);
  } else if (!*whole) {
    mark_incomplete(out.complete, out.why,
                    "process " + std::to_string(pid) + " has more than " +
                        std::to_string(limits.max_tasks) + " threads; the rest were not read");
  }
  for (pid_t tid : tids) {
    if (tid == pid && !leader_gone) continue;
    if (!leader_gone && same_fd_table(pid, tid)) continue;
    auto r = read_fd_table(task_dir + "/" + std::to_string(tid) + "/fd", limits, out);
    if (!r && r.error().code != Errc::kNotFound) {
      mark_incomplete(out.complete, out.why, r.error().message);
    }
  }
  if (leader_gone && tids.empty()) return std::unexpected(leader.error());
  return out;
}

struct Found {
  pid_t pid = 0;
  std::uint64_t start = 0;
};

// Finds children. With CONFIG_PROC_CHILDREN it reads each task's children
// file; without, it scans /proc once and keeps the parent map for every
// later tree of the same check.
class ChildFinder {
 public:
  explicit ChildFinder(const ProcScanLimits& limits)
      : limits_(limits), per_task_(::access("/proc/thread-self/children", R_OK) == 0) {}

  // Children of `pid` (whose start time is `start`), each with its identity.
  // Problems are recorded in `complete`/`why`.
  std::vector<Found> children(pid_t pid, bool& complete, std::string& why) {
    return per_task_ ? children_from_tasks(pid, complete, why) : children_from_index(pid, complete, why);
  }

 private:
  std::vector<Found> children_from_tasks(pid_t pid, bool& complete, std::string& why) {
    std::vector<Found> out;
    std::string task_dir = proc_path(pid, "/task");
    auto tasks = open_proc(task_dir, O_DIRECTORY);
    if (!tasks) {
      if (tasks.error().code != Errc::kNotFound) mark_incomplete(complete, why, tasks.error().message);
      return out;
    }
    std::vector<std::string> tids;
    auto whole = for_each_entry(*tasks, task_dir, limits_.max_tasks,
                                [&](std::string_view name) { tids.emplace_back(name); });
    if (!whole || !*whole) {
      mark_incomplete(complete, why,
                      whole ? "too many threads in process " + std::to_string(pid)
                            : whole.error().message);
    }
    for (const std::string& tid : tids) {
      auto text = read_proc_file(task_dir + "/" + tid + "/children");
      if (!text) {
        if (text.error().code != Errc::kNotFound) mark_incomplete(complete, why, text.error().message);
        continue;
      }
      // "123 456 " (space-separated); any whitespace is taken as a separator.
      std::string_view rest = *text;
      while (!rest.empty()) {
        auto sp = rest.find_first_of(" \n\t");
        std::string_view tok = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        auto child = parse_number<pid_t>(tok);
        if (!child) continue;
        // The identity is taken now; the child must still be ours (its pid
        // could have been reaped and reused since the children file was read).
        auto st = read_stat(*child);
        if (st && st->ppid == pid) out.push_back({*child, st->start});
      }
    }
    return out;
  }

  std::vector<Found> children_from_index(pid_t pid, bool& complete, std::string& why) {
    if (!indexed_) build_index();
    if (!index_complete_) mark_incomplete(complete, why, index_why_);
    auto [lo, hi] = index_.equal_range(pid);
    std::vector<Found> out;
    for (auto it = lo; it != hi; ++it) out.push_back(it->second);
    return out;
  }

  void build_index() {
    indexed_ = true;
    auto proc = open_proc("/proc", O_DIRECTORY);
    if (!proc) {
      index_complete_ = false;
      index_why_ = proc.error().message;
      return;
    }
    std::vector<pid_t> pids;
    auto whole = for_each_entry(*proc, "/proc", limits_.max_proc_entries, [&](std::string_view name) {
      if (auto p = parse_number<pid_t>(name)) pids.push_back(*p);
    });
    if (!whole || !*whole) {
      index_complete_ = false;
      index_why_ = whole ? "more than " + std::to_string(limits_.max_proc_entries) +
                               " entries in /proc; the rest were not read"
                         : whole.error().message;
    }
    for (pid_t p : pids) {
      // A process that exited since the listing is simply absent; one whose
      // stat we may not read (hidepid) cannot be placed in any tree.
      auto st = read_stat(p);
      if (st) {
        index_.emplace(st->ppid, Found{p, st->start});
      } else if (st.error().code != Errc::kNotFound && index_complete_) {
        index_complete_ = false;
        index_why_ = st.error().message;
      }
    }
  }

  ProcScanLimits limits_;
  bool per_task_;
  bool indexed_ = false;
  bool index_complete_ = true;
  std::string index_why_;
  std::multimap<pid_t, Found> index_;
};

struct TreeWalk {
  std::vector<Found> procs;
  bool complete = true;
  std::string why;
};

Result<TreeWalk> walk_tree(pid_t root, const ProcScanLimits& limits, ChildFinder& finder) {
  auto root_stat = read_stat(root);
  if (!root_stat) return std::unexpected(root_stat.error());
  TreeWalk walk;
  std::unordered_set<pid_t> seen{root};
  std::deque<std::pair<Found, std::size_t>> queue{{Found{root, root_stat->start}, 0}};
  while (!queue.empty()) {
    auto [proc, depth] = queue.front();
    queue.pop_front();
    walk.procs.push_back(proc);
    if (depth == limits.max_depth) {
      // Children below the bound are not visited; say so only if there are.
      bool c = true;
      std::string w;
      if (!finder.children(proc.pid, c, w).empty()) {
        mark_incomplete(walk.complete, walk.why,
                        "the process tree is deeper than " + std::to_string(limits.max_depth) +
                            " generations; deeper processes were not read");
      }
      continue;
    }
    for (const Found& child : finder.children(proc.pid, walk.complete, walk.why)) {
      if (!seen.insert(child.pid).second) continue;
      if (seen.size() > limits.max_processes) {
        mark_incomplete(walk.complete, walk.why,
                        "the process tree has more than " + std::to_string(limits.max_processes) +
                            " processes; the rest were not read");
        queue.clear();
        break;
      }
      queue.emplace_back(child, depth + 1);
    }
  }
  return walk;
}

Result<TreeSockets> tree_sockets(pid_t root, const ProcScanLimits& limits, ChildFinder& finder) {
  auto walk = walk_tree(root, limits, finder);
  if (!walk) return std::unexpected(walk.error());
  TreeSockets out;
  out.root = root;
  out.complete = walk->complete;
  out.why = walk->why;
  for (const Found& proc : walk->procs) {
    auto socks = read_process(proc.pid, limits);
    // Read the identity again: if the pid now names another process (or
    // none), what we read may be a stranger's table: drop it.
    auto after = read_stat(proc.pid);
    bool same = after && after->start == proc.start;
    if (!socks) {
      if (proc.pid == root) return std::unexpected(socks.error());
      // A descendant that exited holds nothing; one we may not read leaves
      // a hole in the picture.
      if (socks.error().code != Errc::kNotFound) {
        mark_incomplete(out.complete, out.why, socks.error().message);
      }
      continue;
    }
    if (!same) {
      if (proc.pid == root) {
        return make_error(Errc::kNotFound, "process " + std::to_string(root) +
                                               " exited while its fds were read");
      }
      continue;
    }
    out.pids.push_back(proc.pid);
    out.inodes.insert(socks->inodes.begin(), socks->inodes.end());
    if (!socks->complete) mark_incomplete(out.complete, out.why, socks->why);
  }
  return out;
}

}  // namespace

Result<std::unordered_set<std::uint64_t>> socket_inodes_of(pid_t pid,
                                                           const ProcScanLimits& limits) {
  if (pid <= 0) return make_error(Errc::kInvalidArgument, "no such process: pid " + std::to_string(pid));
  auto socks = read_process(pid, limits);
  if (!socks) return std::unexpected(socks.error());
  if (!socks->complete) return make_error(Errc::kOverloaded, socks->why);
  return std::move(socks->inodes);
}

Result<std::vector<pid_t>> process_tree(pid_t root, const ProcScanLimits& limits,
                                        bool* truncated) {
  if (root <= 0) return make_error(Errc::kInvalidArgument, "no such process: pid " + std::to_string(root));
  ChildFinder finder(limits);
  auto walk = walk_tree(root, limits, finder);
  if (!walk) return std::unexpected(walk.error());
  if (truncated != nullptr) *truncated = !walk->complete;
  std::vector<pid_t> out;
  out.reserve(walk->procs.size());
  for (const Found& f : walk->procs) out.push_back(f.pid);
  return out;
}

Result<TreeSockets> sockets_held_by_tree(pid_t root, const ProcScanLimits& limits) {
  if (root <= 0) return make_error(Errc::kInvalidArgument, "no such process: pid " + std::to_string(root));
  ChildFinder finder(limits);
  return tree_sockets(root, limits, finder);
}

std::string_view kernel_verdict_name(KernelVerdict v) noexcept {
  switch (v) {
    case KernelVerdict::kUnknown: return "unknown";
    case KernelVerdict::kHeld: return "held";
    case KernelVerdict::kNotHeld: return "not held";
    case KernelVerdict::kHeldByOther: return "held by other";
  }
  return "unknown";
}

std::string kernel_check_text(KernelVerdict verdict, std::string_view detail) {
  switch (verdict) {
    case KernelVerdict::kHeld:
      return detail.empty() ? std::string("held") : "held (also by " + std::string(detail) + ")";
    case KernelVerdict::kNotHeld: return "not held";
    case KernelVerdict::kHeldByOther: return "held by " + std::string(detail);
    case KernelVerdict::kUnknown: break;
  }
  return detail.empty() ? std::string("unknown") : "unknown: " + std::string(detail);
}

std::vector<KernelCheck> check_holders(std::span<const HolderProcess> workers,
                                       std::span<const PortToCheck> ports,
                                       const ProcScanLimits& limits) {
  // Worker names per pid: two workers attached in one process are one tree.
  std::map<pid_t, std::vector<std::string>> names_by_pid;
  for (const HolderProcess& w : workers) {
    if (w.pid > 0) names_by_pid[w.pid].push_back(w.worker);
  }
  for (const PortToCheck& p : ports) {
    if (p.holder_pid > 0) names_by_pid[p.holder_pid].push_back(p.holder);
  }
  for (auto& [pid, names] : names_by_pid) {
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
  }
  ChildFinder finder(limits);
  std::unordered_map<pid_t, Result<TreeSockets>> trees;
  for (const auto& [pid, names] : names_by_pid) trees.emplace(pid, tree_sockets(pid, limits, finder));

  std::vector<KernelCheck> out;
  out.reserve(ports.size());
  for (const PortToCheck& port : ports) {
    KernelCheck check;
    if (port.inode == 0) {
      check.detail = "the supervisor does not know the inode of this port";
      out.push_back(std::move(check));
      continue;
    }
    if (port.holder_pid <= 0) {
      check.detail = "no process is known for worker " + port.holder + " (attached without a pid)";
      out.push_back(std::move(check));
      continue;
    }
    // Other workers' trees that hold the inode.
    std::string others;
    for (const auto& [pid, tree] : trees) {
      if (pid == port.holder_pid || !tree || !tree->inodes.contains(port.inode)) continue;
      for (const std::string& name : names_by_pid[pid]) {
        if (name == port.holder) continue;
        if (!others.empty()) others += ", ";
        others += name;
      }
    }
    const Result<TreeSockets>& mine = trees.at(port.holder_pid);
    if (mine && mine->inodes.contains(port.inode)) {
      check.verdict = KernelVerdict::kHeld;
      check.detail = std::move(others);
    } else if (!mine || !mine->complete) {
      // The holder's tree was not fully read: it may hold the port too, so
      // neither "not held" nor "held by another" is certain.
      check.detail = mine ? mine->why : mine.error().message;
      if (!others.empty()) check.detail += "; held by " + others;
    } else if (!others.empty()) {
      check.verdict = KernelVerdict::kHeldByOther;
      check.detail = std::move(others);
    } else {
      check.verdict = KernelVerdict::kNotHeld;
    }
    out.push_back(std::move(check));
  }
  return out;
}

}  // namespace capsa::supervisor
