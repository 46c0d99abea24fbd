// The control socket against a real Supervisor (attach()ed workers whose
// ports are held by real child processes, the reactor on its own thread):
// Audit and Revoke through the real socket, the kernel's view of holders,
// the socket's mode and ownership checks, stale and live sockets, unsafe
// paths, the session bound, and the `capsa audit` / `capsa revoke`
// commands run in-process against it.
#include "supervisor/control/server.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "policy/builder.h"
#include "policy/jsonc.h"
#include "supervisor/cli/audit.h"
#include "supervisor/cli/revoke.h"
#include "supervisor/control/client.h"
#include "supervisor/control/report.h"
#include "supervisor/control/test_util.h"
#include "supervisor/supervisor_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;
namespace ctl = capsa::control;

// Polls `pred` (the supervisor notices hang-ups on its own loop) with a
// generous safety bound; callers assert the predicate afterwards, never a
// duration.
template <typename F>
bool eventually(F pred) {
  for (int i = 0; i < 4000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

std::vector<Fd> one(Port p) {
  std::vector<Fd> v;
  v.push_back(p.release_fd());
  return v;
}

const ctl::GrantEntry* find_grant(const ctl::AuditReport& r, std::uint64_t id) {
  for (const auto* g : *r.grants()) {
    if (g->id() == id) return g;
  }
  return nullptr;
}

// A raw listening SOCK_SEQPACKET socket at `path` (a stale one once closed).
Fd raw_listener(const std::string& path) {
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
};

TEST_F(ControlTest, AuditShowsEveryGrantAndWhoTheKernelSaysHoldsIt) {
  make([](auto& b) {
    echo_worker(b, "a");
    echo_worker(b, "b");
    b.channel("pipe").interface("capsa.test.Echo").client("a").server("b");
  });
  FdHolder ha, hb;
  ASSERT_TRUE(ha.ok() && hb.ok());
  RawBootstrap boot_a = attach("a", ha.pid());
  RawBootstrap boot_b = attach("b", hb.pid());
  serve_and_run(sock_);

  auto ea = boot_a.get("echo");
  auto eb = boot_b.get("echo");
  auto na = boot_a.get("narrow");
  auto pa = boot_a.get("pipe");
  ASSERT_TRUE(ea && eb && na && pa);
  ASSERT_TRUE(ha.hold(one(std::move(ea->port))));  // a holds its own grant
  ASSERT_TRUE(ha.hold(one(std::move(eb->port))));  // and b's: passed on behind our back
  ASSERT_TRUE(ha.hold(one(std::move(pa->port))));  // and its channel end
  // `na` and both bootstraps stay in this process, which is no worker.

  auto gs = grants();
  const GrantView* g_ea = grant_named(gs, "a", "echo");
  const GrantView* g_eb = grant_named(gs, "b", "echo");
  const GrantView* g_na = grant_named(gs, "a", "narrow");
  const GrantView* g_pa = grant_named(gs, "a", "pipe");
  ASSERT_TRUE(g_ea && g_eb && g_na && g_pa);

  auto c = client();
  ASSERT_TRUE(c);
  auto snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  const ctl::AuditReport& r = snap->report();
  EXPECT_EQ(r.supervisor_pid(), ::getpid());
  ASSERT_EQ(r.workers()->size(), 2u);
  EXPECT_EQ(r.workers()->Get(0)->name()->str(), "a");
  EXPECT_EQ(r.workers()->Get(0)->pid(), ha.pid());
  EXPECT_TRUE(r.workers()->Get(0)->running());
  ASSERT_EQ(r.grants()->size(), gs.size());

  const auto* a_echo = find_grant(r, g_ea->id);
  ASSERT_NE(a_echo, nullptr);
  EXPECT_EQ(a_echo->worker()->str(), "a");
  EXPECT_EQ(a_echo->interface()->str(), "capsa.test.Echo");
  EXPECT_EQ(a_echo->rights()->size(), 4u);  // all_rights: Echo, Put, Tree, Note
  EXPECT_EQ(a_echo->origin(), ctl::GrantOrigin::Policy);
  EXPECT_EQ(a_echo->state(), ctl::GrantState::Live);
  EXPECT_EQ(a_echo->port_inode(), g_ea->port_inode);
  EXPECT_EQ(a_echo->holder_pid(), ha.pid());
  EXPECT_GT(a_echo->created_ns(), 0);
  EXPECT_GE(r.now_ns(), a_echo->created_ns());
  EXPECT_EQ(a_echo->kernel(), ctl::KernelVerdict::Held);

  const auto* b_echo = find_grant(r, g_eb->id);
  ASSERT_NE(b_echo, nullptr);
  EXPECT_EQ(b_echo->kernel(), ctl::KernelVerdict::HeldByOther);
  EXPECT_EQ(b_echo->kernel_detail()->str(), "a");

  const auto* a_narrow = find_grant(r, g_na->id);
  ASSERT_NE(a_narrow, nullptr);
  EXPECT_EQ(a_narrow->kernel(), ctl::KernelVerdict::NotHeld);
  ASSERT_EQ(a_narrow->rights()->size(), 1u);
  EXPECT_EQ(a_narrow->rights()->Get(0)->str(), "Tree");

  const auto* a_pipe = find_grant(r, g_pa->id);
  ASSERT_NE(a_pipe, nullptr);
  EXPECT_TRUE(a_pipe->channel());
  EXPECT_EQ(a_pipe->kernel(), ctl::KernelVerdict::Held);

  // The same in the two renderings `capsa audit` prints.
  std::string table = cli::format_audit_table(r, false);
  EXPECT_NE(table.find("held by a"), std::string::npos) << table;
  EXPECT_NE(table.find("not held"), std::string::npos) << table;
  EXPECT_NE(table.find("channel"), std::string::npos) << table;
  std::string json = cli::format_audit_json(r);
  EXPECT_NE(json.find("\"id\":" + std::to_string(g_eb->id) + ","), std::string::npos) << json;
  EXPECT_NE(json.find("\"kernel\":\"held by other\",\"kernel_detail\":\"a\""), std::string::npos) << json;

  // The holder closes the port: once the supervisor sees it, the grant is
  // released and gone from the live view.
  ASSERT_TRUE(ha.drop_all());
  ASSERT_TRUE(eventually([&] { return grant_named(grants(), "a", "echo") == nullptr; }));
  snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  EXPECT_EQ(find_grant(snap->report(), g_ea->id), nullptr);
  snap = c->audit(true);
  ASSERT_TRUE(snap) << snap.error().to_string();
  const auto* ended = find_grant(snap->report(), g_ea->id);
  ASSERT_NE(ended, nullptr);
  EXPECT_EQ(ended->state(), ctl::GrantState::Released);
  EXPECT_GT(ended->ended_ns(), 0);
  EXPECT_EQ(ended->kernel(), ctl::KernelVerdict::Unknown);

  auto lines = audit_lines(audit_path_);
  EXPECT_GE(count_lines_with(lines, {"\"control_connected\"", "\"uid\":" + std::to_string(::geteuid())}), 1u);
}

TEST_F(ControlTest, AnAttachedWorkerWithoutAPidIsUnknownNotNotHeld) {
  make([](auto& b) { echo_worker(b, "w"); });
  RawBootstrap boot = attach("w");
  serve_and_run(sock_);
  auto e = boot.get("echo");
  ASSERT_TRUE(e);
  auto c = client();
  ASSERT_TRUE(c);
  auto snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  for (const auto* g : *snap->report().grants()) {
    EXPECT_EQ(g->kernel(), ctl::KernelVerdict::Unknown);
    EXPECT_NE(g->kernel_detail()->str().find("attached without a pid"), std::string::npos);
  }
}

TEST_F(ControlTest, RevokeThroughTheSocketRevokesWhatWasDerivedAndIsAudited) {
  make([](auto& b) {
    echo_worker(b, "a");
    echo_worker(b, "b");
    b.channel("pipe").interface("capsa.test.Echo").client("a").server("b");
  });
  RawBootstrap boot = attach("a");
  serve_and_run(sock_);
  auto wide = boot.get("echo");
  ASSERT_TRUE(wide);
  Fd dup(::fcntl(wide->port.fd().get(), F_DUPFD_CLOEXEC, 0));
  auto narrow = boot.attenuate(Port(std::move(dup)), {"Tree"});
  ASSERT_TRUE(narrow);
  auto pipe = boot.get("pipe");
  ASSERT_TRUE(pipe);
  auto gs = grants();
  const GrantView* w = grant_named(gs, "a", "echo");
  const GrantView* p = grant_named(gs, "a", "pipe");
  ASSERT_TRUE(w && p);
  GrantId wide_id = w->id, pipe_id = p->id, narrow_id = 0;
  for (const auto& g : gs) {
    if (g.parent == wide_id) narrow_id = g.id;
  }
  ASSERT_NE(narrow_id, 0u);

  auto c = client();
  ASSERT_TRUE(c);
  auto ids = c->revoke(wide_id, "testing the control socket");
  ASSERT_TRUE(ids) << ids.error().to_string();
  EXPECT_EQ(*ids, (std::vector<std::uint64_t>{wide_id, narrow_id}));
  EXPECT_TRUE(narrow->port.wait_readable(10000).value_or(false));
  EXPECT_TRUE(narrow->port.peer_closed());

  // Errors come back with the supervisor's code and text, and the session
  // keeps working after each.
  auto again = c->revoke(wide_id, "");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound) << again.error().to_string();
  auto chan = c->revoke(pipe_id, "");
  ASSERT_FALSE(chan);
  EXPECT_EQ(chan.error().code, Errc::kDenied) << chan.error().to_string();
  auto too_long = c->revoke(pipe_id, std::string(kMaxRevokeReasonBytes + 1, 'x'));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, Errc::kBadMessage);

  auto snap = c->audit(true);
  ASSERT_TRUE(snap) << snap.error().to_string();
  const auto* rw = find_grant(snap->report(), wide_id);
  const auto* rn = find_grant(snap->report(), narrow_id);
  ASSERT_TRUE(rw && rn);
  EXPECT_EQ(rw->state(), ctl::GrantState::Revoked);
  EXPECT_EQ(rn->state(), ctl::GrantState::Revoked);
  EXPECT_EQ(rn->origin(), ctl::GrantOrigin::Attenuated);
  EXPECT_EQ(rn->parent(), wide_id);

  // A policy grant stays revoked for its worker.
  EXPECT_EQ(boot.get("echo").error().code, Errc::kRevoked);

  std::string who = "operator (uid " + std::to_string(::geteuid()) + " pid " + std::to_string(::getpid()) + ")";
  auto lines = audit_lines(audit_path_);
  EXPECT_EQ(count_lines_with(lines, {"\"revoked\"", "\"grant\":" + std::to_string(wide_id) + ",",
                                     who + ": testing the control socket"}),
            1u);
  EXPECT_EQ(count_lines_with(lines, {"\"revoked\"", "\"grant\":" + std::to_string(narrow_id) + ",",
                                     "parent grant " + std::to_string(wide_id) + " revoked"}),
            1u);
}

