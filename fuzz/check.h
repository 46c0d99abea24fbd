// capsa fuzzing — the checks the targets share: "this must be valid JSON"
// and "no fd leaked". nlohmann::json refuses invalid UTF-8, control
// characters in strings and trailing bytes, so a writer that lets a hostile
// byte through unescaped fails here.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

namespace capsa::fuzz {

// The parsed value; aborts (a libFuzzer finding) with `what` and the text
// when `text` is not one JSON value.
inline nlohmann::json parse_or_abort(std::string_view text, const char* what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "%s is not valid JSON (%s):\n%.*s\n", what, e.what(),
                 static_cast<int>(text.size()), text.data());
    std::abort();
  }
}

[[noreturn]] inline void fail(const char* target, const char* what) {
  std::fprintf(stderr, "%s: %s\n", target, what);
  std::abort();
}

// The lowest free fd number. open() and friends always take the lowest, so
// if this differs after an input from before it, the code under test kept
// an fd it opened (a leak), without scanning /proc/self/fd per input.
inline int lowest_free_fd() {
  int fd = ::dup(STDERR_FILENO);
  if (fd < 0) fail("fuzz", "dup");
  ::close(fd);
  return fd;
}

// How many fds this process has open (/proc/self/fd, less the one reading
// it). Costs a directory read: for when lowest_free_fd() cannot tell.
inline int open_fd_count() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) fail("fuzz", "opendir /proc/self/fd");
  int n = -1;  // the directory's own fd
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

}  // namespace capsa::fuzz
