#include "sandbox/program_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "capabilities/sys.h"

namespace capsa::sandbox::detail {
namespace {

constexpr const char* kPrefix = "capsa-programs-";
// The file in each cache directory that names its owner (never a copy's
// name: those are "p<N>").
constexpr const char* kOwnerFile = "owner";
// A directory without an owner file yet (its supervisor is between mkdtemp
// and writing it, or died there) is left alone for this long.
constexpr std::time_t kUnclaimedAge = 60;

// What identifies one version of a program file. Another inode (replaced on
// disk) or new contents in place (mtime/ctime move) is another key.
using Key = std::tuple<dev_t, ino_t, off_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t>;

Key key_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
          st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}

// Who owns a cache directory: pid, the process's start time (field 22 of
// /proc/PID/stat, clock ticks since boot: a pid reused later has another)
// and its pid namespace (a pid means something only in its namespace).
struct Owner {
  long long pid = 0;
  unsigned long long start = 0;
  unsigned long long pidns = 0;
  bool operator==(const Owner&) const = default;
};

// Start time of `pid` from /proc, 0 if it is gone.
unsigned long long start_time(long long pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return 0;
  char buf[1024];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: count from
  // the last ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 0;
  int field = 2;
  for (; *p != '\0' && field < 22; ++p) {
    if (*p == ' ') ++field;
  }
  return std::strtoull(p, nullptr, 10);
}

unsigned long long own_pidns() {
  struct stat st {};
  return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<unsigned long long>(st.st_ino) : 0;
}

Owner me() { return {::getpid(), start_time(::getpid()), own_pidns()}; }

std::string owner_text(const Owner& o) {
  return std::to_string(o.pid) + " " + std::to_string(o.start) + " " + std::to_string(o.pidns) +
         "\n";
}

// Empties `dir` (regular files only: nothing else is ever made there) and
// removes it, `name` relative to `parent`.
void remove_tree(const Fd& dir, int parent, const char* name) {
  Fd listing(::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (listing.valid()) {
    if (DIR* d = ::fdopendir(listing.get()); d != nullptr) {
      (void)listing.release();  // the DIR owns it now
      while (const dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
          ::unlinkat(::dirfd(d), e->d_name, 0);
        }
      }
      ::closedir(d);
    }
  }
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

// One copy in the directory. Its name goes when the last holder lets go:
// the cache's map, and each spawn using it (ProgramCopy::hold).
struct Copy {
  Copy(std::string p, ino_t i, std::uint64_t b) : path(std::move(p)), ino(i), bytes(b) {}
  // Unlinking in a directory already removed (at exit) just fails.
  ~Copy() { ::unlink(path.c_str()); }
  std::string path;  // <cache dir>/p<N>
  ino_t ino;         // of the copy: what a reopen by name must find
  std::uint64_t bytes;
};

// The cache holds no fd between spawns (a supervisor's fd count says what
// its workers hold: tests count them): the directory and its copies are
// opened by name per spawn, and checked to be what we made.
class Cache {
 public:
  Result<ProgramCopy> get(const Fd& program, const std::string& what);
  std::string dir() {
    std::lock_guard lock(mu_);
    return path_;
  }
  // atexit: the directory and every file in it, in the process that made it
  // (not in a fork of it, which shares this object and the handler).
  void remove_all() {
    std::lock_guard lock(mu_);
    closed_ = true;
    if (path_.empty() || ::getpid() != owner_.pid) return;
    if (Fd d = open_dir(); d.valid()) remove_tree(d, AT_FDCWD, path_.c_str());
    entries_.clear();
  }

 private:
  struct Entry {
    std::shared_ptr<Copy> copy;
    std::uint64_t used = 0;  // for least-recently-used eviction
  };
  Result<void> make_dir();
  Fd open_dir();
  Result<std::shared_ptr<Copy>> make_copy(const Fd& dir, const Fd& program, const struct stat& st,
                                          const std::string& what);
  void forget_all() {
    entries_.clear();
    bytes_ = 0;
    path_.clear();
  }
  void evict_for(std::uint64_t bytes);

  std::mutex mu_;
  std::string path_;  // ours, 0700; "" until the first copy
  ino_t dir_ino_ = 0;
  Owner owner_;
  bool closed_ = false;
  std::uint64_t next_name_ = 1;
  std::uint64_t tick_ = 0;
  std::uint64_t bytes_ = 0;
  std::map<Key, Entry> entries_;
};

Cache& cache() {
  // Never destroyed: spawns on other threads may run while the process
  // exits; atexit removes the files, the object stays.
  static Cache* c = new Cache;
  return *c;
}

// The candidates, in order: a per-user runtime dir, then tmpfs mounts
// every Linux has, then /tmp (disk on Debian 12: still a neutral path).
std::vector<std::string> candidates() {
  std::vector<std::string> out;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && x[0] == '/') out.push_back(x);
  for (const char* p : {"/dev/shm", "/run", "/tmp"}) out.push_back(p);
  return out;
}

// Our directory, if it is still the one we made (by inode, owned by us, no
// symlink): the parents are sticky or ours, so nobody but root could have
// swapped it, and then we make another rather than trust it.
Fd Cache::open_dir() {
  if (path_.empty()) return Fd();
  Fd d(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!d.valid() || ::fstat(d.get(), &st) != 0 || st.st_ino != dir_ino_ ||
      st.st_uid != ::geteuid()) {
    return Fd();
  }
  return d;
}

Result<void> Cache::make_dir() {
  std::string tried;
  for (const std::string& parent : candidates()) {
    auto why = [&](const std::string& w) { tried += (tried.empty() ? "" : "; ") + parent + ": " + w; };
    struct statvfs vfs {};
    if (::statvfs(parent.c_str(), &vfs) != 0) {
      why(std::strerror(errno));
      continue;
    }
    if ((vfs.f_flag & ST_NOEXEC) != 0) {
      why("mounted noexec");
      continue;
    }
    sweep_dead_program_copies(parent);
    std::string tmpl = parent + "/" + kPrefix + "XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      why(std::strerror(errno));
      continue;
    }
    Fd d(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d.valid()) {
      why(std::strerror(errno));
      ::rmdir(tmpl.c_str());
      continue;
    }
    struct stat st {};
    const Owner o = me();
    const std::string text = owner_text(o);
    Fd f(::openat(d.get(), kOwnerFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!f.valid() || ::fstat(d.get(), &st) != 0 ||
        ::write(f.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      why(std::strerror(errno));
      remove_tree(d, AT_FDCWD, tmpl.c_str());
      continue;
    }
    path_ = tmpl;
    dir_ino_ = st.st_ino;
    owner_ = o;
    static bool registered = false;
    if (!registered) {
      registered = true;
      std::atexit([] { cache().remove_all(); });
    }
    return {};
  }
  return make_error(Errc::kFailed, "no directory to keep program copies in (the sandbox binds a "
                                   "copy so that no host path shows): " + tried);
}

void Cache::evict_for(std::uint64_t bytes) {
  while (!entries_.empty() &&
         (entries_.size() >= kMaxProgramCopies || bytes_ + bytes > kMaxProgramCopyBytes)) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.used < oldest->second.used) oldest = it;
    }
    bytes_ -= oldest->second.copy->bytes;
    // Unlinked now unless a spawn in progress holds it (then when it returns).
    entries_.erase(oldest);
  }
}

