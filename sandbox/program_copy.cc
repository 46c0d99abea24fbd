#include "sandbox/program_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "capabilities/sys.h"

namespace capsa::sandbox::detail {
namespace {

constexpr const char* kPrefix = "capsa-programs-";

// What identifies one version of a program file. Another inode (replaced on
// disk) or new contents in place (mtime/ctime move) is another key.
using Key = std::tuple<dev_t, ino_t, off_t, std::int64_t, std::int64_t, std::int64_t,
                       std::int64_t>;

Key key_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
          st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}

class Cache;

// One copy in the directory. Its name goes when the last holder lets go:
// the cache's map, and each spawn using it (ProgramCopy::hold).
struct Copy {
  Copy(std::shared_ptr<const Fd> d, std::string n, ino_t i, std::uint64_t b)
      : dir(std::move(d)), name(std::move(n)), ino(i), bytes(b) {}
  // No lock: the directory fd is shared, and unlinking in a directory
  // already removed (at exit) just fails.
  ~Copy() { ::unlinkat(dir->get(), name.c_str(), 0); }
  std::shared_ptr<const Fd> dir;
  std::string name;  // "p<N>"
  ino_t ino;         // of the copy: what a reopen by name must find
  std::uint64_t bytes;
};

class Cache {
 public:
  Result<ProgramCopy> get(const Fd& program, const std::string& what);
  std::string dir() {
    std::lock_guard lock(mu_);
    return path_;
  }
  // atexit: the directory and every file in it, in the process that made it
  // (not in a fork of it, which shares the object and the handler).
  void remove_all() {
    std::lock_guard lock(mu_);
    if (dir_ == nullptr || ::getpid() != owner_) return;
    remove_tree(*dir_, AT_FDCWD, path_);
    entries_.clear();
    dir_.reset();
    closed_ = true;
  }
  // Empties `dir` (files only: nothing else is ever made there) and removes
  // it: `name` relative to `parent`.
  static void remove_tree(const Fd& dir, int parent, const std::string& name) {
    Fd copy(::openat(dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (copy.valid()) {
      if (DIR* d = ::fdopendir(copy.get()); d != nullptr) {
        (void)copy.release();  // the DIR owns it now
        while (const dirent* e = ::readdir(d)) {
          if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
            ::unlinkat(::dirfd(d), e->d_name, 0);
          }
        }
        ::closedir(d);
      }
    }
    ::unlinkat(parent, name.c_str(), AT_REMOVEDIR);
  }

 private:
  struct Entry {
    std::shared_ptr<Copy> copy;
    std::uint64_t used = 0;  // for least-recently-used eviction
  };
  Result<void> open_dir();  // with mu_ held
  Result<std::shared_ptr<Copy>> make_copy(const Fd& program, const struct stat& st,
                                          const std::string& what);
  void evict_for(std::uint64_t bytes);

  std::mutex mu_;
  // Ours, 0700, flock(LOCK_EX) held while it is open: the cache's one
  // long-lived fd (shared with the copies, which unlink in it).
  std::shared_ptr<const Fd> dir_;
  std::string path_;   // for messages, the exit and tests
  pid_t owner_ = 0;
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

Result<void> Cache::open_dir() {
  if (closed_) return make_error(Errc::kClosed, "program copies: the process is exiting");
  if (dir_ != nullptr) return {};
  std::string tried;
  for (const std::string& parent : candidates()) {
    auto why = [&](const std::string& w) { tried += (tried.empty() ? "" : "; ") + parent + ": " + w; };
    Fd pfd(::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!pfd.valid()) {
      why(std::strerror(errno));
      continue;
    }
    struct statvfs vfs {};
    if (::fstatvfs(pfd.get(), &vfs) != 0 || (vfs.f_flag & ST_NOEXEC) != 0) {
      why("mounted noexec");
      continue;
    }
    sweep_dead_program_copies(parent);
    // mkdtemp, then lock; a sweeper could take the lock of a directory made
    // a moment ago and not yet locked, so after locking we check that the
    // name is still ours, and make another if not.
    for (int attempt = 0; attempt < 4 && dir_ == nullptr; ++attempt) {
      std::string tmpl = parent + "/" + kPrefix + "XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) break;
      Fd d(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      struct stat by_fd {}, by_name {};
      const std::string leaf = tmpl.substr(parent.size() + 1);
      if (d.valid() && ::flock(d.get(), LOCK_EX | LOCK_NB) == 0 && ::fstat(d.get(), &by_fd) == 0 &&
          ::fstatat(pfd.get(), leaf.c_str(), &by_name, AT_SYMLINK_NOFOLLOW) == 0 &&
          by_fd.st_ino == by_name.st_ino && by_fd.st_dev == by_name.st_dev) {
        dir_ = std::make_shared<const Fd>(std::move(d));
        path_ = tmpl;
      }
    }
    if (dir_ != nullptr) break;
    why(std::strerror(errno));
  }
  if (dir_ == nullptr) {
    return make_error(Errc::kFailed, "no directory to keep program copies in (the sandbox binds a "
                                     "copy so that no host path shows): " + tried);
  }
  owner_ = ::getpid();
  static bool registered = false;
  if (!registered) {
    registered = true;
    std::atexit([] { cache().remove_all(); });
  }
  return {};
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

Result<std::shared_ptr<Copy>> Cache::make_copy(const Fd& program, const struct stat& st,
                                               const std::string& what) {
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
  Fd dst(::openat(dir_->get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0500));
  if (!dst.valid()) return std::unexpected(sys_error("create", path_ + "/" + name, errno));
  auto fail = [&](Error e) -> Result<std::shared_ptr<Copy>> {
    dst.reset();
    ::unlinkat(dir_->get(), name.c_str(), 0);
    return std::unexpected(std::move(e));
  };
  off_t at = 0;
  while (at < st.st_size) {
    ssize_t n = ::sendfile(dst.get(), src.get(), &at, static_cast<std::size_t>(st.st_size - at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(sys_error("copy", what + " to " + path_ + "/" + name, errno));
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
  if (::fchmod(dst.get(), 0555) != 0) return fail(sys_error("chmod", path_ + "/" + name, errno));
  struct stat copied {};
  if (::fstat(dst.get(), &copied) != 0) return fail(sys_error("fstat", path_ + "/" + name, errno));
  // Closed before anyone execs it (an open writer means ETXTBSY).
  dst.reset();
  return std::make_shared<Copy>(dir_, name, copied.st_ino, static_cast<std::uint64_t>(st.st_size));
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
  std::unique_lock lock(mu_);
  CAPSA_TRY(open_dir());
  const Key key = key_of(st);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    evict_for(static_cast<std::uint64_t>(st.st_size));
    CAPSA_ASSIGN_OR_RETURN(auto made, make_copy(program, st, what));
    bytes_ += made->bytes;
    it = entries_.emplace(key, Entry{std::move(made), 0}).first;
  }
  it->second.used = ++tick_;
  std::shared_ptr<Copy> copy = it->second.copy;
  // By name, in our 0700 directory; it must be the file we wrote.
  Fd fd(::openat(dir_->get(), copy->name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat seen {};
  if (!fd.valid() || ::fstat(fd.get(), &seen) != 0 || seen.st_ino != copy->ino ||
      !S_ISREG(seen.st_mode)) {
    const int err = fd.valid() ? 0 : errno;
    // Someone with root's powers removed or replaced it: forget it, and let
    // the next spawn make a fresh one.
    bytes_ -= copy->bytes;
    entries_.erase(it);
    return make_error(Errc::kFailed, "the copy of program " + what + " in " + path_ +
                                         " is gone or not the one made; it will be made again",
                      err);
  }
  return ProgramCopy{std::move(fd), std::shared_ptr<const void>(std::move(copy))};
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
  const uid_t me = ::geteuid();
  while (const dirent* e = ::readdir(d)) {
    if (std::strncmp(e->d_name, kPrefix, std::strlen(kPrefix)) != 0) continue;
    // Never through a symlink; only our own user's (in a shared, sticky
    // /dev/shm anyone may make such a name).
    Fd dir(::openat(pfd.get(), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!dir.valid() || ::fstat(dir.get(), &st) != 0 || st.st_uid != me) continue;
    // A live cache holds this lock for as long as its process lives.
    if (::flock(dir.get(), LOCK_EX | LOCK_NB) != 0) continue;
    Cache::remove_tree(dir, pfd.get(), e->d_name);
  }
  ::closedir(d);
}

}  // namespace capsa::sandbox::detail
