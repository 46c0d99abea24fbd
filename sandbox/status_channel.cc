#include "sandbox/status_channel.h"

#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "capabilities/sys.h"

namespace capsa::sandbox::detail {

Result<std::optional<ReceivedRecord>> read_status_record(const Fd& socket) {
  ReceivedRecord out;
  iovec iov{&out.record, sizeof out.record};
  // Room for a few fds so that surplus ones are received (and closed), not
  // left in the kernel as a truncated message.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  auto n = sys("recvmsg", "launcher status", [&] {
    return ::recvmsg(socket.get(), &msg, MSG_CMSG_CLOEXEC | MSG_TRUNC);
  });
  if (!n) {
    if (n.error().sys_errno == ECONNRESET) return std::nullopt;
    return std::unexpected(std::move(n.error()));
  }
  std::vector<Fd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  if (*n == 0 && fds.empty()) return std::nullopt;
  if (static_cast<std::size_t>(*n) != sizeof out.record || (msg.msg_flags & MSG_CTRUNC) != 0 ||
      fds.size() > 1) {
    return make_error(Errc::kBadMessage, "launcher status: malformed record");
  }
  auto type = static_cast<StatusType>(out.record.type);
  bool wants_fd = type == StatusType::kListener;
  if (type < StatusType::kListener || type > StatusType::kExit || wants_fd != (fds.size() == 1)) {
    return make_error(Errc::kBadMessage, "launcher status: unexpected record or fd");
  }
  out.record.text[sizeof out.record.text - 1] = '\0';
  if (wants_fd) out.fd = std::move(fds[0]);
  return out;
}

}  // namespace capsa::sandbox::detail
