#include "capabilities/port.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/testdata/wire_test_util.h"
#include "tests/support/fd_count.h"
#include "tests/support/result_matchers.h"

namespace capsa {
namespace {

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string as_string(const Packet& p) {
  return {reinterpret_cast<const char*>(p.bytes.data()), p.bytes.size()};
}

Fd dev_null() { return Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

using ::testing::HasSubstr;
using testing::ErrorIs;
using testing::raw_send;  // sendmsg as a hostile peer would: no sender-side checks

// The port still carries a plain message both ways after whatever happened.
void expect_still_works(Port& a, Port& b) {
  ASSERT_TRUE(a.send(as_bytes("ping")));
  auto got = b.receive();
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(as_string(*got), "ping");
  ASSERT_TRUE(b.send(as_bytes("pong")));
  auto back = a.receive();
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(as_string(*back), "pong");
}

// Runs `body` on the two ends of a fresh channel, then checks that no fd
// leaked: every handle the body sent, received or had refused is closed.
template <typename Body>
void with_channel(Body body) {
  testing::FdLeakCheck leaks;
  {
    auto ch = make_channel();
    ASSERT_TRUE(ch) << ch.error().to_string();
    body(ch->first, ch->second);
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(Port, ChannelCarriesPacketsInOrder) {
  with_channel([](Port& a, Port& b) {
    EXPECT_EQ(a.peer_inode(), b.inode());
    EXPECT_EQ(b.peer_inode(), a.inode());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(a.send(as_bytes("m" + std::to_string(i))));
    for (int i = 0; i < 10; ++i) {
      auto p = b.receive();
      ASSERT_TRUE(p);
      EXPECT_EQ(as_string(*p), "m" + std::to_string(i));
      EXPECT_TRUE(p->fds.empty());
    }
  });
}

TEST(Port, BothEndsAreCloseOnExec) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  EXPECT_TRUE(::fcntl(ch->first.fd().get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(ch->second.fd().get(), F_GETFD) & FD_CLOEXEC);
}

TEST(Port, SentHandlesAreConsumedAndArriveCloseOnExec) {
  with_channel([](Port& a, Port& b) {
    Fd file = dev_null();
    int sent_number = file.get();
    std::vector<Fd> fds;
    fds.push_back(std::move(file));
    ASSERT_TRUE(a.send(as_bytes("with handle"), std::move(fds)));
    EXPECT_EQ(::fcntl(sent_number, F_GETFD), -1) << "the sender still holds the handle it sent";
    auto p = b.receive();
    ASSERT_TRUE(p);
    ASSERT_EQ(p->fds.size(), 1u);
    EXPECT_TRUE(::fcntl(p->fds[0].get(), F_GETFD) & FD_CLOEXEC);
  });
}

TEST(Port, HandleLimitAtLimitAndOnePast) {
  with_channel([](Port& a, Port& b) {
    std::vector<Fd> at_limit;
    for (std::size_t i = 0; i < kMaxHandlesPerMessage; ++i) at_limit.push_back(dev_null());
    ASSERT_TRUE(a.send(as_bytes("16"), std::move(at_limit)));
    auto p = b.receive();
    ASSERT_TRUE(p);
    EXPECT_EQ(p->fds.size(), kMaxHandlesPerMessage);

    std::vector<Fd> over;
    for (std::size_t i = 0; i < kMaxHandlesPerMessage + 1; ++i) over.push_back(dev_null());
    EXPECT_THAT(a.send(as_bytes("17"), std::move(over)), ErrorIs(Errc::kInvalidArgument));

    // The same one past the limit, sent raw by a hostile peer.
    std::vector<Fd> owned;
    std::vector<int> raw;
    for (std::size_t i = 0; i < kMaxHandlesPerMessage + 1; ++i) {
      owned.push_back(dev_null());
      raw.push_back(owned.back().get());
    }
    raw_send(a.fd(), as_bytes("17 raw"), raw);
    owned.clear();
    EXPECT_THAT(b.receive(), ErrorIs(Errc::kBadMessage));
    expect_still_works(a, b);
  });
}

TEST(Port, TwoHundredFiftyFdsInOnePacketAreAllClosed) {
  with_channel([](Port& a, Port& b) {
    std::vector<Fd> owned;
    std::vector<int> raw;
    for (int i = 0; i < 250; ++i) {
      owned.push_back(dev_null());
      raw.push_back(owned.back().get());
    }
    raw_send(a.fd(), as_bytes("flood"), raw);
    owned.clear();  // the sender's copies; only the in-flight ones remain
    EXPECT_THAT(b.receive(), ErrorIs(Errc::kBadMessage, HasSubstr("handles attached")));
    expect_still_works(a, b);
  });
}

TEST(Port, PacketSizeAtLimitAndOnePast) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  auto& [a, b] = *ch;
  std::string at_limit(kDefaultMaxPacketBytes, 'x');
  ASSERT_TRUE(a.send(as_bytes(at_limit)));
  auto p = b.receive();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->bytes.size(), kDefaultMaxPacketBytes);

  std::string over(kDefaultMaxPacketBytes + 1, 'y');
  EXPECT_THAT(a.send(as_bytes(over)), ErrorIs(Errc::kInvalidArgument));

  // A hostile peer sends it anyway: refused at receive, never cut to fit.
  raw_send(a.fd(), as_bytes(over), {});
  EXPECT_THAT(b.receive(), ErrorIs(Errc::kBadMessage, HasSubstr("exceeds the port limit")));
  expect_still_works(a, b);
}

TEST(Port, OversizedPacketWithHandlesClosesThem) {
  with_channel([](Port& a, Port& b) {
    b.set_max_packet_bytes(128);
    Fd f = dev_null();
    raw_send(a.fd(), as_bytes(std::string(129, 'z')), {f.get()});
    f = Fd();
    EXPECT_THAT(b.receive(), ErrorIs(Errc::kBadMessage));
    expect_still_works(a, b);
  });
}

// A port sent through itself, or through its own peer, would keep its
// channel alive from inside (a MessagePort crash of the Web): refused at
// send, and the channel still works.
struct SelfSendCase {
  const char* name;
  bool send_peer;      // send a copy of the peer's end, else of the sender's own
  const char* reason;  // in the error message
};

void PrintTo(const SelfSendCase& c, std::ostream* os) { *os << c.name; }

class PortSelfSend : public ::testing::TestWithParam<SelfSendCase> {};

TEST_P(PortSelfSend, IsRefused) {
  const SelfSendCase& c = GetParam();
  with_channel([&c](Port& a, Port& b) {
    std::vector<Fd> fds;
    fds.emplace_back(::fcntl((c.send_peer ? b : a).fd().get(), F_DUPFD_CLOEXEC, 0));
    EXPECT_THAT(a.send(as_bytes(c.name), std::move(fds)), ErrorIs(Errc::kInvalidArgument, HasSubstr(c.reason)));
    expect_still_works(a, b);
  });
}

INSTANTIATE_TEST_SUITE_P(Port, PortSelfSend,
                         ::testing::Values(SelfSendCase{"ThroughItself", false, "through itself"},
                                           SelfSendCase{"ThroughItsPeer", true, "its own peer"}),
                         [](const ::testing::TestParamInfo<SelfSendCase>& p) { return p.param.name; });

TEST(Port, TheSameHandleTwiceIsRefused) {
  with_channel([](Port& a, Port& b) {
    // The same port under two fd numbers.
    auto other = make_channel();
    ASSERT_TRUE(other);
    Fd port = other->first.release_fd();
    Fd dup(::fcntl(port.get(), F_DUPFD_CLOEXEC, 0));
    std::vector<Fd> fds;
    fds.push_back(std::move(port));
    fds.push_back(std::move(dup));
    EXPECT_THAT(a.send(as_bytes("twice"), std::move(fds)), ErrorIs(Errc::kInvalidArgument, HasSubstr("attached twice")));
    expect_still_works(a, b);
  });
}

TEST(Port, PeerClosedIsDistinctAndQueuedPacketsComeFirst) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  auto& [a, b] = *ch;
  ASSERT_TRUE(a.send(as_bytes("last words")));
  a = Port();
  EXPECT_TRUE(b.peer_closed());
  auto p = b.receive();
  ASSERT_TRUE(p);
  EXPECT_EQ(as_string(*p), "last words");
  EXPECT_THAT(b.receive(), ErrorIs(Errc::kClosed));
  EXPECT_TRUE(b.peer_closed());
  EXPECT_THAT(b.send(as_bytes("anyone?")), ErrorIs(Errc::kClosed));
}

TEST(Port, SendToAClosedPeerDoesNotRaiseSigpipe) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  ch->second = Port();
  // A SIGPIPE would kill the test binary here.
  EXPECT_THAT(ch->first.send(as_bytes("x")), ErrorIs(Errc::kClosed));
}

TEST(Port, EmptyPacketIsABadMessageNotAClose) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  auto& [a, b] = *ch;
  raw_send(a.fd(), {}, {});
  EXPECT_THAT(b.receive(), ErrorIs(Errc::kBadMessage));
  EXPECT_FALSE(b.peer_closed());
  expect_still_works(a, b);
}

TEST(Port, NonBlockingReceiveSaysWouldBlock) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  auto& [a, b] = *ch;
  ASSERT_TRUE(b.set_nonblocking(true));
  EXPECT_THAT(b.receive(), ErrorIs(Errc::kWouldBlock));
  auto ready = b.wait_readable(0);
  ASSERT_TRUE(ready);
  EXPECT_FALSE(*ready);
  expect_still_works(a, b);
}

TEST(Port, WorksAcrossProcesses) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  auto& [a, b] = *ch;
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    a = Port();
    auto p = b.receive();
    if (!p) ::_exit(2);
    ::_exit(b.send(p->bytes, std::move(p->fds)) ? 0 : 3);
  }
  b = Port();
  std::vector<Fd> fds;
  fds.push_back(dev_null());
  ASSERT_TRUE(a.send(as_bytes("echo me"), std::move(fds)));
  auto back = a.receive();
  ASSERT_TRUE(back);
  EXPECT_EQ(as_string(*back), "echo me");
  EXPECT_EQ(back->fds.size(), 1u);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace capsa
