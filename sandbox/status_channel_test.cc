// The supervisor's reading of launcher status records: every malformed
// packet is refused with its fds closed, and only a real hang-up is
// end-of-stream.
#include "sandbox/status_channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "tests/support/fd_count.h"

namespace capsa::sandbox::detail {
namespace {

struct Pair {
  Port ours;
  Fd launcher;
};

Pair pair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  return {status_port(Fd(sv[0])), Fd(sv[1])};
}

// Sends `len` bytes of `rec` with `fds` attached, as the launcher would.
void send_raw(const Fd& to, const void* bytes, std::size_t len, std::vector<int> fds = {}) {
  iovec iov{const_cast<void*>(bytes), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ASSERT_EQ(::sendmsg(to.get(), &msg, 0), static_cast<ssize_t>(len));
}

StatusRecord record(StatusType type) {
  StatusRecord r;
  r.type = static_cast<std::uint32_t>(type);
  return r;
}

TEST(StatusChannel, ReadsARecordAndItsListenerFd) {
  capsa::testing::FdLeakCheck leaks;
  {
    auto p = pair();
    int pipefd[2];
    ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    Fd a(pipefd[0]), b(pipefd[1]);
    auto rec = record(StatusType::kListener);
    send_raw(p.launcher, &rec, sizeof rec, {a.get()});
    auto got = read_status_record(p.ours);
    ASSERT_TRUE(got) << got.error().to_string();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->record.type, static_cast<std::uint32_t>(StatusType::kListener));
    EXPECT_TRUE((*got)->fd.valid());
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(StatusChannel, AnEmptyPacketIsABadRecordNotEndOfStream) {
  auto p = pair();
  send_raw(p.launcher, "", 0);
  auto got = read_status_record(p.ours);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kBadMessage) << got.error().to_string();
  // A real record after it is still read.
  auto rec = record(StatusType::kStarted);
  send_raw(p.launcher, &rec, sizeof rec);
  auto next = read_status_record(p.ours);
  ASSERT_TRUE(next && next->has_value());
  EXPECT_EQ((*next)->record.type, static_cast<std::uint32_t>(StatusType::kStarted));
}

TEST(StatusChannel, HangUpIsEndOfStream) {
  auto p = pair();
  p.launcher.reset();
  auto got = read_status_record(p.ours);
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_FALSE(got->has_value());
}

TEST(StatusChannel, RefusesWrongSizesUnknownTypesAndStrayFdsClosingThem) {
  capsa::testing::FdLeakCheck leaks;
  {
    auto p = pair();
    auto rec = record(StatusType::kStarted);
    send_raw(p.launcher, &rec, sizeof rec - 1);  // short
    char big[sizeof(StatusRecord) + 1] = {};
    std::memcpy(big, &rec, sizeof rec);
    send_raw(p.launcher, big, sizeof big);  // over the port's limit
    auto unknown = record(static_cast<StatusType>(9));
    send_raw(p.launcher, &unknown, sizeof unknown);
    int pipefd[2];
    ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
    Fd a(pipefd[0]), b(pipefd[1]);
    send_raw(p.launcher, &rec, sizeof rec, {a.get()});  // kStarted carries no fd
    auto listener = record(StatusType::kListener);
    send_raw(p.launcher, &listener, sizeof listener);  // kListener without its fd
    send_raw(p.launcher, &listener, sizeof listener, {a.get(), b.get()});  // two fds
    for (int i = 0; i < 6; ++i) {
      auto got = read_status_record(p.ours);
      ASSERT_FALSE(got) << "packet " << i << " was accepted";
      EXPECT_EQ(got.error().code, Errc::kBadMessage) << i << ": " << got.error().to_string();
    }
  }
  // Every fd that arrived with a refused record was closed.
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

}  // namespace
}  // namespace capsa::sandbox::detail
