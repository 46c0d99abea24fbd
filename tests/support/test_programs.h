// Test support: where the helper programs built next to a test binary are.
//
//   std::string worker = capsa::testing::test_program("sandbox_test_worker");
//
// The directory is $CAPSA_TEST_BIN_DIR when set and not empty (the
// unprivileged pass, sandbox/tools/run_unprivileged.cc, copies the test and
// its helpers where uid 65534 can read them and sets it), else the directory
// of the running test binary.
#pragma once

#include <string>
#include <string_view>

namespace capsa::testing {

// The directory, absolute, without a trailing slash.
std::string test_bin_dir();

// test_bin_dir() + "/" + name.
std::string test_program(std::string_view name);

}  // namespace capsa::testing
