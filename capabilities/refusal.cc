#include "capabilities/refusal.h"

namespace capsa {

namespace {

RefusalOutcome after_send(const Result<void>& sent) {
  if (sent) return {};
  if (sent.error().code == Errc::kClosed) {
    return {AfterRefusal::kClosePort, "holder closed the port", Errc::kClosed};
  }
  return {AfterRefusal::kClosePort, "holder does not read its replies (overloaded)",
          Errc::kOverloaded};
}

}  // namespace

std::string_view to_string(BadMessageAction a) noexcept {
  // In enum order, which the policy schema's enum shares.
  constexpr std::string_view kNames[] = {"reply_error", "close_port", "kill"};
  const auto i = static_cast<std::size_t>(a);
  return i < std::size(kNames) ? kNames[i] : "?";
}

Result<void> send_error_answer(Port& port, Encoder& encoder, std::uint64_t call_id,
                               std::uint32_t method, Errc code, std::string_view text,
                               std::uint64_t object, bool control) {
  if (!is_wire_code(code)) code = Errc::kFailed;
  Header h{MessageKind::kError, call_id, method, 0, code, text, object, control};
  auto sent = send_message(port, encoder, h, {}, {});
  if (!sent && sent.error().code == Errc::kWouldBlock) {
    return make_error(Errc::kOverloaded, "the peer does not read its replies");
  }
  return sent;
}

RefusalOutcome refuse_call(Port& port, Encoder& encoder, std::uint64_t call_id,
                           std::uint32_t method, Errc code, std::string_view text,
                           std::uint64_t object, bool control) {
  return after_send(send_error_answer(port, encoder, call_id, method, code, text, object, control));
}

RefusalOutcome refuse_packet(Port& port, Encoder& encoder, const Error& error,
                             const EnvelopeInfo& info, BadMessageAction action) {
  const bool answerable = info.envelope_ok && info.kind == MessageKind::kCall;
  const std::uint64_t call_id = answerable ? info.call_id : 0;
  const std::uint32_t method = answerable ? info.method : 0;
  // An answer names the object its call named (an error to call id 0 none).
  const std::uint64_t object = answerable ? info.object : 0;
  const bool control = answerable && info.control;
  if (error.code == Errc::kDenied || error.code == Errc::kNotFound) {
    // Not a bad message: the peer asked for something it may not have, or
    // named an object that is not (or no longer) on this port.
    if (!answerable) return {};
    return refuse_call(port, encoder, call_id, method, error.code, error.message, object, control);
  }
  switch (action) {
    case BadMessageAction::kReplyError:
      return refuse_call(port, encoder, call_id, method, Errc::kBadMessage, error.message, object,
                         control);
    case BadMessageAction::kClosePort:
      return {AfterRefusal::kClosePort, "bad message: port closed", std::nullopt};
    case BadMessageAction::kKill:
      return {AfterRefusal::kKill, "bad message", std::nullopt};
  }
  return {AfterRefusal::kClosePort, "bad message: port closed", std::nullopt};
}

}  // namespace capsa
