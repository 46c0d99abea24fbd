// capsa — what a server does with a message it refuses, written once for
// capabilities::Server and the supervisor's PortEndpoint.
//
// Two kinds of refusal:
//   - `denied` and the supervisor's limits (`overloaded`): a well-formed call
//     the capability does not allow now. The call gets an error answer and
//     the port keeps serving.
//   - a bad message (anything the validator or the port refused): the
//     BadMessageAction decides.
// Either way, an answer that cannot be sent because the peer's receive queue
// is full means the peer does not read its replies: the port must be closed
// rather than answers queued without bound (or calls left hanging).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "capabilities/error.h"
#include "capabilities/message.h"
#include "capabilities/port.h"
#include "capabilities/validator.h"

namespace capsa {

// What happens after a bad message. One enum for the port layer and the
// policy (policy::BadMessageAction is this type; the policy schema's enum
// has the same values in the same order, checked in policy/).
//   kReplyError  answer `bad message` and keep serving;
//   kClosePort   close the port (Mojo's rule; capabilities::Server's default);
//   kKill        the sender is taken to be compromised (Chromium's rule for
//                a renderer): its owner kills it. The port layer cannot kill
//                anything: it only reports, and the owner acts.
enum class BadMessageAction : std::uint8_t { kReplyError, kClosePort, kKill };

// "reply_error", "close_port", "kill".
std::string_view to_string(BadMessageAction a) noexcept;

// What the server must do after a refusal was answered.
enum class AfterRefusal : std::uint8_t {
  kKeepServing,
  kClosePort,  // the action, or the peer is gone
  kKill,       // BadMessageAction::kKill: the owner kills the sender
};

struct RefusalOutcome {
  AfterRefusal next = AfterRefusal::kKeepServing;
  // Why the port must close, for logs and the audit ("" when serving on).
  std::string_view reason;
  // Set when the error answer could not be sent: kClosed (the peer is
  // gone) or kOverloaded (the peer does not read its replies).
  std::optional<Errc> answer_failed;
};

// Sends an error answer. kWouldBlock from the port is reported as
// kOverloaded ("the peer does not read its replies"); kClosed as is.
// `object`/`control`: what the call named (docs/PROTOCOL.md section 8).
Result<void> send_error_answer(Port& port, Encoder& encoder, std::uint64_t call_id,
                               std::uint32_t method, Errc code, std::string_view text,
                               std::uint64_t object = 0, bool control = false);

// Answers a well-formed call that is refused with `code` (kDenied,
// kOverloaded, ...): sends the error and says whether serving goes on.
RefusalOutcome refuse_call(Port& port, Encoder& encoder, std::uint64_t call_id,
                           std::uint32_t method, Errc code, std::string_view text,
                           std::uint64_t object = 0, bool control = false);

// Answers a refused packet: `error` is what the port or validator said,
// `info` what of the envelope could be read. kDenied is answered like
// refuse_call; anything else is a bad message, handled per `action`. The
// error answer goes to the call id only when the packet was a readable
// call; otherwise to call id 0.
RefusalOutcome refuse_packet(Port& port, Encoder& encoder, const Error& error,
                             const EnvelopeInfo& info, BadMessageAction action);

}  // namespace capsa
