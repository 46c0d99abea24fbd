// Test helpers for the control socket and the /proc holder check: real
// child processes that hold, drop and pass on real sockets.
//
// Code after fork() uses raw syscalls only (no allocation, no locks), so it
// is safe even when the test process has threads (a supervisor loop).
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/fd.h"

namespace capsa::supervisor::testing {

// Polls `pred` (the supervisor notices hang-ups and exits on its own loop;
// a sandboxed worker takes a while to start) within a generous safety
// bound; callers assert the predicate afterwards, never a duration.
template <typename F>
bool eventually(F pred) {
  for (int i = 0; i < 12000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// Sends one byte `cmd` with `fds` attached (the fds are not closed).
inline bool send_with_fds(int sock, char cmd, const std::vector<int>& fds) {
  msghdr msg{};
  iovec iov{&cmd, 1};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 16)> control{};
  if (!fds.empty()) {
    if (fds.size() > 16) return false;
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

// A child process that holds fds for the test. Commands (one byte, over a
// SOCK_SEQPACKET pair; each is answered with 'k' once done, 'e' on error):
//   'h' + fds  hold the attached fds
//   'd'        close every held fd
//   'f' + sock send every held fd through `sock` (one message), then
//              close them and `sock`
// The child exits when the test closes its end (or the FdHolder dies).
class FdHolder {
 public:
  FdHolder() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return;
    Fd mine(sv[0]), theirs(sv[1]);
    pid_t pid = ::fork();
    if (pid < 0) return;
    if (pid == 0) {
      // Keep only stdio and the command socket (as fd 3): a copy of the
      // test's other fds (supervisor ports, worker ends) would keep their
      // sockets alive and show up as held by this process.
      int s = theirs.get();
      if (s != 3) {
        if (::dup3(s, 3, 0) != 3) ::_exit(120);
      } else if (::fcntl(3, F_SETFD, 0) != 0) {
        ::_exit(120);
      }
      ::close_range(4, ~0U, 0);
      serve(3);  // never returns
    }
    pid_ = pid;
    cmd_ = std::move(mine);
  }
  ~FdHolder() {
    cmd_.reset();
    if (pid_ > 0) {
      int st = 0;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  FdHolder(const FdHolder&) = delete;
  FdHolder& operator=(const FdHolder&) = delete;

  pid_t pid() const { return pid_; }
  bool ok() const { return pid_ > 0 && cmd_.valid(); }

  // Gives `fds` to the child; the test's copies are closed once it has them.
  bool hold(std::vector<Fd> fds) {
    std::vector<int> raw;
    for (const Fd& f : fds) raw.push_back(f.get());
    return command('h', raw);  // `fds` closes ours on return
  }
  bool drop_all() { return command('d', {}); }
  // Sends everything held through `sock` (closed here and in the child).
  bool forward(Fd sock) { return command('f', {sock.get()}); }

 private:
  bool command(char c, const std::vector<int>& fds) {
    if (!send_with_fds(cmd_.get(), c, fds)) return false;
    char ack = 0;
    ssize_t n;
    do {
      n = ::read(cmd_.get(), &ack, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 && ack == 'k';
  }

  [[noreturn]] static void serve(int sock) {
    int held[256];
    int nheld = 0;
    for (;;) {
      char cmd = 0;
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
      iovec iov{&cmd, 1};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ::_exit(0);
      int got[16];
      int ngot = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          ngot = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
          std::memcpy(got, CMSG_DATA(c), sizeof(int) * static_cast<std::size_t>(ngot));
        }
      }
      char ack = 'k';
      if (cmd == 'h') {
        for (int i = 0; i < ngot && nheld < 256; ++i) held[nheld++] = got[i];
      } else if (cmd == 'd') {
        for (int i = 0; i < nheld; ++i) ::close(held[i]);
        nheld = 0;
      } else if (cmd == 'f' && ngot == 1) {
        char f = 'f';
        iovec fiov{&f, 1};
        msghdr out{};
        out.msg_iov = &fiov;
        out.msg_iovlen = 1;
        alignas(cmsghdr) char ocontrol[CMSG_SPACE(sizeof(int) * 16)] = {};
        int count = nheld < 16 ? nheld : 16;
        if (count > 0) {
          out.msg_control = ocontrol;
          out.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<std::size_t>(count));
          cmsghdr* c = CMSG_FIRSTHDR(&out);
          c->cmsg_level = SOL_SOCKET;
          c->cmsg_type = SCM_RIGHTS;
          c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<std::size_t>(count));
          std::memcpy(CMSG_DATA(c), held, sizeof(int) * static_cast<std::size_t>(count));
        }
        if (::sendmsg(got[0], &out, MSG_NOSIGNAL) != 1) ack = 'e';
        for (int i = 0; i < nheld; ++i) ::close(held[i]);
        nheld = 0;
        ::close(got[0]);
      } else {
        for (int i = 0; i < ngot; ++i) ::close(got[i]);
        ack = 'e';
      }
      while (::write(sock, &ack, 1) < 0 && errno == EINTR) {
      }
    }
  }

  pid_t pid_ = -1;
  Fd cmd_;
};

// Receives one message's fds on `sock` (blocking), owned.
inline std::vector<Fd> receive_fds(int sock) {
  char b = 0;
  iovec iov{&b, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  std::vector<Fd> out;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.emplace_back(fd);
    }
  }
  return out;
}

}  // namespace capsa::supervisor::testing
