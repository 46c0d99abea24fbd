// Test support for the validator and call plumbing tests: a real channel, a
// hostile sender that bypasses Port's sender-side checks, and builders for
// the test interface's payloads (testdata/echo.fbs).
#pragma once

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/interface_registry.h"
#include "capabilities/message.h"
#include "capabilities/port.h"
#include "capabilities/validator.h"
#include "echo_bfbs.h"
#include "echo_generated.h"
#include "envelope_generated.h"
#include "tests/support/fd_count.h"

namespace capsa::testing {

// Sends a packet with sendmsg directly, as a hostile peer would: any bytes,
// any fds (duplicates, hundreds, wrong kinds).
inline void raw_send(const Fd& sock, std::span<const std::byte> bytes, const std::vector<int>& fds) {
  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ASSERT_EQ(::sendmsg(sock.get(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()))
      << std::strerror(errno);
}

inline std::vector<std::uint8_t> finished(flatbuffers::FlatBufferBuilder& fbb) {
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

inline std::vector<std::uint8_t> echo_request(std::string_view text, std::uint64_t value = 7) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreateEchoRequest(fbb, fbb.CreateString(text.data(), text.size()), value));
  return finished(fbb);
}

inline std::vector<std::uint8_t> echo_reply(std::string_view text, std::uint64_t value = 7) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(test::CreateEchoReply(fbb, fbb.CreateString(text.data(), text.size()), value));
  return finished(fbb);
}

inline std::vector<std::uint8_t> put_request(std::optional<std::uint32_t> port,
                                             std::optional<std::uint32_t> file,
                                             const std::vector<std::uint32_t>& blobs) {
  flatbuffers::FlatBufferBuilder fbb;
  auto b = blobs.empty() ? 0 : fbb.CreateVector(blobs).o;
  test::PutRequestBuilder pb(fbb);
  if (port) pb.add_port(*port);
  if (file) pb.add_file(*file);
  if (b != 0) pb.add_blobs(flatbuffers::Offset<flatbuffers::Vector<std::uint32_t>>(b));
  fbb.Finish(pb.Finish());
  return finished(fbb);
}

inline Fd memfd_blob(std::string_view contents) {
  auto r = make_blob(std::as_bytes(std::span(contents.data(), contents.size())), "test");
  return r ? std::move(*r) : Fd();
}
inline Fd unsealed_memfd() {
  Fd fd(::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  (void)!::write(fd.get(), "x", 1);
  return fd;
}
inline Fd readonly_file() { return Fd(::open("/etc/hostname", O_RDONLY | O_CLOEXEC)); }
inline Fd writable_file() {
  char path[] = "/tmp/capsa-wire-XXXXXX";
  Fd fd(::mkstemp(path));
  ::unlink(path);
  return fd;
}

// A channel and the test interface; `deliver` sends through the real kernel
// and validates on the other side.
class WireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.load(schemas::echo_bfbs()));
    iface_ = registry_.find("capsa.test.Echo");
    ASSERT_NE(iface_, nullptr);
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    a_ = std::move(ch->first);
    b_ = std::move(ch->second);
    leaks_.emplace();
  }

  std::uint32_t hash(const char* table) { return payload_type_hash(table); }

  Header call(std::uint32_t method, const char* table, std::uint64_t id = 1) {
    return Header{MessageKind::kCall, id, method, hash(table), Errc::kFailed, {}};
  }

  std::vector<std::byte> envelope(const Header& h, std::span<const std::uint8_t> payload,
                                  std::vector<HandleKind> kinds = {}) {
    auto bytes = encoder_.encode(h, payload, kinds);
    return {bytes.begin(), bytes.end()};
  }

  // Sends `bytes` with `fds` (closed here after sending: the receiver holds
  // its own copies), receives, validates.
  Result<Message> deliver(std::span<const std::byte> bytes, std::vector<Fd> fds = {},
                          ValidateOptions options = {}) {
    std::vector<int> raw;
    for (auto& f : fds) raw.push_back(f.get());
    raw_send(a_.fd(), bytes, raw);
    fds.clear();
    auto packet = b_.receive();
    if (!packet) return std::unexpected(packet.error());
    return validate(std::move(*packet), *iface_, options);
  }

  // The exact verdict, then: a valid call still passes, and no fd leaked.
  void expect_refused(const Result<Message>& r, Errc code, std::string_view message) {
    ASSERT_FALSE(r) << "accepted a message that should be refused";
    EXPECT_EQ(r.error().code, code) << r.error().to_string();
    EXPECT_EQ(r.error().message, message);
  }
  void expect_still_works_and_no_leak() {
    auto ok = deliver(envelope(call(0, "capsa.test.EchoRequest", 99), echo_request("still")));
    ASSERT_TRUE(ok) << ok.error().to_string();
    EXPECT_EQ(ok->payload_as<test::EchoRequest>()->text()->str(), "still");
    EXPECT_EQ(ok->call_id(), 99u);
    EXPECT_EQ(leaks_->leaked(), 0) << describe_open_fds();
  }

  InterfaceRegistry registry_;
  const Interface* iface_ = nullptr;
  Port a_, b_;
  Encoder encoder_;
  std::optional<FdLeakCheck> leaks_;
};

}  // namespace capsa::testing