Result<std::shared_ptr<Copy>> Cache::make_copy(const Fd& dir, const Fd& program,
                                               const struct stat& st, const std::string& what) {
  // Read through the opened file itself (a reopen of its inode by the
  // magic link, no lookup of `what`). As root this always works; otherwise
  // the supervisor's user must be able to read its program.
  const std::string self = "/proc/self/fd/" + std::to_string(program.get());
  Fd src(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!src.valid()) {
    const int err = errno;
    return make_error(Errc::kInvalidArgument,
                      "program " + what + " cannot be read by the supervisor to copy it for the "
                      "sandbox: " + std::strerror(err) + " (chmod u+r " + what + ")",
                      err);
  }
  const std::string name = "p" + std::to_string(next_name_++);
  const std::string path = path_ + "/" + name;
  Fd dst(::openat(dir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0500));
  if (!dst.valid()) return std::unexpected(sys_error("create", path, errno));
  auto fail = [&](Error e) -> Result<std::shared_ptr<Copy>> {
    dst.reset();
    ::unlinkat(dir.get(), name.c_str(), 0);
    return std::unexpected(std::move(e));
  };
  off_t at = 0;
  while (at < st.st_size) {
    ssize_t n = ::sendfile(dst.get(), src.get(), &at, static_cast<std::size_t>(st.st_size - at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(sys_error("copy", what + " to " + path, errno));
    if (n == 0) break;
  }
  struct stat after {};
  if (::fstat(program.get(), &after) != 0 || key_of(after) != key_of(st) || at != st.st_size) {
    return fail(Error{Errc::kFailed, "program " + what + " changed while it was copied for the "
                                     "sandbox; try again once it is complete", 0});
  }
  // r-x for everyone: the sandbox's uid (65534 as "other", or ours) must
  // execute it, and read it when it is a script. The 0700 directory keeps
  // everyone else out; nothing writes it again.
  if (::fchmod(dst.get(), 0555) != 0) return fail(sys_error("chmod", path, errno));
  struct stat copied {};
  if (::fstat(dst.get(), &copied) != 0) return fail(sys_error("fstat", path, errno));
  // Closed before anyone execs it (an open writer means ETXTBSY).
  dst.reset();
  return std::make_shared<Copy>(path, copied.st_ino, static_cast<std::uint64_t>(st.st_size));
}

Result<ProgramCopy> Cache::get(const Fd& program, const std::string& what) {
  struct stat st {};
  CAPSA_TRY(sys("fstat", what, [&] { return ::fstat(program.get(), &st); }));
  if (st.st_nlink == 0) {
    return make_error(Errc::kFailed, "program " + what + " was deleted since it was opened");
  }
  if (static_cast<std::uint64_t>(st.st_size) > kMaxProgramCopyBytes) {
    return make_error(Errc::kInvalidArgument,
                      "program " + what + " is larger than the sandbox copies programs up to (" +
                          std::to_string(kMaxProgramCopyBytes >> 20) + " MiB)");
  }
  std::lock_guard lock(mu_);
  if (closed_) return make_error(Errc::kClosed, "program copies: the process is exiting");
  Fd dir = open_dir();
  if (!dir.valid()) {
    // First use, or our directory is gone (removed by hand, a root's
    // cleanup): start afresh.
    forget_all();
    CAPSA_TRY(make_dir());
    dir = open_dir();
    if (!dir.valid()) return std::unexpected(sys_error("open", path_, errno));
  }
  const Key key = key_of(st);
  auto it = entries_.find(key);
  Fd fd;
  if (it != entries_.end()) {
    // By name, in our directory; it must be the file we wrote.
    fd.reset(::openat(dir.get(), it->second.copy->path.substr(path_.size() + 1).c_str(),
                      O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct stat seen {};
    if (!fd.valid() || ::fstat(fd.get(), &seen) != 0 || seen.st_ino != it->second.copy->ino ||
        !S_ISREG(seen.st_mode)) {
      // Removed or replaced (only root could): forget it and copy again.
      fd.reset();
      bytes_ -= it->second.copy->bytes;
      entries_.erase(it);
      it = entries_.end();
    }
  }
  if (it == entries_.end()) {
    evict_for(static_cast<std::uint64_t>(st.st_size));
    CAPSA_ASSIGN_OR_RETURN(auto made, make_copy(dir, program, st, what));
    fd.reset(::openat(dir.get(), made->path.substr(path_.size() + 1).c_str(),
                      O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return std::unexpected(sys_error("open", made->path, errno));
    bytes_ += made->bytes;
    it = entries_.emplace(key, Entry{std::move(made), 0}).first;
  }
  it->second.used = ++tick_;
  return ProgramCopy{std::move(fd), std::shared_ptr<const void>(it->second.copy)};
}

}  // namespace

Result<ProgramCopy> program_copy(const Fd& program, const std::string& what) {
  return cache().get(program, what);
}

std::string program_copies_dir() { return cache().dir(); }

void sweep_dead_program_copies(const std::string& parent) {
  Fd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pfd.valid()) return;
  Fd listing(::openat(pfd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* d = listing.valid() ? ::fdopendir(listing.get()) : nullptr;
  if (d == nullptr) return;
  (void)listing.release();  // the DIR owns it now
  const uid_t uid = ::geteuid();
  const unsigned long long pidns = own_pidns();
  const std::time_t now = std::time(nullptr);
  while (const dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, kPrefix, std::strlen(kPrefix)) != 0) continue;
    // Never through a symlink; only our own user's (in a shared, sticky
    // /dev/shm anyone may make such a name).
    Fd dir(::openat(pfd.get(), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!dir.valid() || ::fstat(dir.get(), &st) != 0 || st.st_uid != uid) continue;
    Owner o;
    Fd f(::openat(dir.get(), kOwnerFile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    char buf[128] = {};
    const bool claimed = f.valid() && ::read(f.get(), buf, sizeof buf - 1) > 0 &&
                         std::sscanf(buf, "%lld %llu %llu", &o.pid, &o.start, &o.pidns) == 3;
    if (!claimed && now - st.st_ctime < kUnclaimedAge) continue;
    // A pid names a process only in its own namespace: another's cache we
    // cannot judge, and leave.
    if (claimed && (o.pidns != pidns || (o.pid > 0 && start_time(o.pid) == o.start))) continue;
    remove_tree(dir, pfd.get(), e->d_name);
  }
  ::closedir(d);
}

}  // namespace capsa::sandbox::detail
