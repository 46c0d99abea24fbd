#include "capabilities/error.h"

#include <cstring>

namespace capsa {

std::string_view errc_name(Errc c) noexcept {
  switch (c) {
    case Errc::kBadMessage: return "bad message";
    case Errc::kDenied: return "denied";
    case Errc::kRevoked: return "revoked";
    case Errc::kNotFound: return "not found";
    case Errc::kOverloaded: return "overloaded";
    case Errc::kFailed: return "failed";
    case Errc::kClosed: return "closed";
    case Errc::kWouldBlock: return "would block";
    case Errc::kInvalidArgument: return "invalid argument";
  }
  return "unknown error";
}

std::string Error::to_string() const {
  std::string out(errc_name(code));
  out += ": ";
  out += message;
  if (sys_errno != 0) {
    out += " (";
    out += std::strerror(sys_errno);
    out += ")";
  }
  return out;
}

Error Error::with_context(std::string_view context) const& {
  return Error(*this).with_context(context);
}

Error Error::with_context(std::string_view context) && {
  std::string prefixed(context);
  if (!message.empty()) {
    prefixed += ": ";
    prefixed += message;
  }
  message = std::move(prefixed);
  return std::move(*this);
}

}  // namespace capsa