TEST_F(ControlTest, SocketIsMode0600OursAndRemovedWhenTheServerGoes) {
  make([](auto& b) { echo_worker(b, "w"); });
  serve_and_run(sock_);
  struct stat st{};
  ASSERT_EQ(::lstat(sock_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  // No temporary directory left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".c")) << e.path();
  }
  loop_->on_loop([&] { server_.reset(); });
  EXPECT_NE(::lstat(sock_.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(ControlTest, TheServerRemovesOnlyItsOwnSocket) {
  make([](auto& b) { echo_worker(b, "w"); });
  serve_and_run(sock_);
  // Someone replaced the file (the server is not listening there any more).
  ASSERT_EQ(::unlink(sock_.c_str()), 0);
  Fd other = raw_listener(sock_);
  ASSERT_TRUE(other.valid());
  loop_->on_loop([&] { server_.reset(); });
  struct stat st{};
  EXPECT_EQ(::lstat(sock_.c_str(), &st), 0) << "another socket at the path is not ours to remove";
}

// The mode keeps other users out; the SO_PEERCRED check holds even when the
// mode was loosened by mistake. Root only: the test needs a second uid.
TEST_F(ControlTest, AnotherUserIsRefusedAndAudited) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another uid";
  make([](auto& b) { echo_worker(b, "w"); });
  serve_and_run(sock_);
  // Child: become uid 65534, connect, then wait for the server to close.
  // Exit 10: connect refused by the file mode; 0: connected and closed
  // unread; 1: the server talked to us; 5: it kept the connection open.
  auto as_nobody = [&]() -> int {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock_.c_str(), sizeof a.sun_path - 1);
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
          ::setresuid(65534, 65534, 65534) != 0) {
        ::_exit(3);
      }
      int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
      if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::_exit(errno == EACCES ? 10 : 4);
      // A server that kept the connection would leave this read waiting:
      // a generous bound turns that into a failure instead of a hang.
      timeval tv{60, 0};
      ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char b[16];
      ssize_t n = ::read(s, b, sizeof b);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) ::_exit(0);
      ::_exit(n < 0 ? 5 : 1);
    }
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
  };
  // The directory must let uid 65534 reach the socket at all.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  EXPECT_EQ(as_nobody(), 10) << "mode 0600 keeps uid 65534 out";
  ASSERT_EQ(::chmod(sock_.c_str(), 0666), 0);  // the mistake
  EXPECT_EQ(as_nobody(), 0) << "connected, then closed without a byte";
  EXPECT_EQ(count_lines_with(audit_lines(audit_path_),
                             {"\"control_refused\"", "\"uid\":65534", "not the supervisor's user"}),
            1u);
  // And the server still serves us.
  auto c = client();
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->audit(false));
}

