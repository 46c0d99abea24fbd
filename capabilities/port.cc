#include "capabilities/port.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "capabilities/sys.h"

namespace capsa {
namespace {

// Room for at least one fd more than we accept (CMSG_SPACE rounds up, so a
// little more): a packet that carries more than kMaxHandlesPerMessage fds
// either fits (we count the surplus and refuse, closing them all) or
// overflows it, which sets MSG_CTRUNC; the kernel then drops the fds that
// did not fit without installing them in our table.
constexpr std::size_t kControlBytes = CMSG_SPACE(sizeof(int) * (kMaxHandlesPerMessage + 1));

}  // namespace

std::uint64_t socket_inode(const Fd& fd) {
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
  return st.st_ino;
}

Port::Port(Fd fd, std::uint64_t peer_inode)
    : fd_(std::move(fd)), inode_(socket_inode(fd_)), peer_inode_(peer_inode) {}

Result<void> Port::set_nonblocking(bool on) {
  CAPSA_ASSIGN_OR_RETURN(const int flags,
                         sys("fcntl", "F_GETFL", [&] { return ::fcntl(fd_.get(), F_GETFL); }));
  const int want = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  CAPSA_TRY(sys("fcntl", "F_SETFL", [&] { return ::fcntl(fd_.get(), F_SETFL, want); }));
  return {};
}

Result<void> Port::send(std::span<const std::byte> bytes, std::vector<Fd> fds) {
  // `fds` is ours now: whatever happens below, it is closed on return.
  if (!fd_.valid()) return make_error(Errc::kClosed, "send on a port that was given away");
  if (bytes.size() > max_packet_bytes_) {
    return make_error(Errc::kInvalidArgument,
                      "packet of " + std::to_string(bytes.size()) + " bytes exceeds the port limit of " +
                          std::to_string(max_packet_bytes_));
  }
  if (fds.size() > kMaxHandlesPerMessage) {
    return make_error(Errc::kInvalidArgument, std::to_string(fds.size()) +
                                                  " handles in one message; the limit is " +
                                                  std::to_string(kMaxHandlesPerMessage));
  }
  int raw[kMaxHandlesPerMessage];
  std::uint64_t inode[kMaxHandlesPerMessage];
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (!fds[i].valid()) return make_error(Errc::kInvalidArgument, "handle " + std::to_string(i) + " is not an open fd");
    raw[i] = fds[i].get();
    inode[i] = socket_inode(fds[i]);
    // Sending a port through itself hands both ends to the peer; through its
    // own peer, the port lands in its own receive queue (a reference cycle the
    // kernel has to garbage-collect). Both are errors, never silently allowed.
    if (inode[i] != 0 && inode[i] == inode_) {
      return make_error(Errc::kInvalidArgument, "a port cannot be sent through itself");
    }
    if (inode[i] != 0 && peer_inode_ != 0 && inode[i] == peer_inode_) {
      return make_error(Errc::kInvalidArgument, "a port cannot be sent through its own peer");
    }
    // The same port twice, under one fd number or two (a dup). Sockets have
    // one inode each, so equal inodes mean the same port; two opens of one
    // file are distinct handles and stay allowed.
    for (std::size_t j = 0; j < i; ++j) {
      if (raw[j] == raw[i] || (inode[i] != 0 && inode[j] == inode[i])) {
        return make_error(Errc::kInvalidArgument, "the same handle is attached twice (" + std::to_string(j) +
                                                      " and " + std::to_string(i) + ")");
      }
    }
  }

  iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[kControlBytes];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    std::size_t len = sizeof(int) * fds.size();
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(len);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(len);
    std::memcpy(CMSG_DATA(cmsg), raw, len);
  }
  // MSG_NOSIGNAL: a peer that closed must give us EPIPE, not kill the
  // supervisor with SIGPIPE.
  auto rc = sys("sendmsg", "port", [&] { return ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL); });
  if (!rc) {
    if (rc.error().sys_errno == EPIPE || rc.error().sys_errno == ECONNRESET) {
      peer_closed_ = true;
      return make_error(Errc::kClosed, "the peer of this port is closed");
    }
    return std::unexpected(std::move(rc).error());
  }
  // SEQPACKET sends whole packets or fails; a short count would be a kernel bug.
  if (static_cast<std::size_t>(*rc) != bytes.size()) {
    return make_error(Errc::kFailed, "short sendmsg on a SOCK_SEQPACKET port");
  }
  return {};  // `fds` closes our copies: the handles now belong to the peer.
}

