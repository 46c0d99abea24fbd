// The control socket with a real sandboxed worker (bubblewrap, seccomp,
// the launcher): the kernel check reads the sandbox's /proc/PID/fd tables
// (as root, and as uid 65534 in the .unprivileged pass), and a revocation
// through the socket reaches the worker inside.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "policy/builder.h"
#include "supervisor/control/client.h"
#include "supervisor/control/server.h"
#include "supervisor/control/test_util.h"
#include "tests/support/test_programs.h"
#include "supervisor/supervisor_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;
namespace ctl = capsa::control;

class ControlSandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    root_ = tmp_.path() + "/root";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    SupervisorOptions o;
    o.audit_log_path = tmp_.path() + "/audit.jsonl";
    o.log_output = [this](std::string_view w, LogLevel, std::string_view text) {
      std::lock_guard lock(mu_);
      lines_.push_back(std::string(w) + ": " + std::string(text));
    };
    policy::PolicyBuilder b(Supervisor::api_catalog(o));
    auto& w = b.worker("sw").program(capsa::testing::test_bin_dir() + "/control_test_worker");
    w.grant("log", "log.Sink").all_rights();
    w.grant("dir", "fs.Directory").all_rights().constraint("root", root_);
    w.limit(policy::LimitKind::kWallSeconds, 120);
    auto p = b.try_build();
    ASSERT_TRUE(p) << policy::format_diagnostics(p.error());
    audit_path_ = o.audit_log_path;
    auto s = Supervisor::create(std::move(*p), std::move(o));
    ASSERT_TRUE(s) << s.error().to_string();
    sup_ = std::move(*s);
  }
  void TearDown() override {
    // shutdown() stops the loop once no worker runs (at once if the test
    // got that far): nothing may wait on the loop after it.
    if (loop_) {
      loop_->on_loop([&] {
        server_.reset();
        sup_->shutdown("test over");
      });
      loop_->stop();
    }
    loop_.reset();
  }
  bool said(const std::string& line) {
    std::lock_guard lock(mu_);
    return std::find(lines_.begin(), lines_.end(), line) != lines_.end();
  }
  std::string describe() {
    auto w = loop_->on_loop([&] { return sup_->workers().at(0); });
    std::string out = w.running ? "running" : "not running";
    if (w.exit) out += ", " + w.exit->to_string();
    if (!w.start_error.empty()) out += ", start error: " + w.start_error;
    std::lock_guard lock(mu_);
    for (const auto& l : lines_) out += "\n  " + l;
    return out;
  }
  bool running() {
    return loop_->on_loop([&] { return sup_->workers().at(0).running; });
  }

  TempDir tmp_;
  std::string root_;
  std::string audit_path_;
  std::mutex mu_;
  std::vector<std::string> lines_;
  std::unique_ptr<Supervisor> sup_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<LoopThread> loop_;
};

TEST_F(ControlSandboxTest, KernelSeesTheSandboxHoldItsPortsAndRevokeReachesIt) {
  auto started = sup_->start_all();
  ASSERT_TRUE(started) << started.error().to_string();
  auto server = ControlServer::create(*sup_, tmp_.path() + "/ctl.sock");
  ASSERT_TRUE(server) << server.error().to_string();
  server_ = std::move(*server);
  loop_ = std::make_unique<LoopThread>(*sup_);
  ASSERT_TRUE(eventually([&] { return said("sw: ready") || !running(); }));
  ASSERT_TRUE(said("sw: ready")) << "the worker did not start or did not get its grants: " << describe();

  auto c = ControlClient::connect(tmp_.path() + "/ctl.sock");
  ASSERT_TRUE(c) << c.error().to_string();
  auto snap = (*c)->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  const ctl::AuditReport& r = snap->report();
  ASSERT_EQ(r.workers()->size(), 1u);
  pid_t pid = r.workers()->Get(0)->pid();
  EXPECT_GT(pid, 0);
  EXPECT_TRUE(r.workers()->Get(0)->running()) << describe();
  std::uint64_t dir_id = 0;
  std::size_t seen = 0;
  for (const auto* g : *r.grants()) {
    if (g->worker()->str() != "sw") continue;
    ++seen;
    EXPECT_EQ(g->holder_pid(), pid);
    // The bootstrap (fd 3), log and dir: every one held inside the sandbox.
    EXPECT_EQ(g->kernel(), ctl::KernelVerdict::Held)
        << g->interface()->str() << ": " << (g->kernel_detail() ? g->kernel_detail()->str() : "");
    if (g->name()->str() == "dir") dir_id = g->id();
  }
  EXPECT_EQ(seen, 3u);
  ASSERT_NE(dir_id, 0u);

  auto ids = (*c)->revoke(dir_id, "sandbox test");
  ASSERT_TRUE(ids) << ids.error().to_string();
  EXPECT_EQ(ids->front(), dir_id);
  ASSERT_TRUE(eventually([&] { return !running(); }));
  EXPECT_TRUE(said("sw: dir: revoked"));
  auto w = loop_->on_loop([&] { return sup_->workers().at(0); });
  ASSERT_TRUE(w.exit.has_value());
  EXPECT_EQ(w.exit->code, 0) << w.exit->to_string();
  EXPECT_EQ(count_lines_with(audit_lines(audit_path_), {"\"revoked\"", "sandbox test"}), 1u);
}

}  // namespace
}  // namespace capsa::supervisor