// The client checks who answers: a socket served by another user is not
// our supervisor, whatever its path.
TEST_F(ControlTest, ClientRefusesAServerOfAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another uid";
  std::string sub = dir_.path() + "/nobody";
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  ASSERT_EQ(::chown(sub.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  std::string path = sub + "/fake.sock";
  int ready[2], hold[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  Fd ready_r(ready[0]), ready_w(ready[1]), hold_r(hold[0]), hold_w(hold[1]);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    hold_w.reset();
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
      ::_exit(3);
    }
    int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    char ok = ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(s, 4) == 0 &&
                      ::chmod(path.c_str(), 0666) == 0
                  ? 'r'
                  : 'x';
    if (::write(ready_w.get(), &ok, 1) != 1) ::_exit(4);
    char c;
    while (::read(hold_r.get(), &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  ready_w.reset();
  char ok = 0;
  ASSERT_EQ(::read(ready_r.get(), &ok, 1), 1);
  ASSERT_EQ(ok, 'r');
  auto c = ControlClient::connect(path);
  hold_w.reset();
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kDenied);
  EXPECT_NE(c.error().message.find("uid 65534"), std::string::npos) << c.error().message;
}

TEST_F(ControlTest, StaleSocketIsReplacedALiveOneIsNotStolen) {
  make([](auto& b) { echo_worker(b, "w"); });
  { Fd stale = raw_listener(sock_); ASSERT_TRUE(stale.valid()); }  // closed: stale file
  serve_and_run(sock_);
  auto c = client();
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->audit(false));

  auto second = loop_->on_loop([&] { return ControlServer::create(*sup_, sock_); });
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::kFailed);
  EXPECT_NE(second.error().message.find("another supervisor is listening"), std::string::npos)
      << second.error().message;
  // The first still answers, new connections included.
  EXPECT_TRUE(c->audit(false));
  auto c2 = client();
  ASSERT_TRUE(c2);
  EXPECT_TRUE(c2->audit(false));
}

TEST_F(ControlTest, UnsafeOrUnusablePathsAreRefusedAndLeftAlone) {
  make([](auto& b) { echo_worker(b, "w"); });
  auto create = [&](const std::string& p) { return ControlServer::create(*sup_, p); };
  const std::string d = dir_.path();

  // A regular file: refused, and its content untouched.
  { std::ofstream(d + "/file.sock") << "precious"; }
  auto r = create(d + "/file.sock");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDenied) << r.error().to_string();
  std::ifstream in(d + "/file.sock");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");

  // A symlink (to a file, or dangling): refused, not followed.
  ASSERT_EQ(::symlink((d + "/file.sock").c_str(), (d + "/link.sock").c_str()), 0);
  ASSERT_EQ(::symlink((d + "/nowhere").c_str(), (d + "/dangling.sock").c_str()), 0);
  EXPECT_EQ(create(d + "/link.sock").error().code, Errc::kDenied);
  EXPECT_EQ(create(d + "/dangling.sock").error().code, Errc::kDenied);
  struct stat st{};
  EXPECT_NE(::lstat((d + "/nowhere").c_str(), &st), 0) << "the dangling target was not created";

  // A directory others may write into without the sticky bit: refused.
  ASSERT_EQ(::mkdir((d + "/open").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((d + "/open").c_str(), 0777), 0);
  EXPECT_EQ(create(d + "/open/ctl.sock").error().code, Errc::kDenied);
  // The same with the sticky bit (like /tmp): fine.
  ASSERT_EQ(::chmod((d + "/open").c_str(), 01777), 0);
  auto sticky = create(d + "/open/ctl.sock");
  EXPECT_TRUE(sticky) << sticky.error().to_string();
  sticky = make_error(Errc::kFailed, "closed");  // the server goes: socket removed

  // A missing directory, a path too long for sun_path, a bare directory.
  EXPECT_EQ(create(d + "/missing/ctl.sock").error().code, Errc::kInvalidArgument);
  EXPECT_EQ(create(d + "/" + std::string(120, 'x')).error().code, Errc::kInvalidArgument);
  EXPECT_EQ(create(d + "/").error().code, Errc::kInvalidArgument);
}

TEST(ControlPaths, PrivateDirectoryIsCreatedOrRefused) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string fresh = dir.path() + "/fresh";
  ASSERT_TRUE(ensure_private_dir(fresh));
  struct stat st{};
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(ensure_private_dir(fresh)) << "an existing private dir is fine";

  std::string loose = dir.path() + "/loose";
  ASSERT_EQ(::mkdir(loose.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(loose.c_str(), 0770), 0);
  EXPECT_EQ(ensure_private_dir(loose).error().code, Errc::kDenied);

  std::string link = dir.path() + "/link";
  ASSERT_EQ(::symlink(fresh.c_str(), link.c_str()), 0);
  EXPECT_EQ(ensure_private_dir(link).error().code, Errc::kDenied) << "a planted symlink";

  std::string file = dir.path() + "/file";
  { std::ofstream(file) << "x"; }
  EXPECT_EQ(ensure_private_dir(file).error().code, Errc::kDenied);

  if (::geteuid() == 0) {
    std::string theirs = dir.path() + "/theirs";
    ASSERT_EQ(::mkdir(theirs.c_str(), 0700), 0);
    ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
    auto r = ensure_private_dir(theirs);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kDenied);
    EXPECT_NE(r.error().message.find("uid 65534"), std::string::npos) << r.error().message;
  }
}

