#include "supervisor/control/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "capabilities/sys.h"
#include "supervisor/control/report.h"

namespace capsa::supervisor {

// What sessions share with the server. Sessions hold it by shared_ptr, so
// the capsa.Control interface they are served with outlives the
// ControlServer if they do.
struct ControlServer::Shared {
  std::shared_ptr<const InterfaceRegistry> registry;
  const Interface* iface = nullptr;
  std::size_t sessions = 0;  // loop thread only
};

namespace {

using namespace std::chrono_literals;

// After accept() fails for lack of fds, the listener is not watched for this
// long: it stays readable, and a level-triggered loop would spin on it.
constexpr auto kAcceptBackoff = 1s;

std::string uid_pid(const ucred& cred) {
  return "uid " + std::to_string(cred.uid) + " pid " + std::to_string(cred.pid);
}

// One operator session: capsa.Control on one accepted connection.
class ControlService final : public ServiceObject {
 public:
  ControlService(Supervisor& sup, std::shared_ptr<ControlServer::Shared> shared, ucred peer)
      : sup_(sup), shared_(std::move(shared)), peer_(peer) {
    ++shared_->sessions;
  }
  ~ControlService() override { --shared_->sessions; }

  void handle(Call call) override {
    switch (call.method().ordinal) {
      case kControlAudit: return audit(std::move(call));
      case kControlRevoke: return revoke(std::move(call));
      default: call.fail(Errc::kNotFound, "capsa.Control has no method " + call.method().name);
    }
  }
  std::unique_ptr<ServiceObject> clone() const override { return nullptr; }

 private:
  void audit(Call call) {
    bool include_ended = call.request().payload_as<control::AuditRequest>()->include_ended();
    // The snapshot is taken here, on the loop thread; the /proc scan and the
    // report (10,000 grants is a few MB) are built on the pool.
    ReportInput input;
    input.grants = sup_.grants(include_ended);
    input.workers = sup_.workers();
    input.supervisor_pid = ::getpid();
    input.now = std::chrono::system_clock::now();
    call.off_loop<Result<Fd>>(
        [input = std::move(input)]() mutable -> Result<Fd> {
          std::vector<std::uint8_t> bytes = build_audit_report(input);
          return make_blob(std::as_bytes(std::span(bytes)), "capsa-audit-report");
        },
        [](Call c, Result<Fd> blob) {
          if (!blob) return c.fail(Errc::kFailed, "building the audit report: " + blob.error().message);
          std::vector<Handle> handles;
          handles.push_back(Handle{HandleKind::kBlob, std::move(*blob)});
          c.reply(
              [](flatbuffers::FlatBufferBuilder& fbb) {
                control::AuditReplyBuilder b(fbb);
                b.add_report(0);
                fbb.Finish(b.Finish());
              },
              std::move(handles));
        });
  }

  void revoke(Call call) {
    const auto* req = call.request().payload_as<control::RevokeRequest>();
    std::string_view text = req->reason() ? req->reason()->string_view() : std::string_view();
    if (text.size() > kMaxRevokeReasonBytes) {
      return call.fail(Errc::kBadMessage, "reason is longer than " +
                                              std::to_string(kMaxRevokeReasonBytes) + " bytes");
    }
    // The audit line names who asked: the reason alone is the operator's word.
    std::string reason = "operator (" + uid_pid(peer_) + ")";
    if (!text.empty()) {
      reason += ": ";
      reason += text;
    }
    auto ids = sup_.revoke(req->grant(), reason);
    if (!ids) {
      // kInvalidArgument is the supervisor's "cannot be revoked" (a channel
      // end): for the operator that is a refusal, not a failure.
      Errc code = ids.error().code == Errc::kInvalidArgument ? Errc::kDenied : ids.error().code;
      return call.fail(code, ids.error().message);
    }
    call.reply([&ids](flatbuffers::FlatBufferBuilder& fbb) {
      auto v = fbb.CreateVector(*ids);
      fbb.Finish(control::CreateRevokeReply(fbb, v));
    });
  }

