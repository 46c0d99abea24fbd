// capsa hostile worker — network attacks: TCP, UDP, netlink, packet sockets,
// and connecting to a Unix socket of the host (by path and abstract name).
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {
namespace {

long connect_in(int fd, const char* ip, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, ip, &sa.sin_addr);
  return ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
}

// TCP: the socket itself, then a host listener on loopback (the test passes
// its port) and an address outside the machine.
int tcp(const char* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = errno;
  if (fd < 0) {
    report("tcp socket=%s", outcome(fd, err));
    return 0;
  }
  long rc = connect_in(fd, "127.0.0.1", port != nullptr ? std::atoi(port) : 1);
  int lo_err = errno;
  int fd2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  long rc2 = connect_in(fd2, "192.0.2.1", 80);  // TEST-NET-1, never routed
  int ext_err = errno;
  report("tcp socket=ok connect_lo=%s connect_ext=%s", outcome(rc, lo_err),
         outcome(rc2, ext_err));
  return 0;
}

int udp(const char*) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int err = errno;
  if (fd < 0) {
    report("udp socket=%s", outcome(fd, err));
    return 0;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(53);
  ::inet_pton(AF_INET, "192.0.2.1", &sa.sin_addr);
  long rc = ::sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  err = errno;
  report("udp socket=ok sendto=%s", outcome(rc, err));
  return 0;
}

// Netlink route socket: the way to reconfigure interfaces and routes.
int netlink(const char*) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  int err = errno;
  if (fd < 0) {
    report("netlink socket=%s", outcome(fd, err));
    return 0;
  }
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  long rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa));
  err = errno;
  report("netlink socket=ok bind=%s", outcome(rc, err));
  return 0;
}

// Packet socket: raw frames on every interface.
int packet(const char*) {
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  int err = errno;
  report("packet socket=%s", outcome(fd, err));
  return 0;
}

// Creates an AF_UNIX stream socket and connects it to `name` (a path, or an
// abstract name); reports both steps.
void connect_unix(const char* attack, const char* name, bool abstract) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int socket_err = errno;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::size_t len = std::strlen(name);
  if (len + 2 > sizeof(sa.sun_path)) len = sizeof(sa.sun_path) - 2;
  std::memcpy(sa.sun_path + (abstract ? 1 : 0), name, len);
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len + (abstract ? 1 : 0));
  // Called even when socket() failed, so the filter always sees connect.
  long rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), addr_len);
  int err = errno;
  report("%s socket=%s connect=%s", attack, outcome(fd, socket_err), outcome(rc, err));
}

// A Unix socket the test listens on at a host path: the sandbox must not see
// that path.
int unix_path(const char* path) {
  connect_unix("unix_path", path != nullptr ? path : "/run/capsa.sock", false);
  return 0;
}

// An abstract Unix socket the test listens on: abstract names belong to the
// network namespace, so a fresh one must not reach the host's.
int unix_abstract(const char* name) {
  connect_unix("unix_abstract", name != nullptr ? name : "capsa", true);
  return 0;
}

}  // namespace

const AttackEntry kNetAttacks[] = {
    {"tcp", tcp},
    {"udp", udp},
    {"netlink", netlink},
    {"packet", packet},
    {"unix_path", unix_path},
    {"unix_abstract", unix_abstract},
    {nullptr, nullptr},
};

}  // namespace hostile
