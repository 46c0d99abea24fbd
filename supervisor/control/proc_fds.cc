#include "supervisor/control/proc_fds.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>

#include "supervisor/control/proc_read.h"

namespace capsa::supervisor {
namespace {

using proc::for_each_entry;
using proc::mark_incomplete;
using proc::open_proc;
using proc::parse_number;
using proc::proc_path;
using proc::read_proc_file;
using proc::read_process;
using proc::read_stat;

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
  CAPSA_ASSIGN_OR_RETURN(auto root_stat, read_stat(root));
  TreeWalk walk;
  std::unordered_set<pid_t> seen{root};
  std::deque<std::pair<Found, std::size_t>> queue{{Found{root, root_stat.start}, 0}};
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
  CAPSA_ASSIGN_OR_RETURN(auto walk, walk_tree(root, limits, finder));
  TreeSockets out;
  out.root = root;
  out.complete = walk.complete;
  out.why = walk.why;
  for (const Found& proc : walk.procs) {
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
  CAPSA_ASSIGN_OR_RETURN(auto socks, read_process(pid, limits));
  if (!socks.complete) return make_error(Errc::kOverloaded, socks.why);
  return std::move(socks.inodes);
}

Result<std::vector<pid_t>> process_tree(pid_t root, const ProcScanLimits& limits,
                                        bool* truncated) {
  if (root <= 0) return make_error(Errc::kInvalidArgument, "no such process: pid " + std::to_string(root));
  ChildFinder finder(limits);
  CAPSA_ASSIGN_OR_RETURN(auto walk, walk_tree(root, limits, finder));
  if (truncated != nullptr) *truncated = !walk.complete;
  std::vector<pid_t> out;
  out.reserve(walk.procs.size());
  for (const Found& f : walk.procs) out.push_back(f.pid);
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
