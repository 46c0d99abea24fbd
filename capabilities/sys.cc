#include "capabilities/sys.h"

#include <cstring>

namespace capsa {

Error sys_error(std::string_view call, std::string_view context, int err) {
  std::string message(call);
  if (!context.empty()) {
    message += "(";
    message += context;
    message += ")";
  }
  message += " failed: ";
  message += std::strerror(err);
  // EAGAIN on a non-blocking fd is a state, not a failure: callers branch on it.
  Errc code = (err == EAGAIN || err == EWOULDBLOCK) ? Errc::kWouldBlock : Errc::kFailed;
  return Error{code, std::move(message), err};
}

}  // namespace capsa
