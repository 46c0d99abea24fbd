// capsa — ports: one end of an AF_UNIX SOCK_SEQPACKET channel.
//
// A port is unforgeable (an fd), transferable (SCM_RIGHTS), message-framed
// (one send = one packet), FIFO, and the kernel tells us when the peer is
// gone. `Port` moves raw packets: bytes plus owned fds. Validation against an
// interface schema is the job of the layer above (validator.h); this layer
// guarantees only the packet-level rules:
//   - a packet larger than the port's limit is refused, at send and at
//     receive (a truncated packet is never delivered as if whole);
//   - every fd that arrives is owned by an `Fd` before anything can fail, and
//     a packet whose control data was truncated (MSG_CTRUNC) is refused with
//     all its fds closed;
//   - sending a port through itself or through its own peer is refused, the
//     same fd twice in one packet is refused, and fds that were sent are
//     consumed (closed in the sender).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa {

// Limits. Each is documented in docs/PROTOCOL.md, and tested at the limit and
// one past it.
inline constexpr std::size_t kDefaultMaxPacketBytes = 64 * 1024;
// At most this many fds in one packet. The kernel's own limit is 253
// (SCM_MAX_FD); we accept fewer so a hostile peer cannot pin that many of our
// fd slots per message.
inline constexpr std::size_t kMaxHandlesPerMessage = 16;

// One received or to-be-sent packet.
struct Packet {
  std::vector<std::byte> bytes;
  std::vector<Fd> fds;
};

class Port {
 public:
  Port() = default;
  // Takes ownership of a connected AF_UNIX SOCK_SEQPACKET socket. `peer_inode`
  // is the inode of the other end when it is known (make_channel knows it),
  // else 0; it lets send() refuse to send a port through its own peer.
  explicit Port(Fd fd, std::uint64_t peer_inode = 0);

  Port(Port&&) noexcept = default;
  Port& operator=(Port&&) noexcept = default;

  bool valid() const noexcept { return fd_.valid(); }
  const Fd& fd() const noexcept { return fd_; }
  // Gives up the socket, e.g. to send this port inside a message.
  Fd release_fd() noexcept { return std::move(fd_); }

  std::uint64_t inode() const noexcept { return inode_; }
  std::uint64_t peer_inode() const noexcept { return peer_inode_; }

  std::size_t max_packet_bytes() const noexcept { return max_packet_bytes_; }
  void set_max_packet_bytes(std::size_t n) noexcept { max_packet_bytes_ = n; }

  Result<void> set_nonblocking(bool on);

  // Sends one packet. On success every fd in `fds` is consumed; on failure
  // they are closed as well (the caller handed them over either way), so no
  // path leaks or duplicates a capability. Errors: kInvalidArgument (too big,
  // too many fds, duplicate fd, this port or its peer among the fds),
  // kClosed (peer gone), kWouldBlock (non-blocking and the queue is full),
  // kFailed.
  Result<void> send(std::span<const std::byte> bytes, std::vector<Fd> fds = {});

  // Receives one packet. Blocks unless the port is non-blocking (then
  // kWouldBlock). kClosed when the peer is gone and nothing is queued.
  // kBadMessage for a packet over the limit or with truncated control data;
  // that packet's fds are closed and the port stays usable.
  Result<Packet> receive();

  // Waits until the port is readable or `timeout_ms` passes (-1: forever).
  // Returns false on time-out.
  Result<bool> wait_readable(int timeout_ms);

  // True once the peer is known to be gone: a receive saw end-of-stream or a
  // send saw EPIPE/ECONNRESET, or a poll now reports POLLHUP. Can be asked at
  // any time after the fact.
  bool peer_closed();

 private:
  Fd fd_;
  std::uint64_t inode_ = 0;
  std::uint64_t peer_inode_ = 0;
  std::size_t max_packet_bytes_ = kDefaultMaxPacketBytes;
  bool peer_closed_ = false;
};

// The entangled pair of a new channel, both ends close-on-exec.
Result<std::pair<Port, Port>> make_channel();

// Inode of a socket fd (what /proc/PID/fd shows as socket:[N]), 0 if `fd` is
// not a socket.
std::uint64_t socket_inode(const Fd& fd);

}  // namespace capsa
