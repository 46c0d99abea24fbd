// capsa — what a built-in service implementation sees of the supervisor.
//
// A service implements one interface (fs.Directory, fs.File, log.Sink, ...)
// for ONE served port: the supervisor creates a ServiceObject per grant and
// hands it each call that passed every check (validation against the
// interface, the grant's rights, rate, byte budget, calls in flight). The
// object answers each call exactly once through its `Call`, now or later.
//
// Threading: handle() and every Call method run on the reactor's loop
// thread. A service whose work may block (the host filesystem can be slow:
// NFS, FUSE) does it with Call::off_loop(): the work runs on the reactor's
// pool and must touch only what it captured by value; the continuation runs
// back on the loop thread and answers the call.
//
// Ordering: calls on one port are handed to the service one at a time, in
// order: the next call is dispatched only after the previous one was
// answered AND its Call destroyed (so a service that updates its state
// after a successful reply, such as a file position, has done so before the
// next call sees it). So a Seek then a Read on one fs.File see each other,
// and a service needs no locking of its per-port state. A service that does
// not need the order (a relay) says so with Call::allow_next().
//
// Revocation: if the grant is revoked (or its holder dies) while a call is
// being served, answering it does nothing: the port is closed, the holder
// already saw its calls fail with `revoked`, and anything the answer would
// have carried (fds, a minted capability) is closed here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "capabilities/error.h"
#include "capabilities/handle.h"
#include "capabilities/interface_registry.h"
#include "capabilities/message.h"
#include "policy/api_catalog.h"
#include "policy/model.h"
#include "supervisor/services/latency.h"

namespace capsa::supervisor {

using GrantId = std::uint64_t;
class ServiceObject;
class Call;
struct CallState;

// A worker's log line, attributed by the supervisor (never by the worker).
enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning, kError };

// The supervisor as a service sees it.
class ServiceHost {
 public:
  virtual ~ServiceHost() = default;

  // Creates a new grant held by the same worker as `parent`, served by
  // `service`, of interface `iface` with `rights` (a subset of the methods
  // that exist), and returns the worker's end of its port, ready to attach
  // to a reply as a `port` handle. The grant is recorded and audited
  // ("grant_created", origin returned, parent `parent`) before this returns,
  // so it is logged before its port is sent. Revoking `parent` revokes it.
  virtual Result<Handle> mint(GrantId parent, const Interface& iface, Rights rights,
                              std::unique_ptr<ServiceObject> service) = 0;

  // The same as an associated object (docs/PROTOCOL.md section 8) on the
  // port the call on `parent` came in on, instead of a new port: returns
  // its id there, for the reply's payload. Audited before this returns;
  // kOverloaded past the holder's `objects` limit; revoked with `parent`,
  // released with its port.
  virtual Result<std::uint64_t> mint_object(GrantId parent, const Interface& iface, Rights rights,
                                            std::unique_ptr<ServiceObject> service) = 0;

  // Writes one of a worker's log lines to the supervisor's log. `text` is
  // the worker's: the host replaces control characters before printing.
  virtual void worker_log(std::string_view worker, LogLevel level, std::string_view text) = 0;

  // The interfaces the supervisor serves (to find fs.File for Open, say).
  virtual const Interface* find_interface(std::string_view name) const = 0;
};

// Fills a reply's payload: the builder is cleared and owned by the core.
using ReplyBuilder = std::function<void(flatbuffers::FlatBufferBuilder&)>;

// What the supervisor core does with a Call: the only part of the core a
// service's calls reach (services never see the grant table or the
// supervisor's state). Implemented by the core (supervisor/call.cc).
class CallSink {
 public:
  using Continuation = std::move_only_function<void(Call)>;
  virtual ~CallSink() = default;
  virtual Result<void> reply(CallState& call, const ReplyBuilder& build,
                             std::vector<Handle> handles) = 0;
  // A reply whose payload is already built (a relayed answer, validated
  // against the call's method by the caller).
  virtual Result<void> reply_bytes(CallState& call, std::span<const std::uint8_t> payload,
                                   std::vector<Handle> handles) = 0;
  // The service is done with the call's place in its port's order (the Call
  // was destroyed, or allow_next()): the next call may be dispatched.
  virtual void next(CallState& call) = 0;
  virtual void fail(CallState& call, Errc code, std::string_view text) = 0;
  virtual Result<void> charge(CallState& call, std::uint64_t bytes) = 0;
  // Runs `work` on the reactor's pool and hands `call` to its result on
  // the loop thread. While the pool is full the call waits (its port is
  // not read meanwhile) and goes in its worker's turn.
  virtual void off_loop(Call call, std::move_only_function<Continuation()> work) = 0;
  virtual ServiceHost& host() = 0;
};

// One call being served. Move-only; answer exactly once with reply() or
// fail(). A Call dropped unanswered answers `failed` ("service dropped the
// call"), so a service bug cannot leave a worker waiting forever.
class Call {
 public:
  Call(Call&&) noexcept;
  Call& operator=(Call&&) noexcept;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  ~Call();

  // The validated request: payload_as<T>() with T the method's request type,
  // take_handle(i) for its handles.
  Message& request() noexcept;
  const Method& method() const noexcept;
  // The grant the call is for: its port's, or the associated object's.
  GrantId grant() const noexcept;
  // The grant whose port it came in on (grant() unless the call names an
  // object).
  GrantId port() const noexcept;
  const std::string& worker() const noexcept;  // the holder's name
  ServiceHost& host() noexcept;

