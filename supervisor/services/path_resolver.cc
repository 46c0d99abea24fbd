#include "supervisor/services/path_resolver.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "capabilities/sys.h"

namespace capsa::supervisor::services {
namespace {

constexpr std::uint64_t kResolveFlags = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

Error map_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR: return Error{Errc::kNotFound, "no such file or directory in the grant", err};
    case EXDEV: return Error{Errc::kDenied, "path leaves the granted directory", err};
    case ELOOP: return Error{Errc::kDenied, "path goes through a symlink (symlinks are not followed)", err};
    case EACCES:
    case EPERM: return Error{Errc::kDenied, "permission denied by the host filesystem", err};
    case ENAMETOOLONG: return Error{Errc::kDenied, "a path component is too long", err};
    case ENOSYS: return Error{Errc::kFailed, "openat2 is not available (Linux 5.6 or later is needed)", err};
    default: return sys_error("openat2", "directory grant", err);
  }
}

}  // namespace

Result<void> check_relative_path(std::string_view path) {
  if (path.empty()) return make_error(Errc::kDenied, "empty path (use \".\" for the directory itself)");
  if (path.size() > kMaxPathBytes) {
    return make_error(Errc::kDenied, "path longer than " + std::to_string(kMaxPathBytes) + " bytes");
  }
  if (path.find('\0') != std::string_view::npos) return make_error(Errc::kDenied, "path contains a NUL byte");
  if (path.front() == '/') return make_error(Errc::kDenied, "absolute path (paths are relative to the grant)");
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") {
      return make_error(Errc::kDenied, "path contains a \"..\" component");
    }
    start = end + 1;
  }
  return {};
}

Result<Fd> openat2_beneath(const Fd& root, std::string_view path, std::uint64_t flags) {
  if (path.find('\0') != std::string_view::npos) return make_error(Errc::kDenied, "path contains a NUL byte");
  std::string cpath(path);  // NUL-terminated copy; no NUL inside (checked)
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = kResolveFlags;
  for (int attempt = 0;; ++attempt) {
    // No glibc wrapper in Debian 12's glibc 2.36: raw syscall.
    long rc = ::syscall(SYS_openat2, root.get(), cpath.c_str(), &how, sizeof(how));
    if (rc >= 0) return Fd(static_cast<int>(rc));
    // EAGAIN: BENEATH resolution saw a concurrent rename or mount and
    // refuses to guess; trying again is what the kernel asks for, a bounded
    // number of times so that someone renaming in a loop cannot spin us.
    if (errno == EINTR || (errno == EAGAIN && attempt < 16)) continue;
    if (errno == EAGAIN) return make_error(Errc::kFailed, "path kept changing during resolution", EAGAIN);
    return std::unexpected(map_errno(errno));
  }
}

Result<Fd> resolve(const Fd& root, std::string_view path) {
  CAPSA_TRY(check_relative_path(path));
  return openat2_beneath(root, path, O_PATH);
}

Result<Fd> resolve_no_follow(const Fd& root, std::string_view path) {
  CAPSA_TRY(check_relative_path(path));
  return openat2_beneath(root, path, O_PATH | O_NOFOLLOW);
}

}  // namespace capsa::supervisor::services
