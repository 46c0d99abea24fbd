#include "workers/sdk/capability.h"

#include <utility>

namespace capsa::worker {

std::string_view capability_state_name(CapabilityState s) noexcept {
  switch (s) {
    case CapabilityState::kLive: return "live";
    case CapabilityState::kRevoked: return "revoked";
    case CapabilityState::kBroken: return "broken";
    case CapabilityState::kReleased: return "released";
  }
  return "unknown";
}

Capability::Capability(Port port, const Interface& iface, Rights rights,
                       std::shared_ptr<const InterfaceRegistry> registry, std::string name)
    : registry_(std::move(registry)),
      iface_(&iface),
      client_(std::make_unique<Client>(std::move(port), iface)),
      rights_(rights & iface.defined_rights()),
      name_(std::move(name)) {
  // From inside a sandbox a close by the supervisor is a revocation.
  client_->set_peer_closed_error(Errc::kRevoked,
                                 "capability " + std::string(iface.name()) + " was revoked");
}

Capability::Capability(Capability&&) noexcept = default;
Capability& Capability::operator=(Capability&&) noexcept = default;
Capability::~Capability() = default;

bool Capability::allows(std::string_view method) const noexcept {
  const Method* m = iface_->method(method);
  return m != nullptr && (rights_ & right_of(m->ordinal)) != 0;
}

void Capability::become(CapabilityState s, const Error& why) {
  if (state_ != CapabilityState::kLive) return;
  state_ = s;
  if (s != CapabilityState::kReleased && on_closed_) {
    auto cb = std::move(on_closed_);  // runs once, even if it re-enters
    cb(s, why);
  }
}

CapabilityState Capability::state() {
  if (state_ == CapabilityState::kLive && (client_->closed() || client_->port().peer_closed())) {
    become(CapabilityState::kRevoked, Error{Errc::kRevoked, "the peer closed the port", 0});
  }
  return state_;
}

Error Capability::note_failure(Error e) {
  switch (e.code) {
    case Errc::kClosed:
      // A send that met a closed peer (EPIPE): the capability is gone.
      e.code = Errc::kRevoked;
      become(CapabilityState::kRevoked, e);
      break;
    case Errc::kRevoked:
      // An error reply `revoked` from a live service leaves the port open;
      // a peer close (Client's peer-closed error) does not.
      if (client_->closed() || client_->port().peer_closed()) become(CapabilityState::kRevoked, e);
      break;
    case Errc::kBadMessage:
      // Client closed the port (Mojo's rule). A `bad message` error reply
      // about our own call leaves it open: then the state stays live.
      if (client_->closed()) become(CapabilityState::kBroken, e);
      break;
    default:
      break;
  }
  return e;
}

Result<std::uint32_t> Capability::ordinal_for(std::string_view method) const {
  const Method* m = iface_->method(method);
  if (m == nullptr) {
    return make_error(Errc::kNotFound, std::string(iface_->name()) + " has no method " +
                                           std::string(method));
  }
  if ((rights_ & right_of(m->ordinal)) == 0) {
    return make_error(Errc::kDenied, "method " + std::string(method) + " is not in the rights of " +
                                         (name_.empty() ? std::string(iface_->name()) : "grant " + name_));
  }
  if (state_ != CapabilityState::kLive) {
    return make_error(state_ == CapabilityState::kBroken ? Errc::kBadMessage : Errc::kRevoked,
                      "capability " + std::string(iface_->name()) + " is " +
                          std::string(capability_state_name(state_)));
  }
  return m->ordinal;
}

Result<Message> Capability::call(std::string_view method, std::span<const std::uint8_t> payload,
                                 std::vector<Handle> handles) {
  CAPSA_ASSIGN_OR_RETURN(const std::uint32_t ordinal, ordinal_for(method));
  auto reply = client_->call(ordinal, payload, std::move(handles));
  if (!reply) return std::unexpected(note_failure(std::move(reply.error())));
  return reply;
}

Result<std::uint64_t> Capability::submit(std::string_view method,
                                         std::span<const std::uint8_t> payload,
                                         std::vector<Handle> handles, Completion done) {
  CAPSA_ASSIGN_OR_RETURN(const std::uint32_t ordinal, ordinal_for(method));
  auto id = client_->submit(ordinal, payload, std::move(handles), std::move(done));
  if (!id) return std::unexpected(note_failure(std::move(id.error())));
  return id;
}

Result<void> Capability::on_readable() {
  if (state_ == CapabilityState::kReleased) {
    return make_error(Errc::kInvalidArgument, "the capability was released");
  }
  auto r = client_->on_readable();
  if (!r && r.error().code != Errc::kWouldBlock) {
    return std::unexpected(note_failure(std::move(r.error())));
  }
  return r;
}

Port Capability::release() {
  // Take the socket first: fail_all() closes whatever port the client has.
  Fd fd = client_->port().release_fd();
  client_->fail_all(Error{Errc::kClosed, "the capability was released", 0});
  become(CapabilityState::kReleased, Error{});
  return Port(std::move(fd));
}

}  // namespace capsa::worker
