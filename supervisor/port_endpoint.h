// capsa — serving one port of one grant: every message from a worker to a
// supervisor service passes here.
//
// A PortEndpoint owns the supervisor's end of the port, its reactor watch,
// the service object, and the calls waiting for it. On each packet, in
// order (the first failure decides, nothing after it runs):
//   1. the port's packet rules (size <= the worker's message_bytes, no
//      truncated control data) and the validator: envelope, method known,
//      method in the grant's rights, payload against the method's table,
//      handles. A failure is a bad message (the policy's BadMessageAction)
//      or, for a well-formed call outside the rights, `denied`;
//   2. the worker's messages_per_second, then the grant's rate: `overloaded`;
//   3. the grant's byte budget (the packet's bytes): `overloaded`;
//   4. calls in flight on this port (those dispatched and not answered plus
//      those waiting) at the worker's calls_in_flight: `overloaded`;
//   5. queue, then dispatch to the service one call at a time, in order.
// A dispatched call that needs the service pool while the pool is full is
// parked here (park()) and the port is not read until the pool takes it:
// the holder's next requests wait in the kernel's socket queue, and the
// pool serves waiting workers in turn (pool_waiters.h).
// Events (one-way; only to a service that takes them, a mediated channel's
// client end) pass 1-3 and go to the service at once; a refused event is
// audited, never answered.
// Every refusal is answered (so the worker's call completes) and audited
// (capabilities/refusal.h decides what follows an answer that cannot be
// sent). A received message's fds are owned by it from the moment it is
// read: every path that drops the message closes them.
//
// Lifetime: the endpoint belongs to its grant's record (grant_table.h).
// What it reports to its owner (release, kill) may destroy it, so every
// such call is the last thing a method does, and after handing a call to
// the service it asks the owner whether its grant is still served.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capabilities/message.h"
#include "capabilities/port.h"
#include "capabilities/validator.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/pool_waiters.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/services/service.h"

namespace capsa::supervisor {

struct GrantRecord;
struct WorkerRecord;

// What an endpoint reports to the core.
class EndpointOwner {
 public:
  virtual ~EndpointOwner() = default;
  // Ends grant `id` (destroying its endpoint): the holder closed the port,
  // does not read its replies, or sent a bad message under close_port.
  virtual void release(GrantId id, std::string_view reason) = 0;
  // The holder sent a bad message under `kill`.
  virtual void kill_worker(WorkerRecord& worker, std::string_view reason) = 0;
  // True while grant `id` is served.
  virtual bool serving(GrantId id) const = 0;
  // A capsa.Object method (Release, Detach) for associated object grant
  // `object` on grant `port`'s port, in the port's order: answers the
  // message if it is a call. May end the object and, if the answer cannot
  // be sent, the port.
  virtual void control_object(GrantId port, GrantId object, Message msg) = 0;
};

// How the audit log names a bad-message action ("kill_worker" for kill).
std::string_view audit_action_name(BadMessageAction a);

// Shared by every endpoint of one supervisor (one pointer per endpoint).
struct EndpointContext {
  Reactor& reactor;
  AuditLog& audit;
  Encoder& encoder;  // error answers; loop thread only
  CallSink& calls;   // what a dispatched Call answers through
  EndpointOwner& owner;
  PoolWaiters& pool_waiters;  // ports with a call waiting for the pool
  // capsa.Object, what every associated object answers with the envelope's
  // `control` flag (nullptr: no objects are served, and naming one is a
  // bad message).
  const Interface* object_iface = nullptr;
};

// A call that waits for the service pool, and the work it will run there.
struct PoolJob {
  Call call;
  std::move_only_function<CallSink::Continuation()> work;
};

class PortEndpoint final : private ObjectResolver {
 public:
  // Serves `port` for `grant` (which owns the endpoint and outlives it).
  // The port is made non-blocking and, for a worker's grant, limited to the
  // worker's message_bytes.
  static Result<std::unique_ptr<PortEndpoint>> create(const EndpointContext& ctx,
                                                      GrantRecord& grant, Port port,
                                                      std::unique_ptr<ServiceObject> service);
  // Stops watching and closes our end: the holder sees the peer closed.
  // Queued calls (and their fds) are dropped.
  ~PortEndpoint() override;
  PortEndpoint(const PortEndpoint&) = delete;
  PortEndpoint& operator=(const PortEndpoint&) = delete;

  Port& port() noexcept { return port_; }
  ServiceObject& service() noexcept { return *service_; }
  // The service is done with the call in hand's place in order (its Call
  // was destroyed or allowed the next): the next waiting one may go.
  void call_done();
  // A dispatched call was answered: it no longer counts in flight.
  void answered() noexcept {
    if (outstanding_ > 0) --outstanding_;
  }
  // Its holder is being killed: read nothing more (what it sent stays in
  // the kernel and goes with the socket when the grant is released).
  void stop_reading();

  // The pool is full: keeps `job` and reads nothing more from the port
  // (hang-ups are still seen) until every parked job went to the pool.
  void park(PoolJob job);
  // The first parked job (pool_waiters names this endpoint at its front).
  PoolJob& first_parked() noexcept { return parked_.front(); }
  // first_parked() went to the pool; reading resumes once none is left.
  void parked_sent();

  // Calls in flight for an operator session (the control socket).
  static constexpr std::size_t kOperatorCallsInFlight = 16;

  // Associated objects served on this port (docs/PROTOCOL.md section 8).
  // Registers `g` (an object grant whose record outlives its registration:
  // the grant table removes it before destroying it) and returns its id on
  // this port: 1, 2, 3, ..., never reused here, so a released id stays
  // unknown. Ids are per port: no other port can name them.
  std::uint64_t add_object(GrantRecord& g);
  void remove_object(std::uint64_t object) noexcept;
  // The grants of its objects, ascending.
  std::vector<GrantId> object_grants() const;

 private:
  PortEndpoint(const EndpointContext& ctx, GrantRecord& grant, Port port,
               std::unique_ptr<ServiceObject> service);
  // ObjectResolver: what a message naming object `info.object` is checked
  // against (kNotFound for an id this port does not have).
  Result<ObjectTarget> resolve(const EnvelopeInfo& info) const override;
  GrantRecord* find_object(std::uint64_t object) const noexcept;
  void on_event(Events events);
  // A packet passed validation: the limits, then the queue.
  void admit(Message msg, std::size_t packet_bytes);
  // Refuses a call (or an event: audited only) on `target` (this port's
  // grant or one of its objects), answering to the object it named.
  void deny(GrantRecord& target, const EnvelopeInfo& call, const Method* method, Errc code,
            std::string_view reason);
  void bad_message(const Error& error, const EnvelopeInfo& info);
  void dispatch(Message msg);
  void pump();
  std::size_t calls_in_flight_limit() const;

  const EndpointContext* ctx_;
  GrantRecord* grant_;
  Port port_;
  WatchId watch_ = 0;
  std::unique_ptr<ServiceObject> service_;
  bool busy_ = false;     // a call is with the service and holds the order
  bool pumping_ = false;  // pump() is on the stack
  std::uint32_t outstanding_ = 0;  // dispatched, not yet answered
  std::vector<Message> queue_;  // validated calls waiting, at most calls_in_flight
  std::vector<PoolJob> parked_;  // calls waiting for the pool, oldest first
  // Allocated with the first object: a port without any pays one pointer.
  struct Objects {
    std::unordered_map<std::uint64_t, GrantRecord*> by_id;
    std::uint64_t next = 1;
  };
  std::unique_ptr<Objects> objects_;
};

}  // namespace capsa::supervisor
