// capsa — the opt-in metrics socket (`capsa run --metrics-socket PATH`;
// docs/SUPERVISOR.md, "Metrics"): the supervisor's metrics (metrics.h) for
// a Prometheus scrape, as minimal HTTP/1.0 over a Unix stream socket.
//
// Each connection sends one request (`GET /metrics` or `GET /`, HEAD too);
// the answer is `200 OK`, `Content-Type: text/plain; version=0.0.4` and
// the text, then the connection is closed. So
//   curl --unix-socket PATH http://localhost/metrics
// works, and a bridge (socat, a reverse proxy) can expose it to a scraper.
//
// Why a Unix socket, mode 0600: the text names every worker of the policy
// and how much it does; only the supervisor's user (and root) may read
// that. The socket file is made like the control socket's (socket.h,
// listen_at: never following or replacing a non-socket at PATH, never
// reachable with a looser mode), and each connection's SO_PEERCRED uid must
// be the supervisor's euid or root (else audited "metrics_refused" and
// closed). Connections are not audited otherwise: a scrape every few
// seconds would flood the audit log.
//
// A client is hostile until it has sent a request: all of it runs on the
// supervisor's loop, so nothing here blocks or waits for a client.
//   - at most `max_connections` at once; one more is accepted and closed at
//     once (the listener must be drained, the loop is level-triggered);
//   - at most kMaxMetricsRequestBytes of request line and headers are read;
//     more without the blank line that ends them: cut off;
//   - each connection has `deadline` from accept to its last byte sent: a
//     client that sends nothing, or reads its answer slowly, is cut off;
//   - the answer is written without blocking, as the client reads it.
// Accept failing for lack of fds pauses accepting for a second (the queued
// connection would keep the listener readable and the loop spinning).
//
// Threading: loop thread only (create and destroy before/after run() or on
// the loop). Must not outlive the Supervisor.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/supervisor.h"

namespace capsa::supervisor {

// Request line and headers a client may send (the rest is never read).
inline constexpr std::size_t kMaxMetricsRequestBytes = 8 * 1024;

struct MetricsServerOptions {
  std::size_t max_connections = 8;
  std::chrono::milliseconds deadline{2'000};
};

class MetricsServer {
 public:
  // Listens at `path` (a stream socket, mode 0600; see socket.h, listen_at,
  // for the errors: kDenied for a non-socket or an unsafe directory,
  // kFailed when something listens there already).
  static Result<std::unique_ptr<MetricsServer>> create(Supervisor& sup, std::string path,
                                                       MetricsServerOptions options = {});
  // Stops listening, cuts every connection, removes the socket file (only
  // if it is still ours: same inode).
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const std::string& path() const noexcept { return path_; }
  std::size_t connections() const noexcept { return conns_.size(); }

 private:
  struct Conn {
    Fd fd;
    WatchId watch = 0;
    WatchId timer = 0;
    std::string in;    // request so far (<= kMaxMetricsRequestBytes)
    std::string out;   // the answer, once the request is complete
    std::size_t sent = 0;
    bool writing = false;
  };

  MetricsServer(Supervisor& sup, std::string path, MetricsServerOptions options, Fd listener,
                dev_t dev, ino_t ino);
  void on_accept();
  void on_event(std::uint64_t id, Events events);
  // Reads what is there; true when the request is complete.
  bool read_request(Conn& c, bool& cut);
  void respond(Conn& c);
  // Writes what the socket takes; true when all of it was sent.
  bool write_answer(Conn& c, bool& cut);
  void close(std::uint64_t id);

  Supervisor& sup_;
  std::string path_;
  MetricsServerOptions options_;
  Fd listener_;
  dev_t dev_;
  ino_t ino_;
  WatchId watch_ = 0;
  WatchId backoff_timer_ = 0;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Conn>> conns_;
};

// The HTTP answer to `request` (request line and headers, as read): 200
// with render()'s text for GET (HEAD: headers only) of /metrics or /,
// 400 for a request line that is not "METHOD TARGET HTTP/x", 405 for another
// method, 404 for another target. render() runs only for a 200. For tests.
std::string metrics_http_answer(std::string_view request,
                                const std::function<std::string()>& render);

}  // namespace capsa::supervisor
