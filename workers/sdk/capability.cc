#include "workers/sdk/capability.h"

#include <utility>

#include "capabilities/interfaces/builtin.h"
#include "capsa_object_generated.h"

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
      client_(std::make_shared<Client>(std::move(port), iface)),
      rights_(rights & iface.defined_rights()),
      name_(std::move(name)) {
  // From inside a sandbox a close by the supervisor is a revocation.
  client_->set_peer_closed_error(Errc::kRevoked,
                                 "capability " + std::string(iface.name()) + " was revoked");
}

Capability::Capability(std::shared_ptr<Client> client, std::uint64_t object,
                       const Interface& iface, Rights rights,
                       std::shared_ptr<const InterfaceRegistry> registry, std::string name)
    : registry_(std::move(registry)),
      iface_(&iface),
      client_(std::move(client)),
      object_(object),
      rights_(rights & iface.defined_rights()),
      name_(std::move(name)) {}

Capability::Capability(Capability&&) noexcept = default;

Capability& Capability::operator=(Capability&& other) noexcept {
  if (this != &other) {
    send_release();  // the object this one named is given up
    registry_ = std::move(other.registry_);
    iface_ = other.iface_;
    client_ = std::move(other.client_);
    object_ = std::exchange(other.object_, 0);
    rights_ = other.rights_;
    name_ = std::move(other.name_);
    state_ = other.state_;
    on_closed_ = std::move(other.on_closed_);
  }
  return *this;
}

Capability::~Capability() { send_release(); }

void Capability::send_release() {
  if (object_ == 0 || !client_ || state_ != CapabilityState::kLive) return;
  client_->abandon(object_, Error{Errc::kClosed, "the object was released", 0});
  if (const Interface* obj = registry_->find(interfaces::kObject); obj != nullptr && !client_->closed()) {
    // Its own builder, not the shared Client's: a destructor must not
    // clobber a payload the worker is building for a sibling capability.
    flatbuffers::FlatBufferBuilder fbb(64);
    fbb.Finish(CreateReleaseRequest(fbb));
    // An event: nothing to wait for. If it cannot be sent the port is gone,
    // and the object with it.
    (void)client_->send_event(CallTarget{object_, true, obj}, 0,
                              std::span<const std::uint8_t>(fbb.GetBufferPointer(), fbb.GetSize()));
  }
  state_ = CapabilityState::kReleased;
}

Result<Capability> Capability::associated(std::uint64_t object, std::string_view iface,
                                          Rights rights, std::string name) const {
  if (object == 0) return make_error(Errc::kInvalidArgument, "object id 0 names the port itself");
  const Interface* i = registry_->find(iface);
  if (i == nullptr) {
    return make_error(Errc::kNotFound, "interface " + std::string(iface) + " is not known here");
  }
  return Capability(client_, object, *i, rights, registry_, std::move(name));
}

Result<Capability> Capability::detach() {
  if (object_ == 0) return make_error(Errc::kInvalidArgument, "only an object can be detached");
  if (state_ != CapabilityState::kLive) {
    return make_error(Errc::kRevoked, "capability " + std::string(iface_->name()) + " is " +
                                          std::string(capability_state_name(state_)));
  }
  const Interface* obj = registry_->find(interfaces::kObject);
  if (obj == nullptr) return make_error(Errc::kNotFound, "capsa.Object is not known here");
  auto& fbb = client_->payload_builder();
  fbb.Finish(CreateDetachRequest(fbb));
  auto reply = client_->call(CallTarget{object_, true, obj}, 1, client_->payload_bytes());
  if (!reply) return std::unexpected(note_failure(std::move(reply.error())));
  const auto* r = reply->payload_as<DetachReply>();
  if (!r->port().has_value() || r->interface() == nullptr ||
      r->interface()->string_view() != iface_->name()) {
    return make_error(Errc::kBadMessage, "capsa.Object.Detach reply names another capability");
  }
  // The server consumed the object: nothing to release any more.
  object_ = 0;
  state_ = CapabilityState::kReleased;
  return Capability(Port(reply->take_handle(*r->port())), *iface_, r->rights(), registry_, name_);
}

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
  if (state_ == CapabilityState::kLive && client_ &&
      (client_->closed() || client_->port().peer_closed())) {
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
      // a peer close (Client's peer-closed error) does not. On an object it
      // says the object itself was revoked (its port lives on).
      if (object_ != 0 || client_->closed() || client_->port().peer_closed()) {
        become(CapabilityState::kRevoked, e);
      }
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
  auto reply = client_->call(target(), ordinal, payload, std::move(handles));
  if (!reply) return std::unexpected(note_failure(std::move(reply.error())));
  return reply;
}

Result<std::uint64_t> Capability::submit(std::string_view method,
                                         std::span<const std::uint8_t> payload,
                                         std::vector<Handle> handles, Completion done) {
  CAPSA_ASSIGN_OR_RETURN(const std::uint32_t ordinal, ordinal_for(method));
  auto id = client_->submit(target(), ordinal, payload, std::move(handles), std::move(done));
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
  if (object_ != 0) {
    send_release();
    return Port();
  }
  // Take the socket first: fail_all() closes whatever port the client has.
  Fd fd = client_->port().release_fd();
  client_->fail_all(Error{Errc::kClosed, "the capability was released", 0});
  become(CapabilityState::kReleased, Error{});
  return Port(std::move(fd));
}

}  // namespace capsa::worker
