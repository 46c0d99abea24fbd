// Helpers of the sandbox library's tests (sandbox_test.cc,
// sandbox_stdio_test.cc): sandbox_test_worker started in one of its modes,
// with a bootstrap channel whose other end the test reads.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/sandbox.h"
#include "sandbox/testdata/test_limits.h"
#include "tests/support/test_programs.h"

namespace capsa::sandbox::sandbox_test {

inline std::string worker_path() { return capsa::testing::test_program("sandbox_test_worker"); }

struct Channel {
  Fd ours;
  Fd theirs;
};

inline Channel channel() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  return {Fd(sv[0]), Fd(sv[1])};
}

inline std::string receive(const Fd& fd) {
  char buf[4096];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("<eof>");
}

inline SpecBuilder base(const std::string& mode, const std::string& name = "test-worker") {
  SpecBuilder b;
  b.name(name).program(worker_path()).args({"sandbox_test_worker", mode}).limits(
      capsa::testing::sandbox_test_limits());
  return b;
}

inline Worker start(const SpecBuilder& b, Fd bootstrap) {
  auto spec = b.build();
  if (!spec) {
    ADD_FAILURE() << spec.error().to_string();
    std::abort();
  }
  auto w = spawn(*spec, std::move(bootstrap));
  if (!w) {
    ADD_FAILURE() << w.error().to_string();
    std::abort();  // every later step of the test needs the worker
  }
  return std::move(*w);
}

// Waits for `w` to end. A failed wait fails the test; the status returned
// then is a default one, which no check below relies on.
inline ExitStatus ended(Worker& w) {
  auto st = w.wait();
  if (!st) {
    ADD_FAILURE() << "wait: " << st.error().to_string();
    return {};
  }
  return *st;
}

// Waits for `w` and expects a normal exit (any code).
inline void expect_exits_normally(Worker& w) {
  ExitStatus st = ended(w);
  EXPECT_EQ(st.kind, ExitKind::kExited) << st.to_string();
}

}  // namespace capsa::sandbox::sandbox_test
