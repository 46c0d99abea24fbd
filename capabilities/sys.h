// capsa — the syscall helper.
//
// `sys("openat", path, [&] { return ::openat(...); })` runs the call, retries
// it while it fails with EINTR, and turns -1 into an Error carrying errno,
// the call's name and its context (a path, a worker name). Use it for every
// syscall whose failure is reported to a caller.
//
// Not for post-fork code: it allocates on failure. The sandbox launcher and
// anything between fork() and exec() use raw calls and report over a pipe.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <type_traits>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa {

Error sys_error(std::string_view call, std::string_view context, int err);

template <typename F>
auto sys(std::string_view call, std::string_view context, F&& f)
    -> Result<std::invoke_result_t<F&>> {
  for (;;) {
    auto rc = f();
    if (rc != -1) return rc;
    if (errno == EINTR) continue;
    return std::unexpected(sys_error(call, context, errno));
  }
}

// Same, for calls that return a new fd: the fd is owned before returning.
template <typename F>
Result<Fd> sys_fd(std::string_view call, std::string_view context, F&& f) {
  CAPSA_ASSIGN_OR_RETURN(auto rc, sys(call, context, std::forward<F>(f)));
  return Fd(static_cast<int>(rc));
}

}  // namespace capsa