Result<Packet> Port::receive() {
  if (!fd_.valid()) return make_error(Errc::kClosed, "receive on a port that was given away");
  Packet packet;
  // Read into this thread's scratch buffer (grown once, never zero-filled),
  // then copy out exactly the bytes that arrived: zero-filling a 64 KiB
  // buffer per packet was the largest cost on the receive path. The buffer
  // is per thread, not per port, because a supervisor serves thousands of
  // ports from one thread and 64 KiB each would dominate its memory. One
  // byte more than the limit, so that an oversized packet is seen as such
  // rather than silently cut to fit.
  struct Scratch {
    std::unique_ptr<std::byte[]> data;
    std::size_t size = 0;
  };
  thread_local Scratch scratch;
  const std::size_t capacity = max_packet_bytes_ + 1;
  if (scratch.size < capacity) {
    scratch.data.reset(new std::byte[capacity]);  // default-initialised: no memset
    scratch.size = capacity;
  }
  iovec iov{scratch.data.get(), capacity};
  alignas(cmsghdr) char control[kControlBytes];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  // MSG_CMSG_CLOEXEC: received fds must never leak into a program we exec.
  auto rc = sys("recvmsg", "port", [&] { return ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC); });
  if (!rc) {
    if (rc.error().sys_errno == ECONNRESET) {
      peer_closed_ = true;
      return make_error(Errc::kClosed, "the peer of this port is closed");
    }
    return std::unexpected(std::move(rc).error());
  }
  // Own every fd that arrived before looking at anything else, so that each
  // return below closes them.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (std::size_t i = 0; i < n; ++i) {
      int fd = -1;
      std::memcpy(&fd, data + i * sizeof(int), sizeof(int));
      packet.fds.emplace_back(fd);
    }
  }
  if (*rc == 0 && packet.fds.empty() && (msg.msg_flags & MSG_TRUNC) == 0) {
    // SEQPACKET reports end-of-stream as a zero-length read, but a peer can
    // also send an empty packet. Only a peer that shut down is "closed"; an
    // empty packet is a bad message (an envelope is never empty), so a
    // hostile peer cannot fake a close to confuse our bookkeeping.
    pollfd p{fd_.get(), POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP)) != 0) {
      peer_closed_ = true;
      return make_error(Errc::kClosed, "the peer of this port is closed");
    }
    return make_error(Errc::kBadMessage, "empty packet");
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return make_error(Errc::kBadMessage, "control data truncated: more than " +
                                             std::to_string(kMaxHandlesPerMessage) +
                                             " handles attached; all were closed");
  }
  if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<std::size_t>(*rc) > max_packet_bytes_) {
    return make_error(Errc::kBadMessage,
                      "packet exceeds the port limit of " + std::to_string(max_packet_bytes_) + " bytes");
  }
  if (packet.fds.size() > kMaxHandlesPerMessage) {
    return make_error(Errc::kBadMessage, std::to_string(packet.fds.size()) + " handles attached; the limit is " +
                                             std::to_string(kMaxHandlesPerMessage));
  }
  packet.bytes.assign(scratch.data.get(), scratch.data.get() + *rc);
  return packet;
}

Result<bool> Port::wait_readable(int timeout_ms) {
  // poll() ignores fd -1: without this a given-away port would wait forever.
  if (!fd_.valid()) return make_error(Errc::kClosed, "wait on a port that was given away");
  pollfd p{fd_.get(), POLLIN, 0};
  CAPSA_ASSIGN_OR_RETURN(const int ready, sys("poll", "port", [&] { return ::poll(&p, 1, timeout_ms); }));
  return ready > 0;
}

bool Port::peer_closed() {
  if (peer_closed_ || !fd_.valid()) return peer_closed_;
  pollfd p{fd_.get(), 0, 0};
  // POLLHUP is reported even with no events requested. Packets the peer sent
  // before closing may still be queued: receive() delivers them first.
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP)) != 0) peer_closed_ = true;
  return peer_closed_;
}

Result<std::pair<Port, Port>> make_channel() {
  int sv[2];
  CAPSA_TRY(sys("socketpair", "AF_UNIX SOCK_SEQPACKET",
                [&] { return ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv); }));
  Fd a(sv[0]);
  Fd b(sv[1]);
  std::uint64_t ia = socket_inode(a);
  std::uint64_t ib = socket_inode(b);
  return std::pair<Port, Port>(Port(std::move(a), ib), Port(std::move(b), ia));
}

}  // namespace capsa