TEST_F(ControlTest, SessionsAreBoundedAndFreedWhenClientsLeave) {
  make([](auto& b) { echo_worker(b, "w"); });
  serve_and_run(sock_);
  std::vector<std::unique_ptr<ControlClient>> clients;
  for (std::size_t i = 0; i < kMaxControlSessions; ++i) {
    clients.push_back(client());
    ASSERT_TRUE(clients.back());
    ASSERT_TRUE(clients.back()->audit(false)) << i;  // accepted and served
  }
  EXPECT_EQ(loop_->on_loop([&] { return server_->sessions(); }), kMaxControlSessions);
  auto extra = client();
  ASSERT_TRUE(extra);  // the kernel accepts it into the backlog...
  auto refused = extra->audit(false);
  ASSERT_FALSE(refused) << "...and the server closes it";
  EXPECT_EQ(count_lines_with(audit_lines(audit_path_), {"\"control_refused\"", "too many control sessions"}), 1u);
  // The ones in session are unaffected.
  EXPECT_TRUE(clients.front()->audit(false));

  clients.pop_back();
  ASSERT_TRUE(eventually([&] { return loop_->on_loop([&] { return server_->sessions(); }) < kMaxControlSessions; }));
  auto next = client();
  ASSERT_TRUE(next);
  EXPECT_TRUE(next->audit(false));
}

