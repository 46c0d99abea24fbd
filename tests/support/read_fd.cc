#include "tests/support/read_fd.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace capsa::testing {
namespace {

std::string read_fd(const Fd& fd, bool wait_for_eof) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      return out;
    } else if (errno == EAGAIN) {
      if (!wait_for_eof) return out;
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) return out + "<poll failed>";
    } else if (errno != EINTR) {
      return out + "<read failed>";
    }
  }
}

}  // namespace

std::string read_to_eof(const Fd& fd) { return read_fd(fd, true); }

std::string read_available(const Fd& fd) { return read_fd(fd, false); }

}  // namespace capsa::testing
