// capsa — the calling side of a port.
//
// A Client sends calls on one port and matches replies and errors to them by
// call id. It has two forms over the same state:
//   - asynchronous, for an epoll loop: submit() sends a call and registers a
//     completion; on_readable() receives and dispatches one packet;
//   - blocking: call() = submit() + on_readable() until that call completes.
//
// Rules (docs/PROTOCOL.md, "Calls"):
//   - call ids are 1, 2, 3, ... per client, never reused while the port lives;
//   - at most `max_in_flight` unanswered calls: one more fails with
//     kOverloaded and nothing is sent;
//   - every completion runs exactly once;
//   - a reply or error whose id is not outstanding, or whose method is not
//     the call's, is a bad message; so is anything validate() refuses. The
//     server side is trusted no more than a worker: after a bad message the
//     client closes the port and fails every outstanding call with
//     kBadMessage (Mojo's rule: a pipe that carried a bad message is dead);
//   - when the peer goes away, every outstanding call fails with kClosed,
//     or with the code set by set_peer_closed_error() (the supervisor sets
//     kRevoked when it knows the close was a revocation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/interface_registry.h"
#include "capabilities/message.h"
#include "capabilities/port.h"
#include "capabilities/validator.h"

namespace capsa {

// What a call is addressed to: the port's own capability (the default), or
// an associated object on the port (docs/PROTOCOL.md section 8): its id,
// its interface, and whether the method is capsa.Object's (`control`).
struct CallTarget {
  std::uint64_t object = 0;
  bool control = false;
  const Interface* iface = nullptr;  // nullptr: the port's interface
};

struct ClientOptions {
  std::size_t max_in_flight = 64;  // unanswered calls on this port
  Limits limits;                   // applied to replies
};

class Client {
 public:
  // Runs once per call: with the validated reply, or with the error (a
  // wire error from the peer, or kClosed/kRevoked/kBadMessage from here).
  using Completion = std::function<void(Result<Message>)>;

  Client(Port port, const Interface& iface, ClientOptions options = {});
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Outstanding calls fail with kClosed.
  ~Client();

  // A cleared builder for the next call's payload (reused between calls).
  flatbuffers::FlatBufferBuilder& payload_builder() noexcept { return encoder_.payload_builder(); }
  std::span<const std::uint8_t> payload_bytes() const noexcept { return encoder_.payload_bytes(); }

  // Sends a call to method `ordinal` and returns its call id. `payload` is a
  // finished flatbuffer of the method's request table. Handles are consumed
  // either way. kInvalidArgument: unknown method; kOverloaded: too many
  // calls in flight; kClosed: the port is gone.
  Result<std::uint64_t> submit(std::uint32_t ordinal, std::span<const std::uint8_t> payload,
                               std::vector<Handle> handles, Completion done) {
    return submit(CallTarget{}, ordinal, payload, std::move(handles), std::move(done));
  }
  // The same for an associated object: `ordinal` is a method of
  // target.iface, and the answer must name the same object (else it is a
  // bad message, as an answer naming another method is).
  Result<std::uint64_t> submit(const CallTarget& target, std::uint32_t ordinal,
                               std::span<const std::uint8_t> payload,
                               std::vector<Handle> handles, Completion done);

  // Sends a one-way event (no reply, not counted in flight).
  Result<void> send_event(std::uint32_t ordinal, std::span<const std::uint8_t> payload,
                          std::vector<Handle> handles = {}) {
    return send_event(CallTarget{}, ordinal, payload, std::move(handles));
  }
  Result<void> send_event(const CallTarget& target, std::uint32_t ordinal,
                          std::span<const std::uint8_t> payload, std::vector<Handle> handles = {});

  // Fails every outstanding call on associated object `object` with
  // `error` now (the holder gave the object up). Their answers still come
  // (the port is shared) and are dropped when they do; until then they
  // count in flight.
  void abandon(std::uint64_t object, const Error& error);

  // Receives one packet and completes the call it answers. kWouldBlock when
  // the port is non-blocking and nothing is queued; kClosed once the peer is
  // gone (outstanding calls have failed); kBadMessage for a bad packet (the
  // port is now closed and outstanding calls have failed).
  Result<void> on_readable();

  // Blocking call: sends, then receives until this call completes. Replies
  // to other outstanding calls that arrive meanwhile complete those calls.
  // A reply with kind error comes back as that error.
  Result<Message> call(std::uint32_t ordinal, std::span<const std::uint8_t> payload,
                       std::vector<Handle> handles = {}) {
    return call(CallTarget{}, ordinal, payload, std::move(handles));
  }
  Result<Message> call(const CallTarget& target, std::uint32_t ordinal,
                       std::span<const std::uint8_t> payload, std::vector<Handle> handles = {});

  // Fails every outstanding call with `error` (e.g. the layer above revoked
  // the capability) and closes the port.
  void fail_all(const Error& error);
  // The code and text outstanding calls get when the peer closes.
  void set_peer_closed_error(Errc code, std::string text);

  std::size_t in_flight() const noexcept { return pending_.size(); }
  bool closed() const noexcept { return !port_.valid(); }
  Port& port() noexcept { return port_; }
  const Interface& interface() const noexcept { return *iface_; }

 private:
  struct Pending {
    std::uint64_t id;
    std::uint32_t method;
    Completion done;  // empty once abandoned: the answer is dropped
    std::uint64_t object = 0;
    bool control = false;
    const Interface* iface = nullptr;  // what the answer is checked against
  };
  // Answers naming an object are checked against the interface of the call
  // they answer (its Pending), found by call id.
  class AnswerTargets final : public ObjectResolver {
   public:
    explicit AnswerTargets(const Client& c) : client_(&c) {}
    Result<ObjectTarget> resolve(const EnvelopeInfo& info) const override;

   private:
    const Client* client_;
  };
  Result<void> dispatch(Message msg);
  Result<void> fail_bad_message(Error error);

  Port port_;
  const Interface* iface_;
  ClientOptions options_;
  Encoder encoder_;
  std::vector<Pending> pending_;  // small (<= max_in_flight): a scan beats a map
  std::uint64_t next_id_ = 1;
  Error peer_closed_{Errc::kClosed, "the peer closed the port with the call outstanding", 0};
};

}  // namespace capsa
