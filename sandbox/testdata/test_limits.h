// capsa::sandbox tests — explicit limits for tests that do not test limits.
//
// The sandbox has no default limits (spec.h, Limits): every caller states
// them. These are the values the sandbox itself used to default to, so the
// tests that took them run as before: roomy enough not to be what a test
// trips over on a loaded machine, small enough to stop a runaway worker.
// Tests of a limit start from these and change the one they test; the
// policy layer's defaults (policy/limits.h) are tighter.
#pragma once

#include <cstdint>

#include "sandbox/spec.h"

namespace capsa::testing {

inline sandbox::Limits sandbox_test_limits() {
  return {.address_space_bytes = 1ull << 30,
          .cpu_seconds = 30,
          .wall_seconds = 60,
          .max_processes = 64,
          .max_open_files = 256,
          .max_file_size_bytes = 16ull << 20};
}

}  // namespace capsa::testing
