#include "supervisor/control/socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "capabilities/sys.h"

namespace capsa::supervisor {
namespace {

// The directory a control socket goes in: nobody but us (or root) may be
// able to replace entries in it. Sticky directories (/tmp) are fine: there
// only an entry's owner can remove or rename it.
Result<Fd> open_socket_dir(const std::string& dir) {
  auto fd = sys_fd("open", dir, [&] { return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (!fd) {
    Error e = fd.error();
    e.code = Errc::kInvalidArgument;
    e.message = "the control socket's directory cannot be opened: " + e.message;
    return std::unexpected(std::move(e));
  }
  struct stat st{};
  if (auto rc = sys("fstat", dir, [&] { return ::fstat(fd->get(), &st); }); !rc) {
    return std::unexpected(rc.error());
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return make_error(Errc::kDenied, dir + " belongs to uid " + std::to_string(st.st_uid) +
                                         ": its owner could replace the control socket");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    return make_error(Errc::kDenied, dir + " is writable by group or others and not sticky: "
                                           "they could replace the control socket");
  }
  return std::move(*fd);
}

// Decides what to do with an existing entry at dir/name: nothing there (ok),
// a stale socket of ours (removed), anything else (an error).
Result<void> clear_stale(const Fd& dir, const std::string& name, const std::string& path,
                         int type) {
  struct stat st{};
  if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return std::unexpected(sys_error("fstatat", path, errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return make_error(Errc::kDenied, path + " exists and is not a socket: not replacing it");
  }
  CAPSA_ASSIGN_OR_RETURN(auto addr, unix_address(path));
  auto probe = sys_fd("socket", path, [type] {
    return ::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  });
  if (!probe) return std::unexpected(probe.error());
  if (::connect(probe->get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ||
      errno == EAGAIN || errno == EINPROGRESS) {
    // EAGAIN: a listener whose backlog is full is still a listener.
    return make_error(Errc::kFailed, "another supervisor is listening on " + path);
  }
  if (errno != ECONNREFUSED) {
    // EPROTOTYPE (a stream socket), EACCES (not ours): live or foreign.
    return std::unexpected(sys_error("connect (probing an existing socket)", path, errno));
  }
  if (st.st_uid != ::geteuid()) {
    return make_error(Errc::kDenied, path + " is a stale socket of uid " + std::to_string(st.st_uid) +
                                         ": not removing another user's file");
  }
  // Limit: another supervisor could replace the stale socket between the
  // probe and this unlink (both starting at once on one path); then its
  // socket is removed and it keeps running without a reachable control
  // socket. A path per supervisor (the default) cannot collide this way.
  if (::unlinkat(dir.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
    return std::unexpected(sys_error("unlink (stale socket)", path, errno));
  }
  return {};
}

// A 0700 directory next to the socket's final place, removed with what it
// holds when this goes out of scope.
class PrivateTempDir {
 public:
  static Result<PrivateTempDir> create(const std::string& parent) {
    std::string tmpl = (parent == "/" ? "" : parent) + "/.cXXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return std::unexpected(sys_error("mkdtemp", tmpl, errno));
    return PrivateTempDir(std::move(tmpl));
  }
  PrivateTempDir(PrivateTempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  PrivateTempDir& operator=(PrivateTempDir&&) = delete;
  ~PrivateTempDir() {
    if (path_.empty()) return;
    ::unlink((path_ + "/s").c_str());
    ::rmdir(path_.c_str());
  }
  const std::string& path() const noexcept { return path_; }

 private:
  explicit PrivateTempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

}  // namespace

std::pair<std::string, std::string> split_path(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return make_error(Errc::kInvalidArgument,
                      "control socket path is empty or longer than " +
                          std::to_string(sizeof addr.sun_path - 1) + " bytes: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Result<void> ensure_private_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::unexpected(sys_error("mkdir", dir, errno));
  }
  // O_NOFOLLOW: a symlink planted at the name (in /tmp, by anyone) is
  // refused, not followed to wherever it points.
  auto fd = sys_fd("open", dir, [&] {
    return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  });
  if (!fd) {
    Error e = fd.error();
    e.code = Errc::kDenied;
    e.message = dir + " is not a directory we can use (a symlink?): " + e.message;
    return std::unexpected(std::move(e));
  }
  struct stat st{};
  if (auto rc = sys("fstat", dir, [&] { return ::fstat(fd->get(), &st); }); !rc) {
    return std::unexpected(rc.error());
  }
  if (st.st_uid != ::geteuid()) {
    return make_error(Errc::kDenied, dir + " belongs to uid " + std::to_string(st.st_uid) +
                                         ", not to us (uid " + std::to_string(::geteuid()) +
                                         "): refusing to put a control socket there");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return make_error(Errc::kDenied, dir + " is writable by group or others: refusing to put a "
                                           "control socket there");
  }
  return {};
}

Result<Listener> listen_at(const std::string& path, int backlog, int type) {
  CAPSA_TRY(unix_address(path));
  auto [dir, name] = split_path(path);
  if (name.empty() || name == "." || name == "..") {
    return make_error(Errc::kInvalidArgument, "not a socket file name: " + path);
  }
  CAPSA_ASSIGN_OR_RETURN(auto dirfd, open_socket_dir(dir));
  CAPSA_TRY(clear_stale(dirfd, name, path, type));

  CAPSA_ASSIGN_OR_RETURN(auto tmp, PrivateTempDir::create(dir));
  std::string tmp_sock = tmp.path() + "/s";
  auto addr = unix_address(tmp_sock);
  if (!addr) {
    return make_error(Errc::kInvalidArgument,
                      "the control socket's directory path is too long to bind in: " + dir);
  }
  auto fd = sys_fd("socket", path, [type] {
    return ::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  });
  if (!fd) return std::unexpected(fd.error());
  if (auto rc = sys("bind", tmp_sock, [&] {
        return ::bind(fd->get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
      });
      !rc) {
    return std::unexpected(rc.error());
  }
  // Inside our 0700 directory nobody else can reach or swap the file, so a
  // path-based chmod is safe here.
  if (auto rc = sys("chmod", tmp_sock, [&] { return ::chmod(tmp_sock.c_str(), 0600); }); !rc) {
    return std::unexpected(rc.error());
  }
  struct stat st{};
  if (auto rc = sys("stat", tmp_sock, [&] { return ::lstat(tmp_sock.c_str(), &st); }); !rc) {
    return std::unexpected(rc.error());
  }
  if (auto rc = sys("listen", path, [&] { return ::listen(fd->get(), backlog); });
      !rc) {
    return std::unexpected(rc.error());
  }
  // link() never replaces: EEXIST if anything appeared at `path` meanwhile.
  if (::linkat(AT_FDCWD, tmp_sock.c_str(), dirfd.get(), name.c_str(), 0) != 0) {
    int err = errno;
    if (err == EEXIST) return make_error(Errc::kFailed, path + " appeared while the control socket was created");
    return std::unexpected(sys_error("link", path, err));
  }
  return Listener{std::move(*fd), st.st_dev, st.st_ino};
}


}  // namespace capsa::supervisor
