// capsa — the serving side of a port.
//
// A Server receives on one port, validates every packet against its
// interface with the capability's rights (validator.h), dispatches calls and
// events to handlers by method, and sends each call's reply or error.
//
// Refusals:
//   - a method outside the rights: the call gets an error reply `denied`
//     (a well-formed request the capability does not allow; not a bad
//     message) and the port stays open;
//   - a bad message: `report` is called first (the supervisor writes the
//     audit line there), then the BadMessageAction chosen by the caller
//     (refusal.h, shared with the supervisor): kClosePort (the default,
//     Mojo's rule), kReplyError (answer `bad message` and keep serving), or
//     kKill (nothing more here: the report callback's owner kills the
//     sender).
//   - a method the interface defines but nobody registered: `not found`.
//   - a handler's error is sent as is when its code is a wire code, else as
//     `failed`.
//
// Handlers run synchronously, one call at a time, so the server holds no
// queue of its own: unread calls wait in the kernel's socket buffer, whose
// size bounds them, and the client's in-flight bound keeps it from growing.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/interface_registry.h"
#include "capabilities/message.h"
#include "capabilities/port.h"
#include "capabilities/refusal.h"
#include "capabilities/validator.h"

namespace capsa {

struct ServerOptions {
  Rights rights = kAllRights;
  Limits limits;
  BadMessageAction on_bad_message = BadMessageAction::kClosePort;
  // Called for every refused message (kBadMessage or kDenied) with what was
  // wrong and as much of the envelope as could be read.
  std::function<void(const Error&, const EnvelopeInfo&)> report;
};

// What a handler fills in for its answer.
class Reply {
 public:
  // The reply's builder, empty when the handler starts; the handler must
  // Finish() it with the method's reply table as root.
  flatbuffers::FlatBufferBuilder& builder() noexcept { return *fbb_; }
  // Attaches a handle and returns its index, to store in a handle field.
  std::uint32_t add_handle(Handle h) {
    handles_.push_back(std::move(h));
    return static_cast<std::uint32_t>(handles_.size() - 1);
  }

 private:
  friend class Server;
  explicit Reply(Encoder& e) : fbb_(&e.payload_builder()) {}
  flatbuffers::FlatBufferBuilder* fbb_;
  std::vector<Handle> handles_;
};

class Server {
 public:
  // `request` is validated; its handles may be taken. For an event the
  // reply is ignored.
  using Handler = std::function<Result<void>(Message& request, Reply& reply)>;

  Server(Port port, const Interface& iface, ServerOptions options = {});

  // kInvalidArgument if the interface has no such method.
  Result<void> on(std::string_view method, Handler handler);

  // Receives and serves one packet. Returns the refusal (kBadMessage,
  // kDenied) after acting on it; kWouldBlock when the port is non-blocking
  // and empty; kClosed once the peer is gone (or we closed the port);
  // kOverloaded when a reply could not be sent because the peer does not
  // read its replies (the port is closed then).
  Result<void> on_readable();

  // Serves until the peer closes (returns ok) or the port is closed after a
  // bad message (returns that error), or a receive fails.
  Result<void> run();

  Port& port() noexcept { return port_; }
  bool closed() const noexcept { return !port_.valid(); }

 private:
  Result<void> refuse(Error error, const EnvelopeInfo& info);
  Result<void> send_error(std::uint64_t call_id, std::uint32_t method, Errc code,
                          std::string_view text);
  Result<void> serve(Message& msg);

  Port port_;
  const Interface* iface_;
  ServerOptions options_;
  Encoder encoder_;
  std::vector<Handler> handlers_;  // by ordinal
};

}  // namespace capsa
