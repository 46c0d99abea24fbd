#include "supervisor/control/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <utility>

#include "supervisor/control/report.h"
#include "supervisor/services/dispatch.h"

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
constexpr std::chrono::milliseconds kAcceptBackoff = 1s;

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

  void handle(Call call) override { methods().dispatch(*this, std::move(call)); }

  // By ordinal (services/dispatch.h); checked against the loaded
  // capsa.control.Control in server_test.cc.
  static const MethodTable<ControlService, 3>& methods() {
    static constexpr MethodTable<ControlService, 3> kTable{
        kControlInterface,
        {{{kControlAudit, "Audit", &ControlService::audit},
          {kControlRevoke, "Revoke", &ControlService::revoke},
          {kControlMetrics, "Metrics", &ControlService::metrics}}}};
    return kTable;
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

  void metrics(Call call) {
    // Rendered on the loop: O(workers + methods), a few KiB per worker.
    const std::string text = render_metrics(sup_.metrics());
    auto blob = make_blob(std::as_bytes(std::span(text)), "capsa-metrics");
    if (!blob) return call.fail(Errc::kFailed, "making the metrics blob: " + blob.error().message);
    std::vector<Handle> handles;
    handles.push_back(Handle{HandleKind::kBlob, std::move(*blob)});
    call.reply(
        [](flatbuffers::FlatBufferBuilder& fbb) {
          control::MetricsReplyBuilder b(fbb);
          b.add_text(0);
          fbb.Finish(b.Finish());
        },
        std::move(handles));
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

}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::create(Supervisor& sup, std::string path) {
  if (path.empty()) path = default_control_path();
  // The default directory is ours to create (and to check: in /tmp anyone
  // could have made it first). A directory the operator named is only
  // checked, in listen_at.
  if (split_path(path).first == default_control_dir()) {
    CAPSA_TRY(ensure_private_dir(default_control_dir()));
  }
  CAPSA_ASSIGN_OR_RETURN(auto reg, control_registry());
  auto shared = std::make_shared<Shared>();
  shared->registry = std::move(reg);
  shared->iface = shared->registry->find(kControlInterface);

  CAPSA_ASSIGN_OR_RETURN(auto listener, listen_at(path, static_cast<int>(kMaxControlSessions)));
  std::unique_ptr<ControlServer> server(new ControlServer(sup, std::move(path), std::move(listener.fd),
                                                          listener.dev, listener.ino, std::move(shared)));
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
      if (w) {
        watch_ = *w;
        sup_.logger().info("control socket {}: accepting again", path_);
      } else {
        sup_.logger().error("control socket {}: cannot watch it again ({}): no more operator "
                            "sessions", path_, w.error().to_string());
      }
    });
    // If no timer can be made, the socket stays unwatched (audited above):
    // better deaf than a loop spinning at 100% CPU.
    if (timer) {
      backoff_timer_ = *timer;
      sup_.logger().warn("control socket {}: accept failed ({}); not accepting for {} ms", path_,
                         std::strerror(err), kAcceptBackoff.count());
    } else {
      sup_.logger().error("control socket {}: accept failed ({}) and no timer to retry ({}): no "
                          "more operator sessions", path_, std::strerror(err), timer.error().to_string());
    }
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

Result<void> check_control_methods(const Interface& iface) {
  return ControlService::methods().check(iface);
}

}  // namespace capsa::supervisor
