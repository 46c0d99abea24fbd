#include "supervisor/control/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

#include "capabilities/sys.h"
#include "control_bfbs.h"
#include "supervisor/control/socket.h"

namespace capsa::supervisor {

std::string default_control_dir() {
  // XDG_RUNTIME_DIR is the per-user 0700 directory systemd-logind makes;
  // a relative or empty value is not one, and is ignored.
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  if (xdg != nullptr && xdg[0] == '/') return std::string(xdg) + "/capsa";
  return "/tmp/capsa-" + std::to_string(::geteuid());
}

std::string default_control_path() {
  return default_control_dir() + "/" + std::to_string(::getpid()) + ".sock";
}

Result<std::shared_ptr<const InterfaceRegistry>> control_registry() {
  auto reg = std::make_shared<InterfaceRegistry>();
  CAPSA_TRY(reg->load(schemas::control_bfbs()));
  if (reg->find(kControlInterface) == nullptr) {
    return make_error(Errc::kFailed, "control.fbs does not define " + std::string(kControlInterface));
  }
  return std::shared_ptr<const InterfaceRegistry>(std::move(reg));
}

Result<const control::AuditReport*> verify_audit_report(std::span<const std::byte> bytes) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  flatbuffers::Verifier verifier(data, bytes.size(), 64,
                                 static_cast<flatbuffers::uoffset_t>(kMaxAuditReportTables));
  if (!control::VerifyAuditReportBuffer(verifier)) {
    return make_error(Errc::kBadMessage, "the audit report does not verify as capsa.control.AuditReport");
  }
  return control::GetAuditReport(data);
}

namespace {

Result<Fd> connect_unix(const std::string& path) {
  CAPSA_ASSIGN_OR_RETURN(auto addr, unix_address(path));
  CAPSA_ASSIGN_OR_RETURN(auto fd, sys_fd("socket", path, [] { return ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0); }));
  auto rc = sys("connect", path, [&] {
    return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  });
  if (!rc) {
    Error e = rc.error();
    switch (e.sys_errno) {
      case ENOENT: e.code = Errc::kNotFound; break;
      case ECONNREFUSED: e.code = Errc::kClosed; break;  // a socket file nobody listens on
      case EACCES:
      case EPERM: e.code = Errc::kDenied; break;
      default: e.code = Errc::kFailed; break;
    }
    return std::unexpected(std::move(e));
  }
  return fd;
}

// The server must run as us or as root: anyone else's socket is not our
// supervisor's, whatever its path says.
Result<void> check_server_uid(const Fd& fd, const std::string& path) {
  ucred cred{};
  socklen_t len = sizeof cred;
  auto rc = sys("getsockopt(SO_PEERCRED)", path,
                [&] { return ::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len); });
  if (!rc) return std::unexpected(rc.error());
  if (cred.uid != ::geteuid() && cred.uid != 0) {
    return make_error(Errc::kDenied, path + " is served by uid " + std::to_string(cred.uid) +
                                         " (pid " + std::to_string(cred.pid) +
                                         "), not by us or root: refusing to talk to it");
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<ControlClient>> ControlClient::connect(const std::string& path,
                                                              ControlClientOptions options) {
  CAPSA_ASSIGN_OR_RETURN(auto fd, connect_unix(path));
  return adopt(std::move(fd), path, options);
}

Result<std::unique_ptr<ControlClient>> ControlClient::adopt(Fd connected, const std::string& path,
                                                            ControlClientOptions options) {
  CAPSA_ASSIGN_OR_RETURN(auto reg, control_registry());
  CAPSA_TRY(check_server_uid(connected, path));
  const Interface* iface = reg->find(kControlInterface);
  ClientOptions copts;
  copts.max_in_flight = 1;
  auto client = std::make_unique<Client>(Port(std::move(connected)), *iface, copts);
  return std::unique_ptr<ControlClient>(
      new ControlClient(path, std::move(reg), std::move(client), options));
}

Result<Message> ControlClient::call(std::uint32_t ordinal) {
  std::optional<Result<Message>> result;
  auto id = client_->submit(ordinal, client_->payload_bytes(), {},
                            [&result](Result<Message> r) { result.emplace(std::move(r)); });
  if (!id) return std::unexpected(id.error());
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  while (!result) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto ready = client_->port().wait_readable(static_cast<int>(std::max<long long>(left.count(), 0)));
    if (!ready || !*ready) {
      // The completion points into this frame: fail it before leaving.
      client_->fail_all(ready ? Error{Errc::kFailed,
                                      "the supervisor did not answer within " +
                                          std::to_string(options_.timeout.count()) + " ms",
                                      0}
                              : ready.error());
      break;
    }
    if (auto r = client_->on_readable(); !r && !result) {
      if (r.error().code == Errc::kWouldBlock) continue;
      client_->fail_all(r.error());  // completes the call (never leave it pointing here)
    }
  }
  if (!result) return make_error(Errc::kFailed, "the call to the supervisor was dropped");
  return std::move(*result);
}

