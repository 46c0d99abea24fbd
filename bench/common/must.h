// Shared by the benchmarks: a benchmark that cannot set itself up has no
// figure to give, so it says why and exits 1 (its ctest smoke run fails).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "capabilities/error.h"

namespace capsa::bench {

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::exit(1);
}

// The value of `r`, or die() naming `what` and the error.
template <typename T>
T must(Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
  return std::move(*r);
}

}  // namespace capsa::bench
