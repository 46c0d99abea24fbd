// capsa — serving one port (port_endpoint.h).
#include "supervisor/port_endpoint.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "capabilities/refusal.h"
#include "supervisor/grant_table.h"

namespace capsa::supervisor {

namespace {

// The name a session of the control socket is reported under (a Call
// points at its holder's name instead of copying it per call).
const std::string kOperatorName = "operator";

}  // namespace

std::string_view audit_action_name(BadMessageAction a) {
  return a == BadMessageAction::kKill ? "kill_worker" : to_string(a);
}

Result<std::unique_ptr<PortEndpoint>> PortEndpoint::create(const EndpointContext& ctx,
                                                           GrantRecord& grant, Port port,
                                                           std::unique_ptr<ServiceObject> service) {
  CAPSA_TRY(port.set_nonblocking(true));
  if (grant.holder != nullptr) port.set_max_packet_bytes(grant.holder->profile->limits.message_bytes);
  std::unique_ptr<PortEndpoint> ep(
      new PortEndpoint(ctx, grant, std::move(port), std::move(service)));
  PortEndpoint* raw = ep.get();
  CAPSA_ASSIGN_OR_RETURN(ep->watch_, ctx.reactor.watch(ep->port_.fd(), Interest::kReadable,
                                                       [raw](Events ev) { raw->on_event(ev); }));
  return ep;
}

PortEndpoint::PortEndpoint(const EndpointContext& ctx, GrantRecord& grant, Port port,
                           std::unique_ptr<ServiceObject> service)
    : ctx_(&ctx), grant_(&grant), port_(std::move(port)), service_(std::move(service)) {}

PortEndpoint::~PortEndpoint() {
  if (watch_ != 0) ctx_->reactor.unwatch(watch_);
  // Parked calls die with the endpoint (their fds closed, their answers
  // dropped: the grant is out of the table by now); the pool's turn must
  // not name it any more.
  if (!parked_.empty()) ctx_->pool_waiters.remove(this);
}

void PortEndpoint::stop_reading() {
  if (watch_ != 0) ctx_->reactor.unwatch(std::exchange(watch_, 0));
  // A holder being killed gets no pool time: its parked calls stay here
  // until its grants are released (when it is reaped).
  if (!parked_.empty()) ctx_->pool_waiters.remove(this);
}

void PortEndpoint::park(PoolJob job) {
  parked_.push_back(std::move(job));
  ctx_->pool_waiters.add(grant_->holder, this);
  // Interest none: only hang-ups and errors are reported, so a holder that
  // closes a waiting port is released at once. modify() cannot fail on a
  // live watch short of the kernel running out of memory; the port would
  // then keep being read, bounded by calls_in_flight as before.
  if (parked_.size() == 1 && watch_ != 0) (void)ctx_->reactor.modify(watch_, Interest::kNone);
}

void PortEndpoint::parked_sent() {
  parked_.erase(parked_.begin());
  if (!parked_.empty()) return;
  std::vector<PoolJob>().swap(parked_);  // no memory kept by an idle port
  if (watch_ != 0) (void)ctx_->reactor.modify(watch_, Interest::kReadable);
}

std::size_t PortEndpoint::calls_in_flight_limit() const {
  if (grant_->holder == nullptr) return kOperatorCallsInFlight;
  return std::max<std::uint64_t>(1, grant_->holder->profile->limits.calls_in_flight);
}

std::uint64_t PortEndpoint::add_object(GrantRecord& g) {
  if (!objects_) objects_ = std::make_unique<Objects>();
  const std::uint64_t id = objects_->next++;
  objects_->by_id.emplace(id, &g);
  return id;
}

void PortEndpoint::remove_object(std::uint64_t object) noexcept {
  if (!objects_) return;
  objects_->by_id.erase(object);
  // A port whose objects are all gone gives the table's memory back (a
  // worker opening and releasing files one at a time keeps memory flat);
  // the id counter must survive, so that an old id stays unknown.
  if (objects_->by_id.empty() && objects_->by_id.bucket_count() > 64) {
    std::unordered_map<std::uint64_t, GrantRecord*>().swap(objects_->by_id);
  }
}

std::vector<GrantId> PortEndpoint::object_grants() const {
  std::vector<GrantId> out;
  if (!objects_) return out;
  out.reserve(objects_->by_id.size());
  for (const auto& [id, g] : objects_->by_id) out.push_back(g->id);
  std::sort(out.begin(), out.end());
  return out;
}

GrantRecord* PortEndpoint::find_object(std::uint64_t object) const noexcept {
  if (!objects_) return nullptr;
  auto it = objects_->by_id.find(object);
  return it == objects_->by_id.end() ? nullptr : it->second;
}

Result<ObjectTarget> PortEndpoint::resolve(const EnvelopeInfo& info) const {
  const GrantRecord* g = find_object(info.object);
  if (g == nullptr) {
    // Never issued here, released, or revoked: the same answer for each, so
    // a worker learns nothing about ids of other ports (there are none to
    // learn: ids are per port).
    return make_error(Errc::kNotFound, "no object " + std::to_string(info.object) + " on this port");
  }
  if (info.control) {
    if (ctx_->object_iface == nullptr) return make_error(Errc::kBadMessage, "no capsa.Object here");
    // Release and Detach add no authority: no rights are needed.
    return ObjectTarget{ctx_->object_iface, kAllRights};
  }
  return ObjectTarget{g->iface, g->rights};
}

void PortEndpoint::deny(GrantRecord& target, const EnvelopeInfo& call, const Method* method,
                        Errc code, std::string_view reason) {
  GrantRecord& g = target;
  ++g.denials;
  if (g.holder != nullptr) ++g.holder->denials;
  const std::uint32_t ordinal = method != nullptr ? method->ordinal : call.method;
  (void)ctx_->audit.call_denied(g.holder != nullptr ? g.holder->name : kOperatorName, g.id,
                                g.iface->name(), method != nullptr ? method->name : "?", reason);
  if (call.call_id == 0) return;  // an event: nobody waits for an answer
  const RefusalOutcome out = refuse_call(port_, ctx_->encoder, call.call_id, ordinal, code, reason,
                                         call.object, call.control);
  // A peer that hung up is released when its hang-up is read; one that does
  // not read its answers is cut off now, rather than answers queued
  // without bound.
  if (out.answer_failed == Errc::kOverloaded) ctx_->owner.release(grant_->id, out.reason);
}

void PortEndpoint::bad_message(const Error& error, const EnvelopeInfo& info) {
  GrantRecord& g = *grant_;
  WorkerRecord* w = g.holder;
  const BadMessageAction action =
      w != nullptr ? w->profile->on_bad_message : BadMessageAction::kClosePort;
  if (w != nullptr) ++w->bad_messages;
  (void)ctx_->audit.bad_message(w != nullptr ? w->name : kOperatorName, g.id, error.message,
                                audit_action_name(action));
  const RefusalOutcome out = refuse_packet(port_, ctx_->encoder, error, info, action);
  switch (out.next) {
    case AfterRefusal::kKeepServing:
      return;
    case AfterRefusal::kClosePort:
      if (out.answer_failed == Errc::kClosed) return;  // released when the hang-up is read
      ctx_->owner.release(g.id, out.reason);
      return;
    case AfterRefusal::kKill:
      // Chromium's rule for a renderer that sends a bad IPC: it is assumed
      // compromised. Nothing more is read from any of its ports, and none
      // is closed before it is dead: a worker must not see its verdict
      // (a closed port) and act on it while the kill is on its way. Its
      // grants are released when it is reaped.
      ctx_->owner.kill_worker(*w, out.reason);
      return;
  }
}

void PortEndpoint::on_event(Events events) {
  GrantRecord& g = *grant_;
  if (g.holder != nullptr && g.holder->killing) {
    stop_reading();
    return;
  }
  if (!events.readable() && (events.hung_up() || events.error())) {
    ctx_->owner.release(g.id, "holder closed the port");
    return;
  }
  // Turns go to workers, not ports (issue 15): one packet per worker per
  // loop turn, so a worker with many busy ports gets what a worker with one
  // gets. Its other ready ports are reported again next turn (level-
  // triggered), and the reactor starts each turn's batch elsewhere, so they
  // take turns among themselves. An operator session is not a worker. A
  // hang-up is handled at once (it ends the port: no turn to share, and its
  // release should not wait for the holder's other ports).
  if (WorkerRecord* w = g.holder; w != nullptr && !events.hung_up() && !events.error()) {
    const std::uint64_t turn = ctx_->reactor.turn();
    if (w->read_turn == turn) return;
    w->read_turn = turn;
  }
  // One packet per callback: the reactor is level-triggered, so a busy port
  // is called again, after the other ready fds of this turn (fairness).
  auto packet = port_.receive();
  if (!packet) {
    switch (packet.error().code) {
      case Errc::kWouldBlock: return;
      case Errc::kClosed: ctx_->owner.release(g.id, "holder closed the port"); return;
      case Errc::kBadMessage: bad_message(packet.error(), EnvelopeInfo{}); return;
      default: ctx_->owner.release(g.id, "receive failed: " + packet.error().message); return;
    }
  }
  const std::size_t packet_bytes = packet->bytes.size();
  ValidateOptions vo;
  // Any port may name an object, issued on it or not: an id this port does
  // not know is `not found` (audited, the port stays usable), never a
  // reason to close it. An object's Release is an event, so where objects
  // are served the verdict on an event waits for its target (below).
  const bool objects = ctx_->object_iface != nullptr && g.holder != nullptr;
  vo.accept = kAcceptCall | (service_->takes_events() || objects ? kAcceptEvent : 0u);
  vo.rights = g.rights;
  vo.limits.max_packet_bytes = port_.max_packet_bytes();
  if (objects) vo.objects = this;
  EnvelopeInfo info;
  auto msg = validate(std::move(*packet), *g.iface, vo, &info);
  if (!msg) {
    GrantRecord* target = info.object != 0 && !info.control ? find_object(info.object) : nullptr;
    if (msg.error().code == Errc::kDenied) {
      GrantRecord& t = target != nullptr ? *target : g;
      deny(t, info, t.iface->method(info.method), Errc::kDenied, "method outside the grant's rights");
    } else if (msg.error().code == Errc::kNotFound) {
      deny(g, info, nullptr, Errc::kNotFound, msg.error().message);
    } else {
      bad_message(msg.error(), info);
    }
    return;
  }
  if (msg->kind() == MessageKind::kEvent && !msg->control()) {
    const GrantRecord* target = msg->object() != 0 ? find_object(msg->object()) : nullptr;
    const ServiceObject& s = target != nullptr ? *target->object_service : *service_;
    if (!s.takes_events()) {
      return bad_message(Error{Errc::kBadMessage, "a event is not expected on this port", 0}, info);
    }
  }
  admit(std::move(*msg), packet_bytes);
}

void PortEndpoint::admit(Message msg, std::size_t packet_bytes) {
  // The grant the message is for: this port's, or the object it names
  // (found by the validator a moment ago: nothing ran in between).
  GrantRecord* object = msg.object() != 0 ? find_object(msg.object()) : nullptr;
  GrantRecord& g = object != nullptr ? *object : *grant_;
  const Method* method = msg.method();
  const EnvelopeInfo call{true, msg.kind(), msg.call_id(), method->ordinal, msg.object(), msg.control()};
  if (g.holder != nullptr) {
    if (g.holder->message_rate && !g.holder->message_rate->try_acquire()) {
      return deny(g, call, method, Errc::kOverloaded, "rate limit: worker messages_per_second");
    }
    // An object shares its parent's limits (SharedLimits): opening objects
    // resets no rate and no budget.
    if (g.limits && g.limits->rate && !g.limits->rate->try_acquire()) {
      return deny(g, call, method, Errc::kOverloaded, "rate limit: grant rate");
    }
    if (g.limits && g.limits->budget && !g.limits->budget->charge(packet_bytes)) {
      return deny(g, call, method, Errc::kOverloaded, "byte budget exhausted");
    }
  }
  // A control message (an object's Release or Detach) keeps the port's
  // order like a call, event or not: a Release sent after a Read is served
  // after it.
  const bool event = msg.kind() == MessageKind::kEvent && !msg.control();
  if (!event && queue_.size() + outstanding_ >= calls_in_flight_limit()) {
    return deny(g, call, method, Errc::kOverloaded, "too many calls in flight");
  }
  g.bytes += packet_bytes;
  if (event) {
    ++g.calls;
    if (g.holder != nullptr) ++g.holder->calls;
    ServiceObject& s = object != nullptr ? *object->object_service : *service_;
    s.event(std::move(msg), g.id);  // may end this endpoint
    return;
  }
  if (!busy_ && queue_.empty() && !pumping_) {
    // The common case: nothing waiting, no queue allocation.
    // dispatch() may end this endpoint: what is asked after comes from
    // locals, never from `this`, until the owner says it still serves.
    const GrantId id = g.id;
    const EndpointContext* ctx = ctx_;
    dispatch(std::move(msg));
    if (ctx->owner.serving(id) && !busy_) pump();
    return;
  }
  queue_.push_back(std::move(msg));
  pump();
}

void PortEndpoint::dispatch(Message msg) {
  GrantRecord* target = grant_;
  ServiceObject* service = service_.get();
  if (msg.object() != 0) {
    target = find_object(msg.object());
    if (target == nullptr) {
      // Released or revoked while the call waited its turn.
      if (msg.kind() != MessageKind::kCall) return;
      const EnvelopeInfo call{true, msg.kind(), msg.call_id(), msg.method()->ordinal,
                              msg.object(), msg.control()};
      return deny(*grant_, call, msg.method(), Errc::kRevoked,
                  "object " + std::to_string(msg.object()) + " was released or revoked");
    }
    if (msg.control()) {
      ++target->calls;
      // Synchronous, and never holds the order: the next call may follow.
      return ctx_->owner.control_object(grant_->id, target->id, std::move(msg));  // may end this endpoint
    }
    service = target->object_service.get();
  }
  GrantRecord& g = *target;
  auto state = std::make_unique<CallState>();
  state->sink = &ctx_->calls;
  state->grant = g.id;
  state->port = grant_->id;
  state->object = msg.object();
  state->call_id = msg.call_id();
  state->method = msg.method();
  state->request = std::move(msg);
  state->worker = g.holder != nullptr ? &g.holder->name : &kOperatorName;
  if (g.latency != nullptr) {  // measured until the answer is sent (call.cc)
    state->latency = g.latency->of(state->method);
    state->dispatched = std::chrono::steady_clock::now();
  }
  busy_ = true;
  ++outstanding_;
  ++g.calls;
  if (g.holder != nullptr) ++g.holder->calls;
  service->handle(Call(std::move(state)));  // may end this endpoint
}

void PortEndpoint::pump() {
  if (pumping_) return;
  pumping_ = true;
  const GrantId id = grant_->id;
  const EndpointContext* ctx = ctx_;
  // A service may answer inside handle(); the loop then hands it the next
  // call, without recursion. The grant may be released meanwhile (then
  // `this` is gone): asked again, from locals, after every handle().
  while (!busy_ && !queue_.empty()) {
    Message next = std::move(queue_.front());
    queue_.erase(queue_.begin());
    dispatch(std::move(next));
    if (!ctx->owner.serving(id)) return;
  }
  pumping_ = false;
  if (queue_.empty() && queue_.capacity() > 0) {
    // Give the queue's memory back: a port that once had calls waiting
    // should not keep costing memory (10,000 idle grants).
    std::vector<Message>().swap(queue_);
  }
}

void PortEndpoint::call_done() {
  busy_ = false;
  if (!pumping_) pump();
}

}  // namespace capsa::supervisor
