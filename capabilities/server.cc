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
  if (!is_wire_code(code)) code = Errc::kFailed;
  Header h{MessageKind::kError, call_id, method, 0, code, text};
  return send_message(port_, encoder_, h, {}, {});
}

Result<void> Server::refuse(Error error, const EnvelopeInfo& info) {
  if (options_.report) options_.report(error, info);
  const bool answerable = info.envelope_ok && info.kind == MessageKind::kCall;
  if (error.code == Errc::kDenied) {
    // Not a bad message: the peer asked for something it may not have.
    if (answerable) {
      auto sent = send_error(info.call_id, info.method, Errc::kDenied, error.message);
      if (!sent && sent.error().code == Errc::kClosed) return sent;
    }
    return std::unexpected(std::move(error));
  }
  switch (options_.on_bad_message) {
    case BadMessageAction::kClosePort:
      port_ = Port();
      break;
    case BadMessageAction::kReplyError: {
      auto sent = send_error(answerable ? info.call_id : 0, answerable ? info.method : 0,
                             Errc::kBadMessage, error.message);
      if (!sent && sent.error().code == Errc::kClosed) return sent;
      break;
    }
    case BadMessageAction::kReport:
      break;
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
  // The receive already happened, so kWouldBlock here means our reply did
  // not fit: the peer is not reading its replies. Dropping the reply would
  // leave its call hanging forever and look like "nothing to read" to the
  // caller, so the port is closed and the peer's calls fail instead.
  if (!done && done.error().code == Errc::kWouldBlock) {
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
