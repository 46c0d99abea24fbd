#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "capabilities/sys.h"
#include "sandbox/cgroup_probe.h"

namespace capsa::sandbox {

std::string_view cgroup_kind_name(CgroupKind kind) noexcept {
  switch (kind) {
    case CgroupKind::kNone: return "none";
    case CgroupKind::kV1: return "v1";
    case CgroupKind::kV2: return "v2";
  }
  return "unknown";
}

namespace detail {
namespace {

// How long drain() waits for the cgroup to empty. The sandbox's pid 1 is
// gone by then, so the kernel is already killing the rest; this bounds a
// kernel that is slow, not a worker.
constexpr auto kDrainLimit = std::chrono::seconds(2);

// A dead supervisor's cgroup younger than this is left alone (sweep_dead).
constexpr auto kStaleAge = std::chrono::seconds(60);

// Unique per supervisor process; the pid tells an operator whose it was.
std::string next_name() {
  static std::atomic<std::uint64_t> seq{0};
  return "capsa-" + std::to_string(::getpid()) + "-" + std::to_string(seq.fetch_add(1));
}

Result<void> write_file(const Fd& dir, const char* file, std::string_view value) {
  CAPSA_ASSIGN_OR_RETURN(Fd fd, sys_fd("open", file, [&] {
                           return ::openat(dir.get(), file, O_WRONLY | O_CLOEXEC);
                         }));
  CAPSA_TRY(sys("write", file, [&] { return ::write(fd.get(), value.data(), value.size()); }));
  return {};
}

// A limit file that may be absent (memsw without swap accounting, kmem on
// kernels that dropped it): ENOENT and EOPNOTSUPP are not errors.
Result<void> write_optional(const Fd& dir, const char* file, std::string_view value) {
  auto rc = write_file(dir, file, value);
  if (!rc && (rc.error().sys_errno == ENOENT || rc.error().sys_errno == EOPNOTSUPP)) return {};
  return rc;
}

std::string read_file(const Fd& dir, const char* file) { return read_small(dir.get(), file); }

// The number after "key " in a "key value" per line file (cpu.stat,
// memory.events, memory.oom_control); 0 when absent.
std::uint64_t keyed(std::string_view text, std::string_view key) {
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    if (line.starts_with(key) && line.size() > key.size() && line[key.size()] == ' ') {
      return std::strtoull(std::string(line.substr(key.size() + 1)).c_str(), nullptr, 10);
    }
    at = end + 1;
  }
  return 0;
}

std::uint64_t number(const std::string& text) { return std::strtoull(text.c_str(), nullptr, 10); }

// One fd per parent directory, shared by every cgroup made under it while
// any of them lives: a thousand workers on a v1 host (three hierarchies)
// cost three fds here, not three thousand. Opened afresh once the last
// user is gone, so nothing stays open between supervisors (tests count
// fds). nullptr with errno set when it cannot be opened.
std::shared_ptr<const Fd> shared_parent(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<const Fd>, std::less<>> open;
  std::lock_guard lock(mu);
  std::weak_ptr<const Fd>& slot = open[path];
  if (auto p = slot.lock()) return p;
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return nullptr;
  auto p = std::make_shared<const Fd>(std::move(fd));
  slot = p;
  return p;
}

std::vector<int> pids_in(const Fd& dir) {
  std::vector<int> out;
  const std::string text = read_file(dir, "cgroup.procs");
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (end > at) out.push_back(std::atoi(text.substr(at, end - at).c_str()));
    at = end + 1;
  }
  return out;
}


}  // namespace