  // Sends the reply. `build` fills the builder (cleared, owned by the
  // supervisor) and must Finish() it with the method's reply table; it runs
  // only if the port is still served. Handles are attached in order (index
  // 0, 1, ...) and are closed if the port is gone. The reply's payload bytes
  // count against the grant's byte budget; over budget, the call fails with
  // `overloaded` instead. Succeeds only when the reply was sent (a service
  // whose state depends on the worker having the answer, such as a file
  // position, updates it only then); otherwise says why it was not.
  Result<void> reply(const ReplyBuilder& build, std::vector<Handle> handles = {});
  // The same with a payload built elsewhere: a finished flatbuffer of the
  // method's reply table (a relay passes on an answer it validated).
  Result<void> reply_bytes(std::span<const std::uint8_t> payload, std::vector<Handle> handles);
  // The next call on this port may be dispatched before this one is
  // answered (calls in flight still count it until then).
  void allow_next();
  // Sends an error with a wire code (kBadMessage, kDenied, kNotFound,
  // kOverloaded, kFailed; any other code is sent as kFailed).
  void fail(Errc code, std::string_view text);
  void fail(const Error& error) { fail(error.code, error.message); }

  // Charges `bytes` (data the service moves besides the reply, e.g. a file
  // handed out whole) to the grant's byte budget; kOverloaded when it does
  // not fit (nothing is charged then).
  Result<void> charge(std::uint64_t bytes);

  // Runs `work` on the reactor's pool, then `then(call, result)` on the loop
  // thread. If the pool is busy the call waits its worker's turn (neither
  // runs if its port is revoked or closed meanwhile). `work` must not touch
  // loop-owned state.
  template <typename T>
  void off_loop(std::move_only_function<T()> work,
                std::move_only_function<void(Call, T)> then) {
    // The pool runs `work` and binds its result to `then`; only the bound
    // continuation comes back to the loop thread.
    submit_off_loop([work = std::move(work), then = std::move(then)]() mutable
                        -> std::move_only_function<void(Call)> {
      return [then = std::move(then), result = work()](Call call) mutable {
        then(std::move(call), std::move(result));
      };
    });
  }

  // Internal: made by the supervisor core.
  explicit Call(std::unique_ptr<CallState> state) noexcept;

 private:
  using Continuation = CallSink::Continuation;
  void submit_off_loop(std::move_only_function<Continuation()> work);
  // Answers `failed` if unanswered, then releases the call's place in order.
  void finish() noexcept;
  std::unique_ptr<CallState> state_;
};

// What a Call carries. Made and read by the core; a service uses Call.
struct CallState {
  CallSink* sink = nullptr;
  GrantId grant = 0;  // the target: the port's grant, or an object's
  GrantId port = 0;   // the grant whose port carries the call and its answer
  std::uint64_t object = 0;  // the object the call named (0: none); its answer names it too
  std::uint64_t call_id = 0;
  const Method* method = nullptr;
  Message request;
  const std::string* worker = nullptr;  // the holder's name (outlives the call)
  bool answered = false;
  bool next_allowed = false;  // next() was reported
  // The histogram the answer's latency goes to (nullptr: not measured) and
  // when the call was dispatched (docs/SUPERVISOR.md, "Metrics").
  LatencyHistogram* latency = nullptr;
  std::chrono::steady_clock::time_point dispatched{};
};

// Serves one port of one grant.
class ServiceObject {
 public:
  virtual ~ServiceObject() = default;
  // One validated call whose method is in the grant's rights.
  virtual void handle(Call call) = 0;
  // A service object for an attenuated or delegated copy of this grant (the
  // same resource, its own per-port state). nullptr when the service cannot
  // be copied (then Attenuate answers `denied`, and the port cannot travel
  // over a mediated channel).
  virtual std::unique_ptr<ServiceObject> clone() const = 0;
  // Whether the port accepts one-way events (built-in services define
  // none; a mediated channel relays them). Events pass the same checks as
  // calls except calls in flight, and are never answered.
  virtual bool takes_events() const { return false; }
  // One validated event sent on grant `from`'s port.
  virtual void event(Message /*msg*/, GrantId /*from*/) {}
};

// How the supervisor makes the service object for a policy grant of one
// API. Called on the loop thread when a worker Gets the grant; it must not
// block (do host I/O, such as opening a directory root, in `prepare`).
struct ServiceFactory {
  std::string api;  // fully qualified interface name, e.g. "fs.Directory"
  // Constraint fields of the API, for the policy checker (policy/api_catalog.h).
  std::vector<policy::ConstraintSpec> constraints;
  // Runs once per (worker, grant) when the worker starts, before it is
  // served (may do host I/O: e.g. open the directory root). Whatever it
  // returns is passed to `make` for every Get of that grant. An error makes
  // the worker fail to start, with the reason.
  std::function<Result<std::shared_ptr<const void>>(const policy::Grant&)> prepare;
  // A service object for one Get of the grant.
  std::function<std::unique_ptr<ServiceObject>(const policy::Grant&,
                                               const std::shared_ptr<const void>& prepared,
                                               ServiceHost& host)>
      make;
};

}  // namespace capsa::supervisor
