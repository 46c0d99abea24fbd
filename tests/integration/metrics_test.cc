// Metrics with a real supervisor and real sandboxed workers (it_worker.cc):
// N calls and M denials show as exact counters and histogram counts in
// `capsa metrics` (through the control socket) and over the metrics socket;
// hostile metrics clients (silent, flooding, one too many) are cut off
// while a worker's calls keep being served. Runs as root and as uid 65534.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/cli/metrics.h"
#include "supervisor/control/client.h"
#include "supervisor/control/metrics_server.h"
#include "supervisor/control/server.h"
#include "supervisor/control/test_util.h"
#include "supervisor/metrics_test_util.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/integration/sandboxed_supervisor.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

// A connected stream socket to `path`, blocking.
Fd connect_to(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
    return Fd();
  }
  return fd;
}

// Everything until end of stream (bounded: 10 s without a byte fails).
// `reset`: set when the stream ended with ECONNRESET instead.
std::string read_all(const Fd& fd, bool* reset = nullptr) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) {
      ADD_FAILURE() << "no end of stream within 10 s";
      return out;
    }
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET && reset != nullptr) {
      *reset = true;
      return out;
    }
    if (n < 0) ADD_FAILURE() << "read: " << std::strerror(errno);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// One HTTP exchange on the metrics socket: the whole answer.
