#include "capabilities/handle.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "capabilities/sys.h"

namespace capsa {
namespace {

constexpr int kBlobSeals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;

// What the fd is, in words, for error messages.
std::string describe(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "not an open fd";
  switch (st.st_mode & S_IFMT) {
    case S_IFIFO: return "a pipe";
    case S_IFDIR: return "a directory";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFLNK: return "a symlink";
    case S_IFREG: return "a regular file";
    case S_IFSOCK: {
      int domain = 0, type = 0;
      socklen_t len = sizeof(int);
      ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
      len = sizeof(int);
      ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
      if (domain == AF_UNIX && type == SOCK_STREAM) return "an AF_UNIX SOCK_STREAM socket";
      if (domain == AF_UNIX && type == SOCK_DGRAM) return "an AF_UNIX SOCK_DGRAM socket";
      if (domain != AF_UNIX) return "a non-AF_UNIX socket";
      return "a socket";
    }
    default: {
      // Anonymous inodes (eventfd, epoll, timerfd, signalfd, pidfd) have
      // mode 0 and a readlink of "anon_inode:[...]".
      char target[64];
      std::string path = "/proc/self/fd/" + std::to_string(fd);
      ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
      if (n > 0) return "an " + std::string(target, static_cast<std::size_t>(n));
      return "an unknown kernel object";
    }
  }
}

// memfds show as "/memfd:NAME (deleted)" in /proc/self/fd.
bool is_memfd(int fd) {
  char target[16];
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(path.c_str(), target, sizeof(target));
  return n >= 7 && std::string_view(target, 7) == "/memfd:";
}

Result<void> declared_but(HandleKind kind, int fd, std::string_view why = {}) {
  std::string msg = "declared ";
  msg += handle_kind_name(kind);
  msg += " but the fd is ";
  msg += why.empty() ? describe(fd) : std::string(why);
  return make_error(Errc::kBadMessage, std::move(msg));
}

}  // namespace

std::string_view handle_kind_name(HandleKind kind) noexcept {
  switch (kind) {
    case HandleKind::kPort: return "port";
    case HandleKind::kFile: return "file";
    case HandleKind::kBlob: return "blob";
  }
  return "unknown handle kind";
}

Result<void> check_handle_kind(const Fd& fd, HandleKind kind) {
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    return make_error(Errc::kBadMessage, "handle is not an open fd");
  }
  switch (kind) {
    case HandleKind::kPort: {
      if (!S_ISSOCK(st.st_mode)) return declared_but(kind, fd.get());
      int domain = 0, type = 0;
      socklen_t len = sizeof(int);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return declared_but(kind, fd.get());
      len = sizeof(int);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) return declared_but(kind, fd.get());
      if (domain != AF_UNIX || type != SOCK_SEQPACKET) return declared_but(kind, fd.get());
      // A listening socket is readable whenever a connection is pending and
      // never carries messages: an event loop holding one would spin.
      int listening = 0;
      len = sizeof(int);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening != 0) {
        return declared_but(kind, fd.get(), "a listening socket");
      }
      return {};
    }
    case HandleKind::kFile: {
      if (!S_ISREG(st.st_mode)) return declared_but(kind, fd.get());
      int fl = ::fcntl(fd.get(), F_GETFL);
      if (fl < 0 || (fl & O_PATH) != 0) return declared_but(kind, fd.get(), "an O_PATH fd (not readable)");
      if ((fl & O_ACCMODE) != O_RDONLY) return declared_but(kind, fd.get(), "open for writing");
      // A memfd is a regular file too; as a "file" it must be sealed like a
      // blob, or its creator could change it under us. F_GET_SEALS answers
      // for every tmpfs file (/dev/shm, a tmpfs /tmp), so only an fd whose
      // link names a memfd is held to that rule.
      int seals = ::fcntl(fd.get(), F_GET_SEALS);
      if (seals >= 0 && (seals & kBlobSeals) != kBlobSeals && is_memfd(fd.get())) {
        return declared_but(kind, fd.get(), "an unsealed memfd");
      }
      return {};
    }
    case HandleKind::kBlob: {
      if (!S_ISREG(st.st_mode)) return declared_but(kind, fd.get());
      int seals = ::fcntl(fd.get(), F_GET_SEALS);
      if (seals < 0) return declared_but(kind, fd.get(), "not a memfd");
      if ((seals & kBlobSeals) != kBlobSeals) {
        return declared_but(kind, fd.get(), "a memfd without the write, grow and shrink seals");
      }
      return {};
    }
  }
  return make_error(Errc::kBadMessage, "unknown handle kind " + std::to_string(static_cast<int>(kind)));
}

Result<Fd> make_blob(std::span<const std::byte> data, std::string_view name) {
  std::string label = "capsa-blob:" + std::string(name);
  auto fd = sys_fd("memfd_create", label,
                   [&] { return ::memfd_create(label.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING); });
  if (!fd) return fd;
  std::size_t done = 0;
  while (done < data.size()) {
    CAPSA_ASSIGN_OR_RETURN(
        const auto n,
        sys("write", label, [&] { return ::write(fd->get(), data.data() + done, data.size() - done); }));
    done += static_cast<std::size_t>(n);
  }
  CAPSA_TRY(sys("fcntl", "F_ADD_SEALS " + label,
                [&] { return ::fcntl(fd->get(), F_ADD_SEALS, kBlobSeals | F_SEAL_SEAL); }));
  return fd;
}

Result<BlobView> BlobView::map(const Fd& blob, std::size_t max_bytes) {
  CAPSA_TRY(check_handle_kind(blob, HandleKind::kBlob));
  struct stat st {};
  CAPSA_TRY(sys("fstat", "blob", [&] { return ::fstat(blob.get(), &st); }));
  auto size = static_cast<std::size_t>(st.st_size);
  // A sparse memfd of many GiB costs its sender nothing; reading it would
  // cost us. Refused before mapping.
  if (size > max_bytes) {
    return make_error(Errc::kBadMessage, "blob of " + std::to_string(size) + " bytes exceeds the limit of " +
                                             std::to_string(max_bytes));
  }
  if (size == 0) return BlobView(nullptr, 0);
  // The seals forbid shrinking, so the mapping can never SIGBUS under us.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, blob.get(), 0);
  if (p == MAP_FAILED) return std::unexpected(sys_error("mmap", "blob", errno));
  return BlobView(static_cast<const std::byte*>(p), size);
}

BlobView::BlobView(BlobView&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

BlobView& BlobView::operator=(BlobView&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

BlobView::~BlobView() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

Result<Fd> open_file_handle(std::string_view path) {
  std::string p(path);
  auto fd = sys_fd("open", p, [&] { return ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY); });
  if (!fd) return fd;
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(Errc::kInvalidArgument, p + " is not a regular file");
  }
  return fd;
}

}  // namespace capsa
