// capsa — one fd in an SCM_RIGHTS control message, for the raw senders that
// do not go through Port: the in-sandbox launcher's status record (after the
// fork, where nothing may allocate), the raw baselines of bench/port and the
// sandbox test worker. (Port::send builds its own, for up to
// kMaxHandlesPerMessage owned fds.) Header-only and allocation-free, so
// programs that link nothing of capsa can use it.
#pragma once

#include <sys/socket.h>

#include <cstring>

namespace capsa {

// Control-message storage for one passed fd. `attach` points a msghdr at
// it, so it must outlive the sendmsg (or recvmsg) that uses that msghdr.
struct OneFdControl {
  alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(int))] = {};

  // Makes `msg` carry `fd`. The fd is lent, not consumed: the kernel puts a
  // new reference in the message and the caller still closes its own.
  void attach(msghdr& msg, int fd) noexcept {
    msg.msg_control = bytes;
    msg.msg_controllen = sizeof bytes;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
};

}  // namespace capsa
