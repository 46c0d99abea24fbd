// The control socket's file (socket.h): mode 0600 and removal, the peer
// checks both ways, stale and live sockets, unsafe and unusable paths, and
// the private default directory.
#include "supervisor/control/socket.h"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "supervisor/control/server_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

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

}  // namespace
}  // namespace capsa::supervisor
