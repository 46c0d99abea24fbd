#include "capabilities/server.h"

#include <string>

namespace capsa {

Server::Server(Port port, const Interface& iface, ServerOptions options)
    : port_(std::move(port)), iface_(&iface), options_(std::move(options)),
      handlers_(kMaxMethodsPerInterface) {}

Result<void> Server::on(std::string_view method, Handler handler) {
  const Method* m = iface_->method(method);
  if (m == nullptr) {
    return make_error(Errc::kInvalidArgument,
                      std::string(iface_->name()) + " has no method " + std::string(method));
  }
  handlers_[m->ordinal] = std::move(handler);
  return {};
}

Result<void> Server::send_error(std::uint64_t call_id, std::uint32_t method, Errc code,
                                std::string_view text) {
  return send_error_answer(port_, encoder_, call_id, method, code, text);
}

Result<void> Server::refuse(Error error, const EnvelopeInfo& info) {
  if (options_.report) options_.report(error, info);
  const RefusalOutcome out = refuse_packet(port_, encoder_, error, info, options_.on_bad_message);
  if (out.next == AfterRefusal::kClosePort) port_ = Port();
  if (out.answer_failed == Errc::kClosed) return make_error(Errc::kClosed, "the peer is gone");
  if (out.answer_failed == Errc::kOverloaded) {
    return make_error(Errc::kOverloaded, "the peer does not read its replies; port closed");
  }
  return std::unexpected(std::move(error));
}

Result<void> Server::serve(Message& msg) {
  const Method& m = *msg.method();
  Handler& handler = handlers_[m.ordinal];
  const bool is_call = msg.kind() == MessageKind::kCall;
  if (!handler) {
    if (!is_call) return {};
    return send_error(msg.call_id(), m.ordinal, Errc::kNotFound,
                      std::string(iface_->name()) + "." + m.name + " is not implemented here");
  }
  Reply reply(encoder_);
  auto done = handler(msg, reply);
  if (!is_call) return {};
  if (!done) return send_error(msg.call_id(), m.ordinal, done.error().code, done.error().message);
  if (reply.builder().GetSize() == 0) {
    return send_error(msg.call_id(), m.ordinal, Errc::kFailed,
                      std::string(iface_->name()) + "." + m.name + " produced no reply");
  }
  Header h{MessageKind::kReply, msg.call_id(), m.ordinal, m.reply.type_hash, Errc::kFailed, {}};
  std::span<const std::uint8_t> payload(reply.builder().GetBufferPointer(),
                                        reply.builder().GetSize());
  return send_message(port_, encoder_, h, payload, std::move(reply.handles_));
}

Result<void> Server::on_readable() {
  if (!port_.valid()) return make_error(Errc::kClosed, "the port is closed");
  auto packet = port_.receive();
  if (!packet) {
    if (packet.error().code == Errc::kBadMessage) {
      return refuse(std::move(packet.error()), EnvelopeInfo{});
    }
    return std::unexpected(std::move(packet.error()));
  }
  EnvelopeInfo info;
  ValidateOptions vo{kServerAccepts, options_.rights, options_.limits};
  auto msg = validate(std::move(*packet), *iface_, vo, &info);
  auto done = msg ? serve(*msg) : refuse(std::move(msg.error()), info);
  // The receive already happened, so kWouldBlock (or an error answer that
  // did not fit: kOverloaded) means our reply did not fit: the peer is not
  // reading its replies. Dropping the reply would leave its call hanging
  // forever and look like "nothing to read" to the caller, so the port is
  // closed and the peer's calls fail instead.
  if (!done && (done.error().code == Errc::kWouldBlock || done.error().code == Errc::kOverloaded)) {
    port_ = Port();
    return make_error(Errc::kOverloaded, "the peer does not read its replies; port closed");
  }
  return done;
}

Result<void> Server::run() {
  for (;;) {
    auto r = on_readable();
    if (r) continue;
    const Errc c = r.error().code;
    if (c == Errc::kClosed) return {};
    if ((c == Errc::kBadMessage || c == Errc::kDenied) && port_.valid()) continue;
    if (c == Errc::kWouldBlock) {
      auto ready = port_.wait_readable(-1);
      if (!ready) return std::unexpected(std::move(ready.error()));
      continue;
    }
    return r;
  }
}

}  // namespace capsa
