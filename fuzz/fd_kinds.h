// capsa fuzzing — the fds a validator input attaches, one kind per selector
// byte. Every kind a hostile peer can send is here, the right ones for each
// HandleKind among them, so the fuzzer reaches both each check_handle_kind
// refusal and the accepted paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "capabilities/fd.h"

namespace capsa::fuzz {

enum class FdKind : std::uint8_t {
  kPipeRead,
  kPipeWrite,
  kSeqpacketEnd,    // a valid port
  kStreamEnd,       // AF_UNIX, but not SOCK_SEQPACKET
  kDgramEnd,
  kListener,        // SOCK_SEQPACKET, listening: never a port
  kSealedMemfd,     // a valid blob (make_blob)
  kUnsealedMemfd,
  kWriteSealMemfd,  // F_SEAL_WRITE only: can still grow or shrink
  kDirectory,
  kOPath,           // O_PATH of a regular file
  kEventfd,
  kReadOnlyFile,    // a valid file handle
  kReadWriteFile,
  kCount,
};

// The selector byte's kind.
inline FdKind fd_kind_of(std::uint8_t selector) {
  return static_cast<FdKind>(selector % static_cast<std::uint8_t>(FdKind::kCount));
}

// One fd of `kind`; the other ends of pipes and socket pairs go to `peers`
// (the caller keeps them open while it checks the sent fd was closed, so
// that fd's number cannot be reused meanwhile). `file` is a regular file's
// path. Aborts if the kernel refuses: a harness that silently sends fewer
// fds would fuzz less than it says.
Fd make_fd(FdKind kind, const char* file, std::vector<Fd>& peers);

}  // namespace capsa::fuzz

namespace capsa::fuzz {

// A validator input (validator_fuzz.cc, and seeds.cc writes them):
//   byte 0  interface: index into [capsa.test.Echo, the built-ins...], modulo
//   byte 1  bit 0: accept as a client (replies, errors), else as a server;
//           bit 1: rights = every other method only (to reach kDenied)
//   byte 2  n fds, modulo kMaxInputFds + 1 (one past the handle limit)
//   n bytes one FdKind each
//   rest    the packet's bytes
inline constexpr std::size_t kInputHeaderBytes = 3;
inline constexpr std::size_t kMaxInputFds = 17;

}  // namespace capsa::fuzz
