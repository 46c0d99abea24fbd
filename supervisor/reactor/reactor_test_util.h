// Shared helpers for the reactor tests.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "supervisor/reactor/reactor.h"

namespace capsa::supervisor::reactor_test {

struct Pipe {
  Fd read;
  Fd write;
};

inline Pipe make_pipe() {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  return {Fd(fds[0]), Fd(fds[1])};
}

inline void put(const Fd& fd, const char* bytes) {
  ASSERT_EQ(::write(fd.get(), bytes, std::strlen(bytes)), static_cast<ssize_t>(std::strlen(bytes)));
}

inline std::unique_ptr<Reactor> make(ReactorOptions options = {}) {
  auto r = Reactor::create(options);
  if (!r) {
    // Every test needs its reactor; going on would dereference nothing.
    std::fprintf(stderr, "Reactor::create failed: %s\n", r.error().to_string().c_str());
    std::abort();
  }
  return std::move(*r);
}

// Counts live copies, to see when the reactor destroys a callback.
struct Tracker {
  explicit Tracker(std::atomic<int>* live) : live_(live) { ++*live_; }
  Tracker(const Tracker& o) : live_(o.live_) { ++*live_; }
  ~Tracker() { --*live_; }
  std::atomic<int>* live_;
};

}  // namespace capsa::supervisor::reactor_test
