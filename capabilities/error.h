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
#include <utility>

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

  // The same error with "context: " before its message; code and errno are
  // kept, so a caller still acts on the original kind. Add context where an
  // error crosses a layer and its message would not say where it came from
  // ("spawn worker 'wc': open /dev/null: ..."). Never put anything in it
  // that the receiver must not see: wire errors carry the message to a peer.
  Error with_context(std::string_view context) const&;
  Error with_context(std::string_view context) &&;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> make_error(Errc code, std::string message, int sys_errno = 0) {
  return std::unexpected<Error>(Error{code, std::move(message), sys_errno});
}

// with_context() on a Result: the value passes through untouched, an error
// gets "context: " before its message. `context` is built even on success:
// on a hot path, prefer CAPSA_TRY_CONTEXT, which builds it only on error.
template <typename T>
Result<T> with_context(Result<T> result, std::string_view context) {
  if (!result) return std::unexpected(std::move(result).error().with_context(context));
  return result;
}

}  // namespace capsa

// Propagation macros, after Sandbox2's SAPI_RETURN_IF_ERROR /
// SAPI_ASSIGN_OR_RETURN and KJ's KJ_REQUIRE: they replace the hand-written
// `if (!r) return std::unexpected(r.error());`. Each evaluates its
// expression exactly once, and returns the error itself (moved, not
// copied, when the expression is a temporary) from the enclosing function,
// whose return type must be some Result<U> (std::unexpected<Error>
// converts to any of them).
//
//   CAPSA_TRY(port.send(msg));                       // Result<void> or Result<T>, value dropped
//   CAPSA_TRY_CONTEXT(load(path), "policy " + path); // context built only on error
//   CAPSA_ASSIGN_OR_RETURN(Fd fd, open_dir(path));   // declares fd
//   CAPSA_ASSIGN_OR_RETURN(out.size, read_size(fd)); // assigns to an existing lvalue
//   CAPSA_ASSIGN_OR_RETURN_CONTEXT(auto n, f(), "reading the header");
//
// CAPSA_ASSIGN_OR_RETURN expands to more than one statement (it declares a
// hidden temporary beside `lhs`): it cannot be the body of an unbraced
// `if`; `lhs` may not contain an unparenthesised comma.
#define CAPSA_TRY(expr) CAPSA_TRY_CONTEXT_IMPL_(CAPSA_CONCAT_(capsa_try_, __COUNTER__), expr, )
#define CAPSA_TRY_CONTEXT(expr, context) \
  CAPSA_TRY_CONTEXT_IMPL_(CAPSA_CONCAT_(capsa_try_, __COUNTER__), expr, .with_context(context))

#define CAPSA_ASSIGN_OR_RETURN(lhs, expr) \
  CAPSA_ASSIGN_OR_RETURN_IMPL_(CAPSA_CONCAT_(capsa_result_, __COUNTER__), lhs, expr, )
#define CAPSA_ASSIGN_OR_RETURN_CONTEXT(lhs, expr, context) \
  CAPSA_ASSIGN_OR_RETURN_IMPL_(CAPSA_CONCAT_(capsa_result_, __COUNTER__), lhs, expr, \
                               .with_context(context))

// Implementation. `auto&&` binds a temporary (lifetime extended) or an
// lvalue Result without copying it; std::forward then moves the error out
// of a temporary and copies it out of a named Result the caller keeps.
#define CAPSA_CONCAT_INNER_(a, b) a##b
#define CAPSA_CONCAT_(a, b) CAPSA_CONCAT_INNER_(a, b)
#define CAPSA_TRY_CONTEXT_IMPL_(tmp, expr, add_context)                                      \
  do {                                                                                       \
    auto&& tmp = (expr);                                                                     \
    if (!tmp) [[unlikely]] {                                                                 \
      return ::std::unexpected<::capsa::Error>(                                              \
          ::capsa::Error(::std::forward<decltype(tmp)>(tmp).error()) add_context);           \
    }                                                                                        \
  } while (false)
#define CAPSA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr, add_context)                            \
  auto&& tmp = (expr);                                                                       \
  if (!tmp) [[unlikely]] {                                                                   \
    return ::std::unexpected<::capsa::Error>(                                                \
        ::capsa::Error(::std::forward<decltype(tmp)>(tmp).error()) add_context);             \
  }                                                                                          \
  lhs = *::std::forward<decltype(tmp)>(tmp)
