// capsa — the one error type.
//
// Every fallible function returns `Result<T>` (std::expected). An error has a
// code a caller can act on and a message for a person. The first six codes
// are the closed set that travels on the wire (docs/PROTOCOL.md); their
// numeric values are part of the protocol and never change. The others are
// local to a process and are never sent.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace capsa {

enum class Errc : std::uint8_t {
  // On the wire.
  kBadMessage = 1,  // the peer sent something that failed validation
  kDenied = 2,      // not allowed by the capability's rights or the policy
  kRevoked = 3,     // the capability was revoked
  kNotFound = 4,    // no such grant, method, file, ...
  kOverloaded = 5,  // a limit on calls in flight, queue, rate or budget
  kFailed = 6,      // the operation failed (a syscall, the service itself)
  // Local only.
  kClosed = 64,           // the peer end of the port is gone
  kWouldBlock = 65,       // non-blocking port: nothing to do right now
  kInvalidArgument = 66,  // the caller misused an API (our side, not the peer)
};

// True for the codes that may be sent in an error reply.
constexpr bool is_wire_code(Errc c) noexcept {
  return static_cast<std::uint8_t>(c) >= 1 && static_cast<std::uint8_t>(c) <= 6;
}

std::string_view errc_name(Errc c) noexcept;

struct Error {
  Errc code = Errc::kFailed;
  std::string message;
  int sys_errno = 0;  // errno when a syscall failed, else 0

  // "denied: method Open is not in the rights of grant 7"
  std::string to_string() const;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> make_error(Errc code, std::string message, int sys_errno = 0) {
  return std::unexpected<Error>(Error{code, std::move(message), sys_errno});
}

}  // namespace capsa
