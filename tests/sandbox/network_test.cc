// Hostile workers against the host's Unix sockets. (TCP, UDP, netlink and
// packet sockets: denied_syscalls_test.cc.) A worker cannot create a socket
// or connect one at all — its ports arrive already connected — so both
// calls are violations, and the host's listener sees no connection. (Were
// they allowed, the path is outside the filesystem view and abstract names
// belong to the fresh network namespace.)
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/sys.h"
#include "tests/sandbox/fixture.h"
#include "tests/support/temp_dir.h"

namespace capsa::sandbox::testing {
namespace {

// A listening Unix stream socket of the host; `abstract` binds "\0name".
Result<Fd> listen_unix(const std::string& name, bool abstract) {
  auto fd = sys_fd("socket", name, [] {
    return ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  });
  if (!fd) return fd;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path + (abstract ? 1 : 0), name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 1 : 0));
  auto bound = sys("bind", name, [&] {
    return ::bind(fd->get(), reinterpret_cast<const sockaddr*>(&sa), len);
  });
  if (!bound) return std::unexpected(bound.error());
  auto listening = sys("listen", name, [&] { return ::listen(fd->get(), 4); });
  if (!listening) return std::unexpected(listening.error());
  return fd;
}

// Nothing connected to the host listener.
void expect_no_connection(const Fd& listener) {
  int conn = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
  Fd owner(conn);
  EXPECT_EQ(conn, -1);
  EXPECT_EQ(errno, EAGAIN);
}

std::string unique_name() { return "capsa-hostile-" + std::to_string(std::random_device{}()); }

// Run with the default filter (socket and connect are violations) and with a
// policy that allows both (then the kernel answers: ENOENT for the path,
// ECONNREFUSED for the abstract name).
class HostUnixSocket : public HostileTestP<bool> {
 protected:
  bool allowed() const { return GetParam(); }
  // Runs `attack` against `target` and checks the verdict: with the default
  // filter EPERM and two reported violations; with both calls allowed, the
  // kernel's answer (`allowed_result`) and none. Either way nothing reached
  // the host's `listener`.
  void expect_unreachable(const char* attack, const std::string& target, const std::string& allowed_result,
                          const Fd& listener) {
    SpecBuilder b = hostile_spec(attack, {target});
    if (allowed()) b.allow_syscall("socket").allow_syscall("connect");
    auto spec = b.build();
    ASSERT_TRUE(spec) << spec.error().to_string();
    Outcome out = run_spec(*spec);
    if (allowed()) {
      EXPECT_EQ(out.reports, std::vector<std::string>{std::string(attack) + " " + allowed_result});
      EXPECT_TRUE(out.violations.empty());
    } else {
      EXPECT_EQ(out.reports, std::vector<std::string>{std::string(attack) + " socket=EPERM connect=EPERM"});
      EXPECT_EQ(syscall_names(out.violations), (std::vector<std::string>{"socket", "connect"}));
    }
    expect_no_connection(listener);
  }
};

TEST_P(HostUnixSocket, PathIsNotReachable) {
  capsa::testing::TempDir dir("capsa-unix");
  std::string path = dir.file("host.sock");
  auto listener = listen_unix(path, false);
  ASSERT_TRUE(listener) << listener.error().to_string();
  expect_unreachable("unix_path", path, "socket=ok connect=ENOENT", *listener);
}

TEST_P(HostUnixSocket, AbstractNameIsNotReachable) {
  std::string name = unique_name();
  auto listener = listen_unix(name, true);
  ASSERT_TRUE(listener) << listener.error().to_string();
  expect_unreachable("unix_abstract", name, "socket=ok connect=ECONNREFUSED", *listener);
}

INSTANTIATE_TEST_SUITE_P(Hostile, HostUnixSocket, ::testing::Bool(), [](const auto& p) {
  return p.param ? std::string("SocketAllowed") : std::string("DefaultFilter");
});

}  // namespace
}  // namespace capsa::sandbox::testing
