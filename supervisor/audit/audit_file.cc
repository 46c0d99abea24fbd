#include "supervisor/audit/audit_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "capabilities/sys.h"

namespace capsa::supervisor {
namespace {

constexpr int kCreateFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY;

}  // namespace

Result<AuditFile> AuditFile::open(const std::string& path, std::uint64_t max_bytes, std::uint32_t keep) {
  if (max_bytes != 0 && max_bytes < kMinAuditMaxBytes) {
    return make_error(Errc::kInvalidArgument, "audit log: a size cap must be at least " +
                                                  std::to_string(kMinAuditMaxBytes) + " bytes (0: none)");
  }
  if (max_bytes != 0 && (keep < 1 || keep > kMaxAuditKeep)) {
    return make_error(Errc::kInvalidArgument,
                      "audit log: rotated files kept must be 1.." + std::to_string(kMaxAuditKeep));
  }
  AuditFile f;
  f.path_ = path;
  f.max_bytes_ = max_bytes;
  f.keep_ = keep;
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  f.base_ = slash == std::string::npos ? path : path.substr(slash + 1);
  CAPSA_ASSIGN_OR_RETURN(f.fd_, sys_fd("open", path, [&] { return ::open(path.c_str(), kCreateFlags, 0600); }));
  if (max_bytes != 0) {
    CAPSA_ASSIGN_OR_RETURN(f.dir_, sys_fd("open", dir, [&] {
                             return ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
                           }));
  }
  struct stat st{};
  CAPSA_TRY(sys("fstat", path, [&] { return ::fstat(f.fd_.get(), &st); }));
  f.size_ = static_cast<std::uint64_t>(st.st_size);
  return f;
}

Result<void> AuditFile::rotate() {
  auto renamed = [&]() -> Result<void> {
    // Oldest first: PATH.(keep-1) replaces PATH.keep, ..., PATH becomes
    // PATH.1. A missing one is skipped (fewer rotations so far).
    for (std::uint32_t n = keep_; n >= 1; --n) {
      const std::string from = n == 1 ? base_ : rotated_name(n - 1);
      const std::string to = rotated_name(n);
      if (::renameat(dir_.get(), from.c_str(), dir_.get(), to.c_str()) != 0 && errno != ENOENT) {
        return make_error(Errc::kFailed, "rename " + from + " to " + to + ": " + std::strerror(errno));
      }
    }
    return {};
  }();
  Result<Fd> fresh = renamed ? sys_fd("openat", path_, [&] {
    return ::openat(dir_.get(), base_.c_str(), kCreateFlags | O_EXCL | O_NOFOLLOW, 0600);
  })
                             : Result<Fd>(std::unexpected(renamed.error()));
  if (!fresh) {
    slack_ += max_bytes_;
    return std::unexpected(fresh.error());
  }
  fd_ = std::move(*fresh);
  size_ = 0;
  slack_ = 0;
  return {};
}

Result<void> AuditFile::append(std::string_view line, bool& torn) {
  std::size_t done = 0;
  torn = false;
  while (done < line.size()) {
    auto n = sys("write", "audit log", [&] { return ::write(fd_.get(), line.data() + done, line.size() - done); });
    if (!n || *n == 0) {
      torn = done > 0;
      size_ += done;
      if (!n) return std::unexpected(std::move(n).error());
      return make_error(Errc::kFailed, "write(audit log) wrote nothing");
    }
    // A short write happens only when the file cannot grow (disk full,
    // RLIMIT_FSIZE); finishing the line keeps the file parseable if the
    // condition clears, and the next error is reported either way.
    done += static_cast<std::size_t>(*n);
  }
  size_ += done;
  return {};
}

Result<void> AuditFile::sync() {
  CAPSA_TRY(sys("fdatasync", "audit log", [&] { return ::fdatasync(fd_.get()); }));
  return {};
}

}  // namespace capsa::supervisor
