// capsa — the client side of the supervisor's control socket (what `capsa
// audit`, `capsa revoke` and `capsa metrics` use; docs/SUPERVISOR.md,
// "Control socket").
//
// Links only capabilities and the capsa.Control schema: no supervisor,
// sandbox or policy code (a tool that only asks questions does not carry
// the machinery that answers them).
//
// The client trusts the supervisor more than a worker, but never trusts
// bytes it did not verify: replies are validated against capsa.Control
// like any message, and the audit report (a sealed memfd blob) is
// flatbuffers-verified before a field is read. It also checks who answers:
// the server's SO_PEERCRED uid must be ours or root, so a socket planted by
// another user (in a shared directory, under a guessed path) cannot feed
// us a made-up audit or swallow a revocation.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/client.h"
#include "capabilities/error.h"
#include "capabilities/handle.h"
#include "capabilities/interface_registry.h"
#include "control_generated.h"

namespace capsa::supervisor {

inline constexpr std::string_view kControlInterface = "capsa.control.Control";
inline constexpr std::uint32_t kControlAudit = 0;   // capsa_method ordinals
inline constexpr std::uint32_t kControlRevoke = 1;
inline constexpr std::uint32_t kControlMetrics = 2;

// Largest metrics text a client reads (bounds what a confused server can
// make us map and print; a real one is a few KiB per worker and method).
inline constexpr std::size_t kMaxMetricsBytes = 16u << 20;

// Longest `reason` of a Revoke (the server refuses longer ones).
inline constexpr std::size_t kMaxRevokeReasonBytes = 1024;

// Largest audit report a client maps (about 200,000 grants). Bounds what a
// confused server can make us read.
inline constexpr std::size_t kMaxAuditReportBytes = 64u << 20;
// Tables the report verifier accepts (one per worker and grant, plus the root).
inline constexpr std::size_t kMaxAuditReportTables = 1u << 20;

// Where default control sockets live: $XDG_RUNTIME_DIR/capsa when
// XDG_RUNTIME_DIR is set (and absolute), else /tmp/capsa-<euid>.
std::string default_control_dir();
// default_control_dir() + "/<our pid>.sock" (the supervisor's own default).
std::string default_control_path();

// A registry holding capsa.Control (the schema embedded at build time).
Result<std::shared_ptr<const InterfaceRegistry>> control_registry();

// A verified audit report, kept mapped.
class AuditSnapshot {
 public:
  const control::AuditReport& report() const noexcept { return *report_; }

 private:
  friend class ControlClient;
  AuditSnapshot(BlobView view, const control::AuditReport* report)
      : view_(std::move(view)), report_(report) {}
  BlobView view_;
  const control::AuditReport* report_;
};

// Verifies `bytes` as an AuditReport (identifier "CPAR", flatbuffers
// verifier with the limits above). kBadMessage if it is not one.
Result<const control::AuditReport*> verify_audit_report(std::span<const std::byte> bytes);

struct ControlClientOptions {
  // How long a call may wait for its reply. The supervisor answers on its
  // loop (the kernel check runs on its pool), so a live one answers fast;
  // this only keeps a CLI from hanging on a stuck one.
  std::chrono::milliseconds timeout{30'000};
};

class ControlClient {
 public:
  // Connects to the control socket at `path` and checks the server's uid.
  // kNotFound (no socket there), kClosed (nobody listening: a stale socket),
  // kDenied (the server runs as another user, or the socket is not ours to
  // connect to), kFailed otherwise.
  static Result<std::unique_ptr<ControlClient>> connect(const std::string& path,
                                                        ControlClientOptions options = {});
  // The same for a socket already connected to `path` (live_control_sockets
  // found it): the server's uid is checked here.
  static Result<std::unique_ptr<ControlClient>> adopt(Fd connected, const std::string& path,
                                                      ControlClientOptions options = {});

  // The audit report (include_ended: also the ended grants the supervisor
  // still keeps).
  Result<AuditSnapshot> audit(bool include_ended);
  // Revokes `grant` and what derives from it; the ids revoked, `grant` first.
  // The supervisor's errors come back as they are (kNotFound, kDenied, ...).
  Result<std::vector<std::uint64_t>> revoke(std::uint64_t grant, std::string_view reason);
  // The supervisor's metrics, Prometheus text format 0.0.4 (metrics.h).
  // Returned as the supervisor wrote it: a caller printing it to a terminal
  // is printing the supervisor's words, not a worker's.
  Result<std::string> metrics();

  const std::string& path() const noexcept { return path_; }

 private:
  ControlClient(std::string path, std::shared_ptr<const InterfaceRegistry> registry,
                std::unique_ptr<Client> client, ControlClientOptions options)
      : path_(std::move(path)), registry_(std::move(registry)), client_(std::move(client)),
        options_(options) {}
  // A blocking call that gives up after options_.timeout.
  Result<Message> call(std::uint32_t ordinal);

  std::string path_;
  std::shared_ptr<const InterfaceRegistry> registry_;  // outlives client_ (its interface)
  std::unique_ptr<Client> client_;
  ControlClientOptions options_;
};

// A control socket that answered a connect.
struct LiveControlSocket {
  std::string path;
  Fd connection;  // connected, not yet checked: hand it to ControlClient::adopt
};

// The "*.sock" sockets in `dir` that something listens on (stale sockets,
// symlinks and other files are skipped), sorted by path. Connecting is the
// only way to tell a live socket from a stale one, so each probe is a
// connection; it is returned, so that the one used is not connected twice
// (the supervisor audits every connection). kNotFound when `dir` does not
// exist.
Result<std::vector<LiveControlSocket>> live_control_sockets(const std::string& dir);

}  // namespace capsa::supervisor