// A report far larger than one packet travels whole, as a blob.
TEST_F(ControlTest, ThousandsOfGrantsFitInOneReport) {
  make([](auto& b) {
    // 3,000 Gets in a burst: above the default messages per second, and
    // more live ports than the default open_files allows.
    echo_worker(b, "w")
        .limit(policy::LimitKind::kMessagesPerSecond, 100'000)
        .limit(policy::LimitKind::kOpenFiles, 4096);
  });
  RawBootstrap boot = attach("w");
  serve_and_run(sock_);
  constexpr int kGrants = 3000;
  std::vector<Port> ports;
  for (int i = 0; i < kGrants; ++i) {
    auto g = boot.get("echo");
    ASSERT_TRUE(g) << i << ": " << g.error().to_string();
    ports.push_back(std::move(g->port));
  }
  auto c = client();
  ASSERT_TRUE(c);
  auto snap = c->audit(false);
  ASSERT_TRUE(snap) << snap.error().to_string();
  EXPECT_EQ(snap->report().grants()->size(), static_cast<std::size_t>(kGrants + 1));
  std::string json = cli::format_audit_json(snap->report());
  EXPECT_GT(json.size(), kDefaultMaxPacketBytes);
}

TEST(ControlReport, VerifierRefusesWhatIsNotAReport) {
  std::vector<std::byte> junk(256, std::byte{0x41});
  EXPECT_EQ(verify_audit_report(junk).error().code, Errc::kBadMessage);
  EXPECT_EQ(verify_audit_report({}).error().code, Errc::kBadMessage);
  // A well-formed flatbuffer with another identifier.
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(ctl::CreateAuditReport(fbb, 1, 2), "XXXX");
  auto bytes = std::as_bytes(std::span(fbb.GetBufferPointer(), fbb.GetSize()));
  EXPECT_EQ(verify_audit_report(bytes).error().code, Errc::kBadMessage);
  // The same with the right identifier verifies; cut short, it does not.
  flatbuffers::FlatBufferBuilder good;
  good.Finish(ctl::CreateAuditReport(good, 1, 2), ctl::AuditReportIdentifier());
  auto gb = std::as_bytes(std::span(good.GetBufferPointer(), good.GetSize()));
  EXPECT_TRUE(verify_audit_report(gb));
  EXPECT_FALSE(verify_audit_report(gb.first(gb.size() - 4)));
}

// Report text is printed to terminals and parsed by tools: whatever bytes
// a name or an error holds, the table shows no raw control character and
// the JSON parses back to the same strings.
TEST(ControlReport, HostileStringsAreEscapedInBothRenderings) {
  const std::string evil = "w\x1b[31m\"q\"\\\n\xc2\x9b\x7f";
  ReportInput in;
  in.supervisor_pid = 42;
  in.now = std::chrono::system_clock::now();
  WorkerView w;
  w.name = evil;
  w.start_error = "no \x07 bell";
  in.workers.push_back(w);
  GrantView g;
  g.id = 7;
  g.worker = evil;
  g.name = evil;
  g.interface = "x.Y";
  g.rights = {evil};
  g.state = GrantState::kReleased;
  g.created = in.now - std::chrono::seconds(3725);
  g.ended = in.now;
  in.grants.push_back(g);
  std::vector<std::uint8_t> bytes = build_audit_report(in);
  auto report = verify_audit_report(std::as_bytes(std::span(bytes)));
  ASSERT_TRUE(report) << report.error().to_string();

  std::string table = cli::format_audit_table(**report, true);
  for (char c : table) {
    auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 || c == '\n') << "raw control byte " << int(u) << " in\n" << table;
    EXPECT_NE(u, 0x7f);
  }
  EXPECT_EQ(table.find("\xc2\x9b"), std::string::npos) << "C1 control CSI printed raw";
  EXPECT_NE(table.find("w\\x1b[31m"), std::string::npos) << table;
  EXPECT_NE(table.find("1h02m"), std::string::npos) << table;   // age
  EXPECT_NE(table.find("released"), std::string::npos) << table;

  std::string json = cli::format_audit_json(**report);
  auto parsed = policy::json::parse(json, "report.json");
  ASSERT_TRUE(parsed) << json;
  const policy::json::Value* grants = nullptr;
  for (const auto& m : parsed->members) {
    if (m.key == "grants") grants = &m.value;
  }
  ASSERT_NE(grants, nullptr);
  ASSERT_EQ(grants->items.size(), 1u);
  bool saw_worker = false;
  for (const auto& m : grants->items[0].members) {
    if (m.key == "worker") {
      saw_worker = true;
      EXPECT_EQ(m.value.text, evil) << "the JSON string decodes to the original bytes";
    }
    EXPECT_NE(m.key, "kernel") << "an ended grant has no kernel verdict";
  }
  EXPECT_TRUE(saw_worker);
}

