// capsa — the one owner of a file descriptor.
//
// Every fd in capsa lives in an `Fd` from the moment it exists (a syscall
// returned it, or it arrived in SCM_RIGHTS) until it is closed. There is no
// implicit conversion to `int` or `bool`, so an fd cannot be passed to a raw
// call or tested by accident; `get()` lends it, `release()` gives it away.
// A function that takes ownership takes `Fd` by value.
#pragma once

#include <utility>

namespace capsa {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  // Closes the fd. close() errors are ignored on purpose: on Linux the fd is
  // released even when close() fails, and retrying could close a reused fd.
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  // Gives the fd away; this Fd no longer owns anything.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  // Closes the owned fd (if any) and takes `fd`.
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace capsa
