// capsa — the supervisor's control socket: `capsa audit` and `capsa revoke`
// on a running supervisor (docs/SUPERVISOR.md, "Control socket").
//
// A SOCK_SEQPACKET Unix socket, mode 0600, speaking capsa.Control
// (supervisor/control.fbs) over the ordinary wire protocol. Each accepted
// connection is an operator session of the Supervisor (serve_operator):
// validated like any port, all methods allowed.
//
// Who may connect: the socket's mode already keeps other users out; on top,
// each connection's SO_PEERCRED uid must be the supervisor's effective uid
// or root, otherwise it is audited ("control_refused") and closed before a
// byte is read. (A file mode can be loosened by mistake, a check in code
// cannot.) Accepted sessions are audited ("control_connected": uid, pid).
//
// Creating the socket: see supervisor/control/socket.h (listen_at).
//
// Default path (default_control_path()): $XDG_RUNTIME_DIR/capsa/<pid>.sock
// when XDG_RUNTIME_DIR is set, else /tmp/capsa-<euid>/<pid>.sock. Its
// directory is created 0700 if missing and must then be a real directory
// (not a symlink) owned by us and not writable by group or others: in /tmp
// anyone can create "capsa-<uid>" first, and a directory someone else owns
// is an attack, not a place for our socket.
//
// Limits: at most kMaxControlSessions sessions at once; one more connection
// is accepted, audited and closed (the listening socket must be drained, or
// the level-triggered loop would spin on it). When accept() fails for lack
// of fds or memory, accepting pauses for a second (the queued connection
// would keep the listener readable and the loop spinning): audited
// ("control_accept_failed") and logged through Supervisor::logger().
//
// Threading: create() and the destructor run on the supervisor's loop
// thread (or before/after run()). The ControlServer must not outlive the
// Supervisor. Sessions it started live on in the Supervisor after it is
// destroyed (they hold what they need), until their client hangs up.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "supervisor/control/client.h"
#include "supervisor/control/socket.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/supervisor.h"

namespace capsa::supervisor {

inline constexpr std::size_t kMaxControlSessions = 16;

// default_control_dir() and default_control_path() (the paths described
// above) are declared in client.h, shared with the client;
// ensure_private_dir() in socket.h.

class ControlServer {
 public:
  // Listens at `path` ("" = default_control_path(), whose directory is
  // created with ensure_private_dir). Errors: kInvalidArgument (path too
  // long for a Unix socket, or its directory missing), kDenied (an unsafe
  // directory, or something other than a socket at `path`), kFailed
  // (another supervisor listens there; a syscall failed).
  static Result<std::unique_ptr<ControlServer>> create(Supervisor& sup, std::string path);

  // Stops listening and removes the socket file (only if it is still ours:
  // same inode). Sessions already accepted are not cut.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const noexcept { return path_; }
  // Sessions being served now.
  std::size_t sessions() const noexcept;

  struct Shared;  // what sessions share with the server (control_server.cc)

 private:
  ControlServer(Supervisor& sup, std::string path, Fd listener, dev_t dev, ino_t ino,
                std::shared_ptr<Shared> shared);
  void on_readable();

  Supervisor& sup_;
  std::string path_;
  Fd listener_;
  dev_t dev_;  // identity of the socket file we created, for the unlink
  ino_t ino_;
  WatchId watch_ = 0;
  WatchId backoff_timer_ = 0;  // set while accepting is paused (see on_readable)
  std::shared_ptr<Shared> shared_;
};

// The capsa.control.Control method table against the loaded interface
// (services/dispatch.h), for tests.
Result<void> check_control_methods(const Interface& iface);

}  // namespace capsa::supervisor
