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

void PortEndpoint::deny(std::uint64_t call_id, const Method* method, Errc code,
                        std::string_view reason) {
  GrantRecord& g = *grant_;
  ++g.denials;
  if (g.holder != nullptr) ++g.holder->denials;
  const std::uint32_t ordinal = method != nullptr ? method->ordinal : 0;
  (void)ctx_->audit.call_denied(g.holder != nullptr ? g.holder->name : kOperatorName, g.id,
                                g.iface->name(), method != nullptr ? method->name : "?", reason);
  if (call_id == 0) return;  // an event: nobody waits for an answer
  const RefusalOutcome out = refuse_call(port_, ctx_->encoder, call_id, ordinal, code, reason);
  // A peer that hung up is released when its hang-up is read; one that does
  // not read its answers is cut off now, rather than answers queued
  // without bound.
  if (out.answer_failed == Errc::kOverloaded) ctx_->owner.release(g.id, out.reason);
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
  vo.accept = kAcceptCall | (service_->takes_events() ? kAcceptEvent : 0u);
  vo.rights = g.rights;
  vo.limits.max_packet_bytes = port_.max_packet_bytes();
  EnvelopeInfo info;
  auto msg = validate(std::move(*packet), *g.iface, vo, &info);
  if (!msg) {
    if (msg.error().code == Errc::kDenied) {
      deny(info.call_id, g.iface->method(info.method), Errc::kDenied,
           "method outside the grant's rights");
    } else {
      bad_message(msg.error(), info);
    }
    return;
  }
  admit(std::move(*msg), packet_bytes);
}

void PortEndpoint::admit(Message msg, std::size_t packet_bytes) {
  GrantRecord& g = *grant_;
  const Method* method = msg.method();
  if (g.holder != nullptr) {
    if (g.holder->message_rate && !g.holder->message_rate->try_acquire()) {
      return deny(msg.call_id(), method, Errc::kOverloaded,
                  "rate limit: worker messages_per_second");
    }
    if (g.limits && g.limits->rate && !g.limits->rate->try_acquire()) {
      return deny(msg.call_id(), method, Errc::kOverloaded, "rate limit: grant rate");
    }
    if (g.limits && g.limits->budget && !g.limits->budget->charge(packet_bytes)) {
      return deny(msg.call_id(), method, Errc::kOverloaded, "byte budget exhausted");
    }
  }
  const bool event = msg.kind() == MessageKind::kEvent;
  if (!event && queue_.size() + outstanding_ >= calls_in_flight_limit()) {
    return deny(msg.call_id(), method, Errc::kOverloaded, "too many calls in flight");
  }
  g.bytes += packet_bytes;
  if (event) {
    ++g.calls;
    if (g.holder != nullptr) ++g.holder->calls;
    service_->event(std::move(msg), g.id);  // may end this endpoint
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
  GrantRecord& g = *grant_;
  auto state = std::make_unique<CallState>();
  state->sink = &ctx_->calls;
  state->grant = g.id;
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
  service_->handle(Call(std::move(state)));  // may end this endpoint
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
