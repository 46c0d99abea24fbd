#include "supervisor/services/directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "capabilities/sys.h"
#include "supervisor/services/path_resolver.h"

namespace capsa::supervisor::services {
namespace {

EntryType type_of(mode_t mode) {
  if (S_ISREG(mode)) return EntryType::kFile;
  if (S_ISDIR(mode)) return EntryType::kDirectory;
  if (S_ISLNK(mode)) return EntryType::kSymlink;
  return EntryType::kOther;
}

std::string_view mode_name(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a fifo";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symlink";
  return "not a regular file";
}

EntryInfo info_of(const struct stat& st) {
  EntryInfo info;
  info.type = type_of(st.st_mode);
  info.size = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  info.mtime_sec = st.st_mtim.tv_sec;
  info.mtime_nsec = st.st_mtim.tv_nsec;
  return info;
}

Result<struct stat> fstat_fd(const Fd& fd) {
  struct stat st {};
  CAPSA_TRY(sys("fstat", "directory grant", [&] { return ::fstat(fd.get(), &st); }));
  return st;
}

// Resolves `path`, checks its type with `want` (S_IFREG or S_IFDIR), and
// opens it for real with `flags`, refusing a swap between the two steps.
Result<Fd> open_checked(const Fd& root, std::string_view path, mode_t want, int flags) {
  CAPSA_ASSIGN_OR_RETURN(const Fd probe, resolve(root, path));
  CAPSA_ASSIGN_OR_RETURN(const struct stat before, fstat_fd(probe));
  if ((before.st_mode & S_IFMT) != want) {
    std::string what = want == S_IFDIR ? "not a directory: it is " : "not a regular file: it is ";
    if (S_ISREG(before.st_mode)) what = "not a directory: it is a regular file";
    else what += mode_name(before.st_mode);
    return make_error(Errc::kDenied, what);
  }
  // O_NONBLOCK: if the path was swapped for a fifo since the probe, this
  // open returns at once instead of waiting for a writer.
  CAPSA_ASSIGN_OR_RETURN(
      Fd fd, openat2_beneath(root, path, static_cast<std::uint64_t>(flags | O_NONBLOCK | O_NOCTTY)));
  CAPSA_ASSIGN_OR_RETURN(const struct stat after, fstat_fd(fd));
  if (after.st_dev != before.st_dev || after.st_ino != before.st_ino ||
      (after.st_mode & S_IFMT) != want) {
    return make_error(Errc::kDenied, "the file changed while it was being opened");
  }
  // Back to blocking mode: the fd goes to a worker as a plain file handle.
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) {
    return std::unexpected(sys_error("fcntl(F_SETFL)", "directory grant", errno));
  }
  return fd;
}

}  // namespace

std::int64_t EntryInfo::modified_ns() const noexcept {
  constexpr std::int64_t kNs = 1'000'000'000;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  if (mtime_sec > kMax / kNs) return kMax;
  if (mtime_sec < kMin / kNs) return kMin;
  std::int64_t base = mtime_sec * kNs;
  // mtime_nsec is 0..999999999 from the kernel; adding it can only overflow
  // at the top of the range.
  if (mtime_nsec > 0 && base > kMax - mtime_nsec) return kMax;
  return base + mtime_nsec;
}

Result<EntryInfo> stat_fd(const Fd& fd) {
  CAPSA_ASSIGN_OR_RETURN(const struct stat st, fstat_fd(fd));
  return info_of(st);
}

std::string_view entry_type_name(EntryType type) noexcept {
  switch (type) {
    case EntryType::kFile: return "file";
    case EntryType::kDirectory: return "directory";
    case EntryType::kSymlink: return "symlink";
    case EntryType::kOther: return "other";
  }
  return "unknown";
}

Result<DirectoryScope> DirectoryScope::open(const std::string& host_path) {
  auto fd = sys_fd("open", host_path, [&] {
    return ::open(host_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  });
  if (!fd) {
    Error e = std::move(fd.error());
    if (e.sys_errno == ENOENT || e.sys_errno == ENOTDIR) e.code = Errc::kNotFound;
    if (e.sys_errno == EACCES || e.sys_errno == EPERM) e.code = Errc::kDenied;
    return std::unexpected(std::move(e));
  }
  return DirectoryScope(std::move(*fd));
}

Result<Fd> DirectoryScope::open_file(std::string_view path, Access access) const {
  if (access != Access::kRead) return make_error(Errc::kDenied, "directory grants are read-only");
  return open_checked(root_, path, S_IFREG, O_RDONLY);
}

Result<EntryInfo> DirectoryScope::stat(std::string_view path) const {
  CAPSA_ASSIGN_OR_RETURN(const Fd probe, resolve_no_follow(root_, path));
  CAPSA_ASSIGN_OR_RETURN(const struct stat st, fstat_fd(probe));
  return info_of(st);
}

Result<Listing> DirectoryScope::list(std::string_view path, std::size_t max_entries) const {
  CAPSA_ASSIGN_OR_RETURN(const Fd dir, open_checked(root_, path, S_IFDIR, O_RDONLY | O_DIRECTORY));
  Listing out;
  // The `max_entries` smallest names seen so far, as a max-heap: a name
  // smaller than the largest kept replaces it. The filesystem's order is
  // arbitrary (hash order on ext4), so keeping the first names read would
  // make a truncated listing differ from one run to the next; this keeps
  // the sorted prefix in O(max_entries) memory.
  std::vector<std::string> kept;
  kept.reserve(std::min<std::size_t>(max_entries, 64));
  alignas(8) char buf[16 * 1024];
  for (;;) {
    CAPSA_ASSIGN_OR_RETURN(const ssize_t n, sys("getdents64", "directory grant", [&] {
                             return ::getdents64(dir.get(), buf, sizeof(buf));
                           }));
    if (n == 0) break;
    std::size_t len = static_cast<std::size_t>(n);
    // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
    constexpr std::size_t kNameOffset = 19;
    for (std::size_t off = 0; off + kNameOffset < len;) {
      std::uint16_t reclen = 0;
      std::memcpy(&reclen, buf + off + 16, sizeof(reclen));
      if (reclen <= kNameOffset || off + reclen > len) {
        return make_error(Errc::kFailed, "getdents64 returned a malformed record");
      }
      const char* name = buf + off + kNameOffset;
      std::size_t name_len = ::strnlen(name, reclen - kNameOffset);
      std::string_view n_sv(name, name_len);
      off += reclen;
      if (n_sv == "." || n_sv == "..") continue;
      if (kept.size() < max_entries) {
        kept.emplace_back(n_sv);
        std::push_heap(kept.begin(), kept.end());
        continue;
      }
      out.truncated = true;
      if (max_entries == 0 || !(n_sv < std::string_view(kept.front()))) continue;
      std::pop_heap(kept.begin(), kept.end());
      kept.back().assign(n_sv);
      std::push_heap(kept.begin(), kept.end());
    }
  }
  std::sort_heap(kept.begin(), kept.end());
  out.entries.reserve(kept.size());
  for (auto& name : kept) {
    struct stat st {};
    // The name is one component read from this directory: fstatat with
    // AT_SYMLINK_NOFOLLOW cannot leave it. An entry removed meanwhile is
    // skipped.
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    out.entries.push_back(DirEntry{std::move(name), info_of(st)});
  }
  return out;
}

}  // namespace capsa::supervisor::services