// `capsa audit` and `capsa revoke`, run in-process against the server.
TEST_F(ControlTest, AuditAndRevokeCommands) {
  make([](auto& b) { echo_worker(b, "w"); });
  RawBootstrap boot = attach("w");
  serve_and_run(sock_);
  auto e = boot.get("echo");
  ASSERT_TRUE(e);
  GrantId id = grant_named(grants(), "w", "echo")->id;

  std::ostringstream out, err;
  EXPECT_EQ(cli::run_audit({.control = sock_, .json = false, .all = false}, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("KERNEL"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("capsa.test.Echo"), std::string::npos) << out.str();
  out.str("");
  EXPECT_EQ(cli::run_audit({.control = sock_, .json = true, .all = false}, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("\"id\":" + std::to_string(id) + ","), std::string::npos) << out.str();

  out.str("");
  EXPECT_EQ(cli::run_revoke({.control = sock_, .reason = "cli test", .grant = id}, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "revoked " + std::to_string(id) + "\n");
  out.str("");
  err.str("");
  EXPECT_EQ(cli::run_revoke({.control = sock_, .reason = "", .grant = id}, out, err), 1);
  EXPECT_NE(err.str().find("not found"), std::string::npos) << err.str();
  err.str("");
  EXPECT_EQ(cli::run_audit({.control = dir_.path() + "/none.sock", .json = false, .all = false}, out, err), 1);
  EXPECT_NE(err.str().find("cannot reach"), std::string::npos) << err.str();
}

// Without --control the commands use the one live socket in the default
// directory, and ask which when there are several.
TEST_F(ControlTest, CommandsFindTheDefaultSocket) {
  std::string xdg = dir_.path() + "/xdg";
  ASSERT_EQ(::mkdir(xdg.c_str(), 0700), 0);
  ASSERT_EQ(::setenv("XDG_RUNTIME_DIR", xdg.c_str(), 1), 0);
  struct Unset {
    ~Unset() { ::unsetenv("XDG_RUNTIME_DIR"); }
  } unset;
  EXPECT_EQ(default_control_dir(), xdg + "/capsa");
  EXPECT_EQ(default_control_path(), xdg + "/capsa/" + std::to_string(::getpid()) + ".sock");

  std::ostringstream out, err;
  EXPECT_EQ(cli::run_audit({}, out, err), 1) << "no directory yet";
  EXPECT_NE(err.str().find("no running supervisor"), std::string::npos) << err.str();

  make([](auto& b) { echo_worker(b, "w"); });
  serve_and_run("");  // the default path; its directory is created 0700
  EXPECT_EQ(server_->path(), default_control_path());
  struct stat st{};
  ASSERT_EQ(::stat((xdg + "/capsa").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  { Fd stale = raw_listener(xdg + "/capsa/1.sock"); }  // a crashed supervisor's: skipped
  err.str("");
  EXPECT_EQ(cli::run_audit({}, out, err), 0) << err.str();

  Fd other = raw_listener(xdg + "/capsa/2.sock");  // a second live one
  ASSERT_TRUE(other.valid());
  err.str("");
  EXPECT_EQ(cli::run_audit({}, out, err), 2);
  EXPECT_NE(err.str().find("--control"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("2.sock"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find(std::to_string(::getpid()) + ".sock"), std::string::npos) << err.str();
  EXPECT_EQ(cli::run_revoke({.control = "", .reason = "", .grant = 1}, out, err), 2);
}

}  // namespace
}  // namespace capsa::supervisor
