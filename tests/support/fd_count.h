// Test support: count this process's open fds, to assert nothing leaked.
#pragma once

#include <cstddef>
#include <string>

namespace capsa::testing {

// Number of entries in /proc/self/fd (not counting the directory fd used to
// read it).
std::size_t open_fd_count();

// A readable list of /proc/self/fd entries and their targets, for failure
// messages ("3 -> socket:[1234]").
std::string describe_open_fds();

// Records the fd count on construction; `leaked()` is the growth since.
class FdLeakCheck {
 public:
  FdLeakCheck() : before_(open_fd_count()) {}
  long leaked() const {
    return static_cast<long>(open_fd_count()) - static_cast<long>(before_);
  }

 private:
  std::size_t before_;
};

}  // namespace capsa::testing
