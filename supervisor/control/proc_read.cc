#include "supervisor/control/proc_read.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "capabilities/sys.h"

namespace capsa::supervisor::proc {
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

// The inode in a "socket:[12345]" link target, nullopt for anything else.
std::optional<std::uint64_t> socket_inode_of_link(std::string_view target) {
  constexpr std::string_view kPrefix = "socket:[";
  if (!target.starts_with(kPrefix) || !target.ends_with(']')) return std::nullopt;
  return parse_number<std::uint64_t>(target.substr(kPrefix.size(),
                                                   target.size() - kPrefix.size() - 1));
}

// Adds the socket inodes of one fd table (/proc/PID/task/TID/fd).
// kNotFound if the task is gone.
Result<void> read_fd_table(const std::string& dir_path, const ProcScanLimits& limits,
                           ProcessSockets& out) {
  CAPSA_ASSIGN_OR_RETURN(auto dir, open_proc(dir_path, O_DIRECTORY));
  std::array<char, 64> target{};
  Error link_error;
  bool link_failed = false;
  auto whole = for_each_entry(dir, dir_path, limits.max_fds, [&](std::string_view name) {
    std::string n(name);
    ssize_t len = ::readlinkat(dir.get(), n.c_str(), target.data(), target.size());
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

}  // namespace


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
  CAPSA_ASSIGN_OR_RETURN(auto fd, open_proc(path, 0));
  std::string out;
  std::array<char, 4096> buf{};
  while (out.size() < (1u << 20)) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(proc_error("read", path, errno));
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  return out;
}

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
  CAPSA_ASSIGN_OR_RETURN(auto text, read_proc_file(path));
  auto st = parse_stat(text);
  if (!st) return make_error(Errc::kFailed, "cannot parse " + path);
  return *st;
}

void mark_incomplete(bool& complete, std::string& why, std::string text) {
  if (complete) why = std::move(text);
  complete = false;
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

Result<bool> for_each_entry(const Fd& dir, std::string_view path, std::size_t max,
                            const std::function<void(std::string_view)>& fn) {
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

}  // namespace capsa::supervisor::proc
