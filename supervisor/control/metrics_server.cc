// capsa — the metrics socket (metrics_server.h).
#include "supervisor/control/metrics_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "supervisor/control/socket.h"
#include "supervisor/metrics.h"

namespace capsa::supervisor {

namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kAcceptBackoff = 1s;

std::string status_answer(std::string_view status) {
  std::string body = std::string(status) + "\n";
  return "HTTP/1.0 " + std::string(status) +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

std::string metrics_http_answer(std::string_view request,
                                const std::function<std::string()>& render) {
  // Only the request line matters; headers are read (bounded) and ignored.
  std::string_view line = request.substr(0, request.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 5) != "HTTP/") {
    return status_answer("400 Bad Request");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method != "GET" && method != "HEAD") return status_answer("405 Method Not Allowed");
  // "http://localhost/metrics" (absolute form) or "/metrics"; a query is
  // ignored (Prometheus may add none, a person may).
  if (auto scheme = target.find("://"); scheme != std::string_view::npos) {
    auto slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  target = target.substr(0, target.find('?'));
  if (target != "/metrics" && target != "/") return status_answer("404 Not Found");
  const std::string text = render();
  std::string answer = "HTTP/1.0 200 OK\r\nContent-Type: " + std::string(kMetricsContentType) +
                       "\r\nContent-Length: " + std::to_string(text.size()) +
                       "\r\nConnection: close\r\n\r\n";
  if (method == "GET") answer += text;
  return answer;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::create(Supervisor& sup, std::string path,
                                                             MetricsServerOptions options) {
  if (options.max_connections == 0) options.max_connections = 1;
  CAPSA_ASSIGN_OR_RETURN(auto listener, listen_at(path, static_cast<int>(options.max_connections),
                                                  SOCK_STREAM));
  std::unique_ptr<MetricsServer> server(new MetricsServer(sup, std::move(path), options,
                                                          std::move(listener.fd), listener.dev,
                                                          listener.ino));
  auto watch = sup.reactor().watch(server->listener_, Interest::kReadable,
                                   [s = server.get()](Events) { s->on_accept(); });
  if (!watch) return std::unexpected(watch.error());  // the destructor removes the file
  server->watch_ = *watch;
  return server;
}

MetricsServer::MetricsServer(Supervisor& sup, std::string path, MetricsServerOptions options,
                             Fd listener, dev_t dev, ino_t ino)
    : sup_(sup), path_(std::move(path)), options_(options), listener_(std::move(listener)),
      dev_(dev), ino_(ino) {}

MetricsServer::~MetricsServer() {
  Reactor& r = sup_.reactor();
  if (watch_ != 0) r.unwatch(watch_);
  if (backoff_timer_ != 0) r.unwatch(backoff_timer_);
  for (auto& [id, c] : conns_) {
    if (c->watch != 0) r.unwatch(c->watch);
    if (c->timer != 0) r.unwatch(c->timer);
  }
  conns_.clear();
  struct stat st{};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

void MetricsServer::on_accept() {
  Fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!conn.valid()) {
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED) return;
    // EMFILE/ENFILE/ENOMEM: the connection stays queued, the listener
    // readable; stop watching it for a while instead of spinning.
    sup_.logger().warn("metrics socket {}: accept failed ({}); not accepting for {} ms", path_,
                       std::strerror(err), kAcceptBackoff.count());
    sup_.reactor().unwatch(std::exchange(watch_, 0));
    auto timer = sup_.reactor().add_timer(kAcceptBackoff, [this] {
      backoff_timer_ = 0;
      auto w = sup_.reactor().watch(listener_, Interest::kReadable, [this](Events) { on_accept(); });
      if (w) {
        watch_ = *w;
      } else {
        sup_.logger().error("metrics socket {}: cannot watch it again ({})", path_,
                            w.error().to_string());
      }
    });
    if (timer) backoff_timer_ = *timer;
    return;
  }
  ucred peer{};
  socklen_t len = sizeof peer;
  if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 ||
      (peer.uid != ::geteuid() && peer.uid != 0)) {
    sup_.audit().event("metrics_refused", AuditFields()
                                              .unum("uid", peer.uid)
                                              .num("pid", peer.pid)
                                              .str("reason", "not the supervisor's user nor root"));
    return;
  }
  // Over the limit: closed at once (by `conn` going out of scope).
  if (conns_.size() >= options_.max_connections) return;

  const std::uint64_t id = next_id_++;
  auto c = std::make_unique<Conn>();
  c->fd = std::move(conn);
  Reactor& r = sup_.reactor();
  auto w = r.watch(c->fd, Interest::kReadable, [this, id](Events ev) { on_event(id, ev); });
  if (!w) return;
  c->watch = *w;
  auto t = r.add_timer(options_.deadline, [this, id] {
    if (auto it = conns_.find(id); it != conns_.end()) it->second->timer = 0;  // fired: gone
    close(id);
  });
  if (!t) {
    r.unwatch(c->watch);
    return;  // no deadline, no connection
  }
  c->timer = *t;
  conns_.emplace(id, std::move(c));
}

bool MetricsServer::read_request(Conn& c, bool& cut) {
  char buf[1024];
  for (;;) {
    const std::size_t room = kMaxMetricsRequestBytes - c.in.size();
    if (room == 0) {
      cut = true;  // the headers did not end within the bound
      return false;
    }
    ssize_t n = ::recv(c.fd.get(), buf, std::min(room, sizeof buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      cut = true;
      return false;
    }
    if (n == 0) {
      cut = true;  // closed before its request was complete
      return false;
    }
    const std::size_t from = c.in.size() >= 3 ? c.in.size() - 3 : 0;
    c.in.append(buf, static_cast<std::size_t>(n));
    std::string_view in(c.in);
    if (in.find("\r\n\r\n", from) != std::string_view::npos ||
        in.find("\n\n", from) != std::string_view::npos) {
      return true;
    }
  }
}

bool MetricsServer::write_answer(Conn& c, bool& cut) {
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      cut = true;
      return false;
    }
    c.sent += static_cast<std::size_t>(n);
  }
  return true;
}

void MetricsServer::on_event(std::uint64_t id, Events events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  bool cut = false;
  if (!c.writing) {
    if (!read_request(c, cut)) {
      // Still waiting for the rest (bounded by the deadline), unless cut;
      // a hang-up without a complete request is cut too (else the
      // level-triggered hang-up would spin).
      if (cut || ((events.hung_up() || events.error()) && !events.readable())) close(id);
      return;
    }
    // The snapshot is taken now, on the loop; nothing more is read.
    c.out = metrics_http_answer(c.in, [this] { return render_metrics(sup_.metrics()); });
    c.in = std::string();
    c.writing = true;
  }
  if (write_answer(c, cut)) {
    close(id);  // all sent: done
    return;
  }
  if (cut || events.error() || (events.hung_up() && !events.writable())) {
    close(id);
    return;
  }
  // The rest as the client reads it (still bounded by the deadline). A
  // client that half-closed keeps reporting a hang-up: it is only cut off
  // when nothing can be written (above).
  if (auto m = sup_.reactor().modify(c.watch, Interest::kWritable); !m) close(id);
}

void MetricsServer::close(std::uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Reactor& r = sup_.reactor();
  if (it->second->watch != 0) r.unwatch(it->second->watch);
  if (it->second->timer != 0) r.unwatch(it->second->timer);
  conns_.erase(it);  // closes the socket: the client sees the end of the answer
}

}  // namespace capsa::supervisor