std::string http(const std::string& path, const std::string& request) {
  Fd fd = connect_to(path);
  if (!fd.valid()) return "";
  EXPECT_EQ(::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  return read_all(fd);
}

class MetricsTest : public SandboxedSupervisorTest {
 protected:
  void SetUp() override {
    SandboxedSupervisorTest::SetUp();
    root_ = checkout_.make_dir("served");
    control_path_ = tmp_.path() + "/ctl.sock";
    metrics_path_ = tmp_.path() + "/metrics.sock";
  }
  void TearDown() override {
    if (loop_) {
      loop_->on_loop([&] {
        metrics_.reset();
        control_.reset();
        sup_->shutdown("test over");
      });
      loop_->stop();
    }
    loop_.reset();
  }

  // Starts the policy's workers, the control and metrics sockets, and the
  // loop on its own thread.
  void serve(MetricsServerOptions mo = {}) {
    auto started = sup_->start_all();
    ASSERT_TRUE(started) << started.error().to_string();
    auto c = ControlServer::create(*sup_, control_path_);
    ASSERT_TRUE(c) << c.error().to_string();
    control_ = std::move(*c);
    auto m = MetricsServer::create(*sup_, metrics_path_, mo);
    ASSERT_TRUE(m) << m.error().to_string();
    metrics_ = std::move(*m);
    loop_ = std::make_unique<LoopThread>(*sup_);
  }
  bool all_ended() {
    return loop_->on_loop([&] {
      for (const auto& w : sup_->workers()) {
        if (w.running) return false;
      }
      return true;
    });
  }
  bool said(const std::string& w, const std::string& line) {
    return loop_->on_loop([&] { return log_.said_line(w, line); });
  }
  // The payload bytes of every grant `w` held, from the grant table (ended
  // grants included): what capsa_worker_payload_bytes_total must add up to.
  std::uint64_t grant_bytes(const std::string& w) {
    return loop_->on_loop([&] {
      std::uint64_t n = 0;
      for (const auto& g : sup_->grants(true)) n += g.worker == w ? g.bytes : 0;
      return n;
    });
  }

  std::string root_;
  std::string control_path_;
  std::string metrics_path_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<LoopThread> loop_;
};

constexpr long kCalls = 20;
constexpr long kDenials = 7;

TEST_F(MetricsTest, CallsAndDenialsAreExactInCapsaMetricsAndOverTheSocket) {
  make([&](policy::PolicyBuilder& b) {
    auto& c = b.worker("caller").program(it_worker_).arg("calls").arg(std::to_string(kCalls));
    c.grant("log", "log.Sink").all_rights();
    c.grant("dir", "fs.Directory").all_rights().constraint("root", root_);
    // Its grant allows Stat only: every List it sends is denied.
    auto& d = b.worker("denier").program(it_worker_).arg("denials").arg(std::to_string(kDenials));
    d.grant("log", "log.Sink").all_rights();
    d.grant("dir", "fs.Directory").right("Stat").constraint("root", root_);
  });
  serve();
  ASSERT_TRUE(eventually([&] { return all_ended(); }));
  ASSERT_TRUE(said("caller", "calls: ok=20 failed=0"));
  ASSERT_TRUE(said("denier", "denials: denied=7 other=0"));

  // `capsa metrics`, in-process, through the control socket.
  std::ostringstream out, err;
  cli::MetricsOptions o;
  o.control = control_path_;
  ASSERT_EQ(cli::run_metrics(o, out, err), 0) << err.str();
  const std::string text = out.str();
  ParsedMetrics m;
  parse_metrics(text, m);
  ASSERT_FALSE(HasFailure()) << text;

  // Each worker: two bootstrap Gets (log, dir) and one log.Sink Write,
  // besides its own calls.
  EXPECT_EQ(m.at("capsa_worker_calls_total{worker=\"caller\"}"), kCalls + 3);
  EXPECT_EQ(m.at("capsa_worker_denials_total{worker=\"caller\"}"), 0);
  EXPECT_EQ(m.at("capsa_worker_calls_total{worker=\"denier\"}"), 3);
  EXPECT_EQ(m.at("capsa_worker_denials_total{worker=\"denier\"}"), kDenials);
  for (const char* w : {"caller", "denier"}) {
    const std::string l = std::string("{worker=\"") + w + "\"}";
    EXPECT_EQ(m.at("capsa_worker_bad_messages_total" + l), 0);
    EXPECT_EQ(m.at("capsa_worker_seccomp_violations_total" + l), 0);
    EXPECT_EQ(m.at("capsa_worker_live_grants" + l), 0);  // ended: released
    EXPECT_EQ(m.at("capsa_worker_running" + l), 0);
    const std::uint64_t bytes = grant_bytes(w);
    EXPECT_GT(bytes, 0u);
    EXPECT_EQ(m.at("capsa_worker_payload_bytes_total" + l), static_cast<double>(bytes)) << w;
  }
  EXPECT_EQ(m.at("capsa_workers_running"), 0);
  EXPECT_EQ(m.at("capsa_live_grants"), 0);
  EXPECT_EQ(m.at("capsa_channels"), 0);
  // Only answered calls are timed: the 7 denied Lists were never dispatched.
  auto count = [&](const std::string& iface, const std::string& method) {
    return m.at("capsa_call_duration_seconds_count{interface=\"" + iface + "\",method=\"" +
                method + "\"}");
  };
  EXPECT_EQ(count("fs.Directory", "List"), kCalls);
  EXPECT_EQ(count("capsa.Bootstrap", "Get"), 4);
  EXPECT_EQ(count("log.Sink", "Write"), 2);
  EXPECT_FALSE(m.has("capsa_call_duration_seconds_count{interface=\"fs.Directory\",method=\"Stat\"}"));
  // Operator sessions are not measured.
  for (const auto& [key, v] : m.samples) EXPECT_EQ(key.find("capsa.control"), std::string::npos) << key;

  // The metrics socket: mode 0600, and the same text (nothing ran since).
  struct stat st{};
  ASSERT_EQ(::lstat(metrics_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string answer = http(metrics_path_, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  const std::string head =
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
      "Content-Length: " + std::to_string(text.size()) + "\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(answer.starts_with(head)) << answer.substr(0, 200);
  EXPECT_EQ(answer.substr(head.size()), text);
  EXPECT_TRUE(http(metrics_path_, "GET /other HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404 Not Found\r\n"));
  EXPECT_TRUE(http(metrics_path_, "POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 405 "));
  EXPECT_TRUE(http(metrics_path_, "HEAD / HTTP/1.0\r\n\r\n").ends_with("Connection: close\r\n\r\n"));
  EXPECT_TRUE(eventually([&] { return loop_->on_loop([&] { return metrics_->connections(); }) == 0; }));
}

TEST_F(MetricsTest, SilentFloodingAndSurplusClientsAreCutOffWhileCallsGoOn) {
  make([&](policy::PolicyBuilder& b) {
    auto& c = b.worker("steady").program(it_worker_).arg("calls").arg("300");
    c.grant("log", "log.Sink").all_rights();
    c.grant("dir", "fs.Directory").all_rights().constraint("root", root_);
  });
  MetricsServerOptions mo;
  mo.max_connections = 2;
  mo.deadline = std::chrono::milliseconds(400);
  serve(mo);
  auto conns = [&] { return loop_->on_loop([&] { return metrics_->connections(); }); };

  // Two silent clients take both places; a third is closed at once, long
  // before their deadline.
  Fd silent1 = connect_to(metrics_path_);
  Fd silent2 = connect_to(metrics_path_);
  ASSERT_TRUE(eventually([&] { return conns() == 2; }));
  Fd surplus = connect_to(metrics_path_);
  bool reset = false;
  EXPECT_EQ(read_all(surplus, &reset), "");
  EXPECT_EQ(conns(), 2u);  // the silent ones are still there

  // The silent ones are cut at their deadline, without an answer.
  EXPECT_EQ(read_all(silent1, &reset), "");
  EXPECT_EQ(read_all(silent2, &reset), "");
  ASSERT_TRUE(eventually([&] { return conns() == 0; }));

  // A flooder: 1 MiB of headers that never end. Cut after 8 KiB: its
  // writes fail (the supervisor closed with unread data) well before 1 MiB.
  Fd flood = connect_to(metrics_path_);
  timeval bound{10, 0};  // a supervisor that stopped reading would fail the test, not hang it
  ASSERT_EQ(::setsockopt(flood.get(), SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound), 0);
  std::string junk(1 << 20, 'x');
  std::size_t written = 0;
  int error = 0;
  while (written < junk.size()) {
    ssize_t n = ::send(flood.get(), junk.data() + written, junk.size() - written, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = errno;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << std::strerror(error) << " after " << written;
  EXPECT_LT(written, junk.size());
  ASSERT_TRUE(eventually([&] { return conns() == 0; }));

  // The worker was served throughout, and the socket still answers.
  ASSERT_TRUE(eventually([&] { return all_ended(); }));
  EXPECT_TRUE(said("steady", "calls: ok=300 failed=0"));
  const std::string answer = http(metrics_path_, "GET /metrics HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(answer.starts_with("HTTP/1.0 200 OK\r\n")) << answer.substr(0, 200);
  ParsedMetrics m;
  parse_metrics(answer.substr(answer.find("\r\n\r\n") + 4), m);
  EXPECT_EQ(m.at("capsa_worker_calls_total{worker=\"steady\"}"), 303);
  EXPECT_EQ(m.at("capsa_call_duration_seconds_count{interface=\"fs.Directory\",method=\"List\"}"), 300);
}

TEST_F(MetricsTest, ANonSocketAtThePathIsNeverReplaced) {
  make([&](policy::PolicyBuilder& b) {
    b.worker("idle").program(it_worker_).arg("hello").grant("log", "log.Sink").all_rights();
  });
  const std::string file = tmp_.path() + "/not-a-socket";
  { Fd f(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600)); }
  const std::string link = tmp_.path() + "/link.sock";
  ASSERT_EQ(::symlink(file.c_str(), link.c_str()), 0);
  for (const std::string& p : {file, link}) {
    auto m = MetricsServer::create(*sup_, p);
    ASSERT_FALSE(m) << p;
    EXPECT_EQ(m.error().code, Errc::kDenied) << m.error().to_string();
  }
  struct stat st{};
  ASSERT_EQ(::lstat(file.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

}  // namespace
}  // namespace capsa::supervisor
