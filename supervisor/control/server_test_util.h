// The control-socket tests' fixture: a real Supervisor (attach()ed workers
// whose ports are held by real child processes), its ControlServer, and the
// reactor on its own thread. Shared by server_test.cc, socket_test.cc and
// commands_test.cc.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control_generated.h"
#include "policy/builder.h"
#include "supervisor/control/client.h"
#include "supervisor/control/server.h"
#include "supervisor/control/test_util.h"
#include "supervisor/supervisor_test_util.h"

namespace capsa::supervisor::testing {

namespace ctl = capsa::control;

inline std::vector<Fd> one(Port p) {
  std::vector<Fd> v;
  v.push_back(p.release_fd());
  return v;
}

inline const ctl::GrantEntry* find_grant(const ctl::AuditReport& r, std::uint64_t id) {
  for (const auto* g : *r.grants()) {
    if (g->id() == id) return g;
  }
  return nullptr;
}

// A raw listening SOCK_SEQPACKET socket at `path` (a stale one once closed).
inline Fd raw_listener(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return Fd();
  if (::listen(fd.get(), 4) != 0) return Fd();
  return fd;
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    audit_path_ = dir_.path() + "/audit.jsonl";
    sock_ = dir_.path() + "/ctl.sock";
    echo_ = std::make_shared<EchoControl>();
    options_ = options_with_echo(audit_path_, echo_);
  }
  void TearDown() override {
    w_echo_.reset();
    w_boot_.reset();
    // The server before the loop stops (its destructor unwatches).
    if (loop_) loop_->on_loop([&] { server_.reset(); });
    loop_.reset();
    server_.reset();
  }

  void make(const std::function<void(policy::PolicyBuilder&)>& fill) {
    policy::PolicyBuilder b(Supervisor::api_catalog(options_));
    fill(b);
    auto p = b.try_build();
    ASSERT_TRUE(p) << policy::format_diagnostics(p.error());
    auto s = Supervisor::create(std::move(*p), options_);
    ASSERT_TRUE(s) << s.error().to_string();
    sup_ = std::move(*s);
  }
  static policy::WorkerBuilder& echo_worker(policy::PolicyBuilder& b, const char* name) {
    auto& w = b.worker(name).program("/bin/true");
    w.grant("echo", "capsa.test.Echo").all_rights();
    w.grant("narrow", "capsa.test.Echo").right("Tree");
    return w;
  }
  RawBootstrap attach(std::string_view worker, pid_t pid = 0) {
    auto port = sup_->attach(worker, pid);
    EXPECT_TRUE(port) << port.error().to_string();
    return RawBootstrap(std::move(*port), sup_->registry());
  }
  // Creates the control server (before the loop runs) and starts the loop.
  // The common set-up: worker "w" (echo_worker) attached, served at sock_,
  // and holding its "echo" grant (this process keeps w's ports open).
  void serve_w_holding_echo() {
    make([](auto& b) { echo_worker(b, "w"); });
    auto port = sup_->attach("w");
    ASSERT_TRUE(port) << port.error().to_string();
    w_boot_ = std::make_unique<RawBootstrap>(std::move(*port), sup_->registry());
    serve_and_run(sock_);
    auto e = w_boot_->get("echo");
    ASSERT_TRUE(e) << e.error().to_string();
    w_echo_.emplace(std::move(*e));
  }
  void serve_and_run(const std::string& path) {
    auto s = ControlServer::create(*sup_, path);
    ASSERT_TRUE(s) << s.error().to_string();
    server_ = std::move(*s);
    loop_ = std::make_unique<LoopThread>(*sup_);
  }
  std::unique_ptr<ControlClient> client() {
    auto c = ControlClient::connect(server_->path());
    EXPECT_TRUE(c) << c.error().to_string();
    return c ? std::move(*c) : nullptr;
  }
  std::vector<GrantView> grants() { return loop_->on_loop([&] { return sup_->grants(); }); }
  const GrantView* grant_named(const std::vector<GrantView>& gs, std::string_view worker,
                               std::string_view name) {
    for (const auto& g : gs) {
      if (g.worker == worker && g.name == name) return &g;
    }
    return nullptr;
  }

  TempDir dir_;
  std::string audit_path_;
  std::string sock_;
  std::shared_ptr<EchoControl> echo_;
  SupervisorOptions options_;
  std::unique_ptr<Supervisor> sup_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<LoopThread> loop_;
  std::unique_ptr<RawBootstrap> w_boot_;  // serve_w_holding_echo()
  std::optional<Got> w_echo_;
};

}  // namespace capsa::supervisor::testing