// A supervisor that was SIGKILLed could not remove its workers' cgroups
// (its workers died with it: the directories are empty). Before making one,
// any capsa-<pid>-* under the same parent whose supervisor no longer runs
// and that is older than `min_age` is removed. The age keeps a supervisor
// that reused the dead one's pid from losing a cgroup it has just made and
// not yet entered; rmdir itself refuses a cgroup that still has processes.
void sweep_dead(const Fd& parent, std::chrono::seconds min_age) {
  Fd copy(::openat(parent.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!copy.valid()) return;
  DIR* dir = ::fdopendir(copy.get());
  if (dir == nullptr) return;
  (void)copy.release();  // the DIR owns it now
  const std::string own = "capsa-" + std::to_string(::getpid()) + "-";
  const auto now = ::time(nullptr);
  while (const dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (!name.starts_with("capsa-") || name.starts_with(own)) continue;
    const pid_t pid = std::atoi(e->d_name + 6);
    struct stat st {};
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (::fstatat(::dirfd(dir), e->d_name, &st, 0) != 0) continue;
    if (now - st.st_ctime < min_age.count()) continue;
    ::unlinkat(::dirfd(dir), e->d_name, AT_REMOVEDIR);
  }
  ::closedir(dir);
}

Cgroup& Cgroup::operator=(Cgroup&& other) noexcept {
  if (this != &other) {
    if (!dirs_.empty()) (void)drain();
    remove();
    kind_ = other.kind_;
    reason_ = std::move(other.reason_);
    dirs_ = std::move(other.dirs_);
    procs_ = std::move(other.procs_);
    other.kind_ = CgroupKind::kNone;
  }
  return *this;
}

Cgroup::~Cgroup() {
  if (dirs_.empty()) return;
  (void)drain();
  remove();
}

Result<Cgroup> Cgroup::create(const CgroupLimits& limits) {
  Cgroup cg;
  std::string name = next_name();
  // Makes `name` under `base`; false (and `why`) when the kernel refuses.
  auto make = [&](const CgroupBase& base, std::string* why) -> Result<bool> {
    Dir d;
    d.controllers = base.controllers;
    d.parent = shared_parent(base.path);
    if (d.parent == nullptr) {
      *why = base.path + ": " + std::strerror(errno);
      return false;
    }
    sweep_dead(*d.parent, kStaleAge);
    // A name left by an earlier supervisor with our pid (not yet swept):
    // the next one, never a downgrade to no cgroup.
    int rc = -1;
    for (int attempt = 0; attempt < 16; ++attempt) {
      rc = ::mkdirat(d.parent->get(), name.c_str(), 0755);
      if (rc == 0 || errno != EEXIST || !cg.dirs_.empty()) break;
      name = next_name();
    }
    if (rc != 0) {
      *why = base.path + ": " + std::strerror(errno);
      return false;
    }
    d.name = name;
    d.dir.reset(::openat(d.parent->get(), name.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    // Owned from here: a failure below removes it with `cg`.
    cg.dirs_.push_back(std::move(d));
    if (!cg.dirs_.back().dir.valid()) return std::unexpected(sys_error("open", name, errno));
    return true;
  };
  std::string why_v2;
  if (CgroupBase base = find_v2_base(&why_v2); !base.path.empty()) {
    CAPSA_ASSIGN_OR_RETURN(const bool made, make(base, &why_v2));
    if (made) {
      cg.kind_ = CgroupKind::kV2;
      const Fd& dir = cg.dirs_.back().dir;
      if (limits.memory_bytes != 0) {
        CAPSA_TRY(write_file(dir, "memory.max", std::to_string(limits.memory_bytes)));
        // Swapped-out pages are outside memory.max: none for the worker.
        CAPSA_TRY(write_optional(dir, "memory.swap.max", "0"));
      }
      // An OOM kill takes the whole sandbox, not one process of it.
      CAPSA_TRY(write_optional(dir, "memory.oom.group", "1"));
      if (limits.max_tasks != 0) {
        CAPSA_TRY(write_file(dir, "pids.max", std::to_string(limits.max_tasks)));
      }
      CAPSA_TRY(cg.open_procs());
      return cg;
    }
  }
  std::string why_v1;
  for (const CgroupBase& base : find_v1_bases()) {
    CAPSA_ASSIGN_OR_RETURN(const bool made, make(base, &why_v1));
    if (!made) {
      if (carries(base, "memory")) break;  // without memory, v1 is not worth it
      continue;
    }
    const Fd& dir = cg.dirs_.back().dir;
    if (carries(base, "memory") && limits.memory_bytes != 0) {
      const std::string v = std::to_string(limits.memory_bytes);
      CAPSA_TRY(write_file(dir, "memory.limit_in_bytes", v));
      // memory + swap (when swap is accounted): swapping does not escape it.
      CAPSA_TRY(write_optional(dir, "memory.memsw.limit_in_bytes", v));
      // Kernel memory is charged to memory.limit_in_bytes as well on the
      // kernels we run on; this file, where it still works, is a second cap.
      CAPSA_TRY(write_optional(dir, "memory.kmem.limit_in_bytes", v));
    }
    if (carries(base, "pids") && limits.max_tasks != 0) {
      CAPSA_TRY(write_file(dir, "pids.max", std::to_string(limits.max_tasks)));
    }
  }
  if (cg.find("memory") == nullptr) {
    cg.remove();
    cg.dirs_.clear();
    cg.reason_ = "no cgroup: " + why_v2 +
                 (why_v1.empty() ? "; no cgroup v1 memory hierarchy" : "; cgroup v1 " + why_v1);
    return cg;
  }
  cg.kind_ = CgroupKind::kV1;
  for (const char* c : {"pids", "cpuacct"}) {
    if (cg.find(c) == nullptr) cg.reason_ += std::string(cg.reason_.empty() ? "" : ", ") + "no " + c;
  }
  CAPSA_TRY(cg.open_procs());
  return cg;
}

// v1: the `tasks` file. The clone child is one thread (its own thread
// group), so moving that thread moves the process; and the kernel moves a
// single thread given as 0 (the writer) without the global threadgroup
// lock, whose write side costs an RCU grace period (cgroup.procs took 6 to
// 15 ms per spawn here; `tasks` about 0.1 ms). v2 has no such file for a
// domain cgroup: cgroup.procs.
Result<void> Cgroup::open_procs() {
  const char* file = kind_ == CgroupKind::kV2 ? "cgroup.procs" : "tasks";
  for (const Dir& d : dirs_) {
    CAPSA_ASSIGN_OR_RETURN(Fd fd, sys_fd("open", file, [&] {
                             return ::openat(d.dir.get(), file, O_WRONLY | O_CLOEXEC);
                           }));
    procs_.push_back(std::move(fd));
  }
  return {};
}

std::vector<int> Cgroup::procs_fds() const {
  std::vector<int> out;
  for (const Fd& fd : procs_) out.push_back(fd.get());
  return out;
}

const Cgroup::Dir* Cgroup::find(std::string_view controller) const {
  for (const Dir& d : dirs_) {
    if (kind_ == CgroupKind::kV2 || carries({"", d.controllers}, controller)) return &d;
  }
  return nullptr;
}

// v1 has no cgroup.kill. Each pid is held by a pidfd first, then found in
// the cgroup again: if it still is, the pidfd is that process (a pid
// recycled meanwhile would belong to a process outside the cgroup, which
// nothing can move in but us), so no bystander is ever signalled.
void Cgroup::kill_v1(const Dir& d) {
  for (int pid : pids_in(d.dir)) {
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) continue;
    const auto now = pids_in(d.dir);
    if (std::find(now.begin(), now.end(), pid) == now.end()) continue;
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  }
}

Result<CgroupUsage> Cgroup::drain() {
  CgroupUsage usage;
  if (dirs_.empty()) return usage;
  const Dir& any = dirs_.front();
  const auto until = std::chrono::steady_clock::now() + kDrainLimit;
  bool killed_v2 = false;
  while (!pids_in(any.dir).empty()) {
    if (std::chrono::steady_clock::now() > until) {
      return make_error(Errc::kFailed, "cgroup " + any.name + " still has processes after 2 s");
    }
    if (kind_ == CgroupKind::kV2 && !killed_v2) {
      // Atomic against forks: the kernel kills every task, new ones too.
      killed_v2 = write_file(any.dir, "cgroup.kill", "1").has_value();
      if (!killed_v2) kill_v1(any);
    } else {
      kill_v1(any);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (kind_ == CgroupKind::kV2) {
    usage.cpu_time = std::chrono::microseconds(keyed(read_file(any.dir, "cpu.stat"), "usage_usec"));
    usage.peak_memory_bytes = number(read_file(any.dir, "memory.peak"));
    usage.oom_kills = keyed(read_file(any.dir, "memory.events"), "oom_kill");
    return usage;
  }
  if (const Dir* cpu = find("cpuacct")) {
    usage.cpu_time = std::chrono::microseconds(number(read_file(cpu->dir, "cpuacct.usage")) / 1000);
  }
  if (const Dir* mem = find("memory")) {
    usage.peak_memory_bytes = number(read_file(mem->dir, "memory.max_usage_in_bytes"));
    usage.oom_kills = keyed(read_file(mem->dir, "memory.oom_control"), "oom_kill");
  }
  return usage;
}

void Cgroup::remove() noexcept {
  procs_.clear();
  for (Dir& d : dirs_) {
    if (d.parent != nullptr) ::unlinkat(d.parent->get(), d.name.c_str(), AT_REMOVEDIR);
  }
  dirs_.clear();
}

}  // namespace detail
}  // namespace capsa::sandbox
