// capsa::sandbox — the seccomp filter every worker runs under.
//
// An allowlist good for ordinary dynamically linked C/C++ programs (libc
// and libstdc++ start-up, threads, memory, files they can see, time,
// signals to processes of their own sandbox, capsa ports: sendmsg/recvmsg
// with SCM_RIGHTS, memfd + seals, epoll/poll/eventfd/timerfd). Everything
// else goes to the supervisor through a seccomp user-notification
// (SECCOMP_RET_USER_NOTIF), which answers EPERM or kills the sandbox; the
// supervisor never lets a notified call continue.
//
// Argument filters where a call is dangerous only with some arguments:
//   - clone: no CLONE_NEW* flags (namespaces are the sandbox's business);
//     clone3 fails with ENOSYS (its flags are in memory, which seccomp
//     cannot read) so libc falls back to clone;
//   - socketpair: AF_UNIX only; socket/connect/bind are not allowed at all;
//   - ioctl: a short list of harmless requests; TIOCSTI (injecting input
//     into a terminal) is never allowed;
//   - prctl: PR_SET_NAME/PR_GET_NAME/PR_GET_DUMPABLE/PR_SET_VMA only;
//   - prlimit64: reading only (new limit pointer NULL);
//   - execve: only with the launcher's own pointer to the program path, i.e.
//     the one exec that starts the worker. The launcher puts the path at a
//     random address (about 44 bits of entropy, see launcher_main.cc) that
//     the worker never sees; a worker that guesses it and rebuilds a string
//     there can exec another visible binary, but it stays under this filter,
//     its rlimits and namespaces, so this is no escape; every wrong guess is
//     a reported violation.
// Integer arguments are compared on their low 32 bits (the kernel reads an
// `int`/`unsigned int`; a worker must not dodge a rule with high bits set).
// A non-x86_64 syscall (int 0x80, x32) kills the process with SIGSYS: these
// calls never reach the notification path.
#pragma once

#include <seccomp.h>

#include <memory>
#include <string>
#include <vector>

#include "capabilities/error.h"
#include "sandbox/launcher_protocol.h"

namespace capsa::sandbox::detail {

// The default allowlist, by name (names unknown to this libseccomp are
// skipped; they cannot be called by number then either: default action).
const std::vector<const char*>& default_allowlist();

// Builds (does not load) the filter. `exec_path` is the pointer the launcher
// will pass to execve. On failure returns nullptr and sets *error.
scmp_filter_ctx build_filter(const std::vector<std::string>& extra_syscalls,
                             const char* exec_path, std::string* error);

// Builds the filter with kExecSentinel as the execve pointer and exports it
// as a BPF program, with the indices of the execve rule's two JEQs (see
// launcher_protocol.h). Runs in the supervisor; the launcher only patches
// and installs the result.
Result<CompiledFilter> compile_filter(const std::vector<std::string>& extra_syscalls);

// compile_filter() once per distinct set of extra syscalls (order and
// duplicates do not matter). The program is pure data derived from the set,
// so sharing it between workers shares no authority. Thread-safe. The cache
// holds at most kMaxCachedFilters programs (about 2 KiB each); past that it
// is emptied and refilled, so a caller cycling through many sets pays a
// compile each time but memory stays bounded.
inline constexpr std::size_t kMaxCachedFilters = 64;
Result<std::shared_ptr<const CompiledFilter>> cached_filter(
    const std::vector<std::string>& extra_syscalls);

}  // namespace capsa::sandbox::detail