  Supervisor& sup_;
  std::shared_ptr<ControlServer::Shared> shared_;
  ucred peer_;
};

// Splits "dir/name" ("name" alone: the current directory).
std::pair<std::string, std::string> split_path(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return make_error(Errc::kInvalidArgument,
                      "control socket path longer than " + std::to_string(sizeof addr.sun_path - 1) +
                          " bytes: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

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
Result<void> clear_stale(const Fd& dir, const std::string& name, const std::string& path) {
  struct stat st{};
  if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return std::unexpected(sys_error("fstatat", path, errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return make_error(Errc::kDenied, path + " exists and is not a socket: not replacing it");
  }
  auto addr = unix_address(path);
  if (!addr) return std::unexpected(addr.error());
  auto probe = sys_fd("socket", path, [] {
    return ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  });
  if (!probe) return std::unexpected(probe.error());
  if (::connect(probe->get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0 ||
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

struct Listener {
  Fd fd;
  dev_t dev = 0;
  ino_t ino = 0;
};

// Binds and listens at `path` (see the header: private directory, then link).
Result<Listener> listen_at(const std::string& path) {
  if (auto a = unix_address(path); !a) return std::unexpected(a.error());
  auto [dir, name] = split_path(path);
  if (name.empty() || name == "." || name == "..") {
    return make_error(Errc::kInvalidArgument, "not a socket file name: " + path);
  }
  auto dirfd = open_socket_dir(dir);
  if (!dirfd) return std::unexpected(dirfd.error());
  if (auto r = clear_stale(*dirfd, name, path); !r) return std::unexpected(r.error());

  auto tmp = PrivateTempDir::create(dir);
  if (!tmp) return std::unexpected(tmp.error());
  std::string tmp_sock = tmp->path() + "/s";
  auto addr = unix_address(tmp_sock);
  if (!addr) {
    return make_error(Errc::kInvalidArgument,
                      "the control socket's directory path is too long to bind in: " + dir);
  }
  auto fd = sys_fd("socket", path, [] {
    return ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
  if (auto rc = sys("listen", path, [&] { return ::listen(fd->get(), static_cast<int>(kMaxControlSessions)); });
      !rc) {
    return std::unexpected(rc.error());
  }
  // link() never replaces: EEXIST if anything appeared at `path` meanwhile.
  if (::linkat(AT_FDCWD, tmp_sock.c_str(), dirfd->get(), name.c_str(), 0) != 0) {
    int err = errno;
    if (err == EEXIST) return make_error(Errc::kFailed, path + " appeared while the control socket was created");
    return std::unexpected(sys_error("link", path, err));
  }
  return Listener{std::move(*fd), st.st_dev, st.st_ino};
}

}  // namespace

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

Result<std::unique_ptr<ControlServer>> ControlServer::create(Supervisor& sup, std::string path) {
  if (path.empty()) path = default_control_path();
  // The default directory is ours to create (and to check: in /tmp anyone
  // could have made it first). A directory the operator named is only
  // checked, in listen_at.
  if (split_path(path).first == default_control_dir()) {
    if (auto r = ensure_private_dir(default_control_dir()); !r) return std::unexpected(r.error());
  }
  auto reg = control_registry();
  if (!reg) return std::unexpected(reg.error());
  auto shared = std::make_shared<Shared>();
  shared->registry = std::move(*reg);
  shared->iface = shared->registry->find(kControlInterface);

  auto listener = listen_at(path);
  if (!listener) return std::unexpected(listener.error());
  std::unique_ptr<ControlServer> server(new ControlServer(sup, std::move(path), std::move(listener->fd),
                                                          listener->dev, listener->ino, std::move(shared)));
  auto watch = sup.reactor().watch(server->listener_, Interest::kReadable,
                                   [s = server.get()](Events) { s->on_readable(); });
  if (!watch) return std::unexpected(watch.error());  // the destructor removes the file
  server->watch_ = *watch;
  return server;
}

ControlServer::ControlServer(Supervisor& sup, std::string path, Fd listener, dev_t dev, ino_t ino,
                             std::shared_ptr<Shared> shared)
    : sup_(sup), path_(std::move(path)), listener_(std::move(listener)), dev_(dev), ino_(ino),
      shared_(std::move(shared)) {}

ControlServer::~ControlServer() {
  if (watch_ != 0) sup_.reactor().unwatch(watch_);
  if (backoff_timer_ != 0) sup_.reactor().unwatch(backoff_timer_);
  // Remove the file only if it is still the one we made: after a stale-path
  // takeover by a later supervisor (ours must have died for that, but a test
  // or a confused operator may do it) the path is someone else's.
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

std::size_t ControlServer::sessions() const noexcept { return shared_->sessions; }

void ControlServer::on_readable() {
  Fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) {
    int err = errno;
    // Nothing to accept (another wake-up took it), or the client gave up.
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED) return;
    // EMFILE/ENFILE/ENOMEM: the connection stays queued and the listener
    // readable. Stop watching for a while instead of spinning.
    sup_.audit().event("control_accept_failed",
                       AuditFields().str("path", path_).str("error", std::strerror(err)));
    sup_.reactor().unwatch(watch_);
    watch_ = 0;
    auto timer = sup_.reactor().add_timer(kAcceptBackoff, [this] {
      backoff_timer_ = 0;
      auto w = sup_.reactor().watch(listener_, Interest::kReadable, [this](Events) { on_readable(); });
      if (w) watch_ = *w;
    });
    // If no timer can be made, the socket stays unwatched (audited above):
    // better deaf than a loop spinning at 100% CPU.
    if (timer) backoff_timer_ = *timer;
    return;
  }
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
    sup_.audit().event("control_refused", AuditFields().str("reason", "SO_PEERCRED failed")
                                              .str("error", std::strerror(errno)));
    return;
  }
  if (peer.uid != ::geteuid() && peer.uid != 0) {
    sup_.audit().event("control_refused", AuditFields()
                                              .unum("uid", peer.uid)
                                              .num("pid", peer.pid)
                                              .str("reason", "not the supervisor's user nor root"));
    return;
  }
  if (shared_->sessions >= kMaxControlSessions) {
    sup_.audit().event("control_refused",
                       AuditFields()
                           .unum("uid", peer.uid)
                           .num("pid", peer.pid)
                           .str("reason", "too many control sessions (" +
                                              std::to_string(kMaxControlSessions) + ")"));
    return;
  }
  sup_.audit().event("control_connected", AuditFields().unum("uid", peer.uid).num("pid", peer.pid));
  auto served = sup_.serve_operator(Port(std::move(conn)), *shared_->iface,
                                    std::make_unique<ControlService>(sup_, shared_, peer));
  if (!served) {
    sup_.audit().event("control_refused", AuditFields()
                                              .unum("uid", peer.uid)
                                              .num("pid", peer.pid)
                                              .str("reason", served.error().to_string()));
  }
}

}  // namespace capsa::supervisor
