// capsa worker SDK — a capability: a port to a served interface, with the
// rights the grant carries.
//
// What a worker holds. It wraps a capsa::Client (typed, validated calls)
// and adds what a plugin needs to stay correct:
//   - calls by method name, refused locally (kDenied, nothing sent) when the
//     method is outside the rights the supervisor reported;
//   - a state that can be asked after the fact: live, revoked (the peer
//     closed the port: the supervisor revoked it or the service is gone),
//     broken (the peer sent a bad message: the SDK closed the port), or
//     released (this worker gave the port away);
//   - a callback run once when the capability stops being live.
// Calls in flight when the peer closes fail with kRevoked (docs/SUPERVISOR.md,
// "Revocation"): from inside a sandbox a revoke and a dead service look the
// same, and the right reaction is the same: stop using it.
//
// An associated object (docs/PROTOCOL.md section 8) is a Capability too,
// used the same way: it shares its port (and its Client) with the
// capability whose call issued it, and its calls name its id on that port.
// Destroying or release()-ing it sends capsa.Object.Release; detach() turns
// it into a capability on a port of its own (to pass it on).
//
// Threading: a Capability is used from one thread at a time (like Client);
// an object and its port's capability share a Client, so together too.
// Lifetime: it keeps the interface registry alive (shared), so it may
// outlive the Context that made it. A moved-from Capability may only be
// destroyed or assigned to.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/client.h"
#include "capabilities/error.h"
#include "capabilities/interface_registry.h"
#include "capabilities/message.h"
#include "capabilities/port.h"

namespace capsa::worker {

enum class CapabilityState : std::uint8_t { kLive, kRevoked, kBroken, kReleased };
std::string_view capability_state_name(CapabilityState s) noexcept;

class Capability {
 public:
  // Runs once, when the state leaves kLive for kRevoked or kBroken (not on
  // release(), which the worker chose). `why` says what was seen.
  using ClosedCallback = std::function<void(CapabilityState state, const Error& why)>;

  // `port` serves `iface` (which must live in `registry`). `name` is the
  // grant name, for error texts ("" for a port returned by a call).
  Capability(Port port, const Interface& iface, Rights rights,
             std::shared_ptr<const InterfaceRegistry> registry, std::string name);
  Capability(Capability&&) noexcept;
  Capability& operator=(Capability&&) noexcept;
  // An object is released (capsa.Object.Release, sent as an event).
  ~Capability();

  // Associated object `object` on this capability's port, of interface
  // `iface` (which must be in the registry) with `rights`: what a call on
  // this capability returned (e.g. fs.Directory.Open with `associated`).
  // kNotFound for an interface the registry lacks; kInvalidArgument for id 0.
  Result<Capability> associated(std::uint64_t object, std::string_view iface, Rights rights,
                                std::string name) const;
  // Its id on its port; 0 for a port's own capability.
  std::uint64_t object_id() const noexcept { return object_; }
  // An object only: the same capability moved to a port of its own
  // (capsa.Object.Detach), so that it can be sent in a message. This one is
  // then released. kInvalidArgument for a port's own capability.
  Result<Capability> detach();

  std::string_view name() const noexcept { return name_; }
  std::string_view interface_name() const noexcept { return iface_->name(); }
  const Interface& interface() const noexcept { return *iface_; }
  Rights rights() const noexcept { return rights_; }
  // True when `method` exists and is in the rights.
  bool allows(std::string_view method) const noexcept;

  // The state now. Also polls the port, so a peer that closed while nobody
  // was calling is seen (and the callback runs) on the next ask.
  CapabilityState state();
  void on_closed(ClosedCallback cb) { on_closed_ = std::move(cb); }

  // A cleared builder for the next call's payload. Finish() it with the
  // method's request table, then pass payload_bytes() to call()/submit().
  flatbuffers::FlatBufferBuilder& payload_builder() noexcept { return client_->payload_builder(); }
  std::span<const std::uint8_t> payload_bytes() const noexcept { return client_->payload_bytes(); }

  // Blocking call. The reply is validated against the method's reply table;
  // an error reply comes back as that error. Handles are consumed either
  // way. Errors: kNotFound (no such method), kDenied (not in the rights,
  // nothing sent), kRevoked (the port is closed, or closed during the
  // call), kBadMessage (the peer broke the protocol: state is now kBroken),
  // kOverloaded (too many calls in flight), or the service's wire error.
  Result<Message> call(std::string_view method, std::span<const std::uint8_t> payload,
                       std::vector<Handle> handles = {});

  // Asynchronous call: sends now; `done` runs exactly once, from a later
  // on_readable() (or with kRevoked/kBadMessage when the port dies).
  // Same errors as call() for what fails before sending (then `done` is not
  // run). For an epoll loop: wait for fd() readable, then on_readable().
  using Completion = Client::Completion;
  Result<std::uint64_t> submit(std::string_view method, std::span<const std::uint8_t> payload,
                               std::vector<Handle> handles, Completion done);
  // Receives and dispatches one reply. kWouldBlock only on a non-blocking
  // port; kRevoked once the peer is gone; kBadMessage after a bad reply.
  Result<void> on_readable();
  std::size_t in_flight() const noexcept { return client_->in_flight(); }
  // The port's fd, for epoll (invalid once not live). Do not read from it.
  const Fd& fd() const noexcept { return client_->port().fd(); }

  // Gives up the port (to send it in a message, or to Attenuate it). Calls
  // in flight fail with kClosed. State becomes kReleased. For an object:
  // sends capsa.Object.Release, fails its calls in flight with kClosed (their
  // answers are dropped when they come) and returns an invalid Port.
  Port release();

 private:
  Result<std::uint32_t> ordinal_for(std::string_view method) const;
  // Maps a failure to the capability's state and the caller's error.
  Error note_failure(Error e);
  void become(CapabilityState s, const Error& why);

  Capability(std::shared_ptr<Client> client, std::uint64_t object, const Interface& iface,
             Rights rights, std::shared_ptr<const InterfaceRegistry> registry, std::string name);
  CallTarget target() const noexcept { return CallTarget{object_, false, iface_}; }
  // An object: tells the server it is released (once, while live).
  void send_release();

  std::shared_ptr<const InterfaceRegistry> registry_;
  const Interface* iface_;
  std::shared_ptr<Client> client_;  // shared by a port's capability and its objects
  std::uint64_t object_ = 0;
  Rights rights_;
  std::string name_;
  CapabilityState state_ = CapabilityState::kLive;
  ClosedCallback on_closed_;
};

}  // namespace capsa::worker