Result<AuditSnapshot> ControlClient::audit(bool include_ended) {
  auto& fbb = client_->payload_builder();
  control::AuditRequestBuilder req(fbb);
  req.add_include_ended(include_ended);
  fbb.Finish(req.Finish());
  CAPSA_ASSIGN_OR_RETURN(auto reply, call(kControlAudit));
  const auto* root = reply.payload_as<control::AuditReply>();
  auto index = root->report();
  if (!index) return make_error(Errc::kBadMessage, "the audit reply carries no report");
  Fd blob = reply.take_handle(*index);
  if (!blob.valid()) return make_error(Errc::kBadMessage, "the audit reply's report handle is missing");
  CAPSA_ASSIGN_OR_RETURN(auto view, BlobView::map(blob, kMaxAuditReportBytes));
  CAPSA_ASSIGN_OR_RETURN(auto report, verify_audit_report(view.bytes()));
  return AuditSnapshot(std::move(view), report);
}

Result<std::vector<std::uint64_t>> ControlClient::revoke(std::uint64_t grant,
                                                         std::string_view reason) {
  auto& fbb = client_->payload_builder();
  auto reason_off = fbb.CreateString(reason.data(), reason.size());
  fbb.Finish(control::CreateRevokeRequest(fbb, grant, reason_off));
  CAPSA_ASSIGN_OR_RETURN(auto reply, call(kControlRevoke));
  std::vector<std::uint64_t> out;
  if (const auto* ids = reply.payload_as<control::RevokeReply>()->revoked()) {
    out.assign(ids->begin(), ids->end());
  }
  return out;
}

Result<std::string> ControlClient::metrics() {
  auto& fbb = client_->payload_builder();
  control::MetricsRequestBuilder req(fbb);
  fbb.Finish(req.Finish());
  CAPSA_ASSIGN_OR_RETURN(auto reply, call(kControlMetrics));
  auto index = reply.payload_as<control::MetricsReply>()->text();
  if (!index) return make_error(Errc::kBadMessage, "the metrics reply carries no text");
  Fd blob = reply.take_handle(*index);
  if (!blob.valid()) return make_error(Errc::kBadMessage, "the metrics reply's text handle is missing");
  CAPSA_ASSIGN_OR_RETURN(auto view, BlobView::map(blob, kMaxMetricsBytes));
  auto bytes = view.bytes();
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Result<std::vector<LiveControlSocket>> live_control_sockets(const std::string& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return make_error(Errc::kNotFound, "no directory " + dir);
    return make_error(Errc::kFailed, "cannot list " + dir + ": " + ec.message());
  }
  std::vector<std::string> candidates;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    // symlink_status: a symlink is not followed, so it is skipped.
    if (name.size() > 5 && name.ends_with(".sock") &&
        std::filesystem::is_socket(it->symlink_status(ec))) {
      candidates.push_back(it->path().string());
    }
  }
  if (ec) return make_error(Errc::kFailed, "cannot list " + dir + ": " + ec.message());
  std::sort(candidates.begin(), candidates.end());
  std::vector<LiveControlSocket> live;
  for (const std::string& path : candidates) {
    if (auto fd = connect_unix(path); fd) live.push_back({path, std::move(*fd)});
  }
  return live;
}

}  // namespace capsa::supervisor
