// capsa sandbox suite — what every hostile test checks after its attack:
// the supervisor still starts and serves a well-behaved worker, and the test
// process leaked no fd and no child process.
#pragma once

#include <gtest/gtest.h>

#include "tests/sandbox/harness.h"
#include "tests/support/fd_count.h"

namespace capsa::sandbox::testing {

// Checks the aftermath of one attack. Construct before the attack, call
// check() after it (the fixtures below do it in TearDown).
class Aftermath {
 public:
  Aftermath();
  void check() const;

 private:
  capsa::testing::FdLeakCheck fds_;
};

class HostileTest : public ::testing::Test {
 protected:
  void TearDown() override { aftermath_.check(); }

 private:
  Aftermath aftermath_;
};

template <typename Param>
class HostileTestP : public ::testing::TestWithParam<Param> {
 protected:
  void TearDown() override { aftermath_.check(); }

 private:
  Aftermath aftermath_;
};

}  // namespace capsa::sandbox::testing
