#include "fuzz/fd_kinds.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "capabilities/handle.h"

namespace capsa::fuzz {
namespace {

Fd checked(int fd, const char* what) {
  if (fd < 0) {
    std::perror(what);
    std::abort();
  }
  return Fd(fd);
}

Fd socket_end(int type, std::vector<Fd>& peers) {
  int sv[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) checked(-1, "socketpair");
  peers.emplace_back(sv[1]);
  return Fd(sv[0]);
}

Fd memfd(unsigned seals) {
  Fd fd = checked(::memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING), "memfd_create");
  if (::write(fd.get(), "x", 1) != 1) checked(-1, "write memfd");
  if (seals != 0 && ::fcntl(fd.get(), F_ADD_SEALS, seals) != 0) checked(-1, "F_ADD_SEALS");
  return fd;
}

}  // namespace

Fd make_fd(FdKind kind, const char* file, std::vector<Fd>& peers) {
  switch (kind) {
    case FdKind::kPipeRead:
    case FdKind::kPipeWrite: {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) checked(-1, "pipe2");
      bool read_end = kind == FdKind::kPipeRead;
      peers.emplace_back(p[read_end ? 1 : 0]);
      return Fd(p[read_end ? 0 : 1]);
    }
    case FdKind::kSeqpacketEnd: return socket_end(SOCK_SEQPACKET, peers);
    case FdKind::kStreamEnd: return socket_end(SOCK_STREAM, peers);
    case FdKind::kDgramEnd: return socket_end(SOCK_DGRAM, peers);
    case FdKind::kListener: {
      Fd s = checked(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), "socket");
      // A length of just the family autobinds to an abstract name: listen()
      // refuses an unbound AF_UNIX socket.
      sockaddr addr{};
      addr.sa_family = AF_UNIX;
      if (::bind(s.get(), &addr, sizeof(sa_family_t)) != 0) checked(-1, "bind");
      if (::listen(s.get(), 1) != 0) checked(-1, "listen");
      return s;
    }
    case FdKind::kSealedMemfd: {
      auto blob = make_blob(std::as_bytes(std::span("blob", 4)), "fuzz");
      if (!blob) checked(-1, "make_blob");
      return std::move(*blob);
    }
    case FdKind::kUnsealedMemfd: return memfd(0);
    case FdKind::kWriteSealMemfd: return memfd(F_SEAL_WRITE);
    case FdKind::kDirectory: return checked(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open /");
    case FdKind::kOPath: return checked(::open(file, O_PATH | O_CLOEXEC), "open O_PATH");
    case FdKind::kEventfd: return checked(::eventfd(0, EFD_CLOEXEC), "eventfd");
    case FdKind::kReadOnlyFile: return checked(::open(file, O_RDONLY | O_CLOEXEC), "open O_RDONLY");
    case FdKind::kReadWriteFile: return checked(::open(file, O_RDWR | O_CLOEXEC), "open O_RDWR");
    case FdKind::kCount: break;
  }
  std::abort();
}

}  // namespace capsa::fuzz
