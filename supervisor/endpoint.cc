// capsa — serving a port: every message from a worker passes here.
//
// Order of checks on each packet (DESIGN.md, "Wire protocol"; the first
// failure decides, and nothing after it runs):
//   1. the port's packet rules (size <= the worker's message_bytes, no
//      truncated control data) and the validator: envelope, method known,
//      method in the grant's rights, payload against the method's table,
//      handles; a failure is a bad message (the policy's action) or, for a
//      well-formed call outside the rights, `denied`;
//   2. the worker's messages_per_second, then the grant's rate: `overloaded`;
//   3. the grant's byte budget (the packet's bytes): `overloaded`;
//   4. calls in flight on this port (the one being served plus those
//      waiting) at the worker's calls_in_flight: `overloaded`.
// Every refusal is answered (so the worker's call completes) and audited.
// A received message's fds are owned by it from the moment it is read:
// every path that drops the message closes them.
#include <algorithm>
#include <utility>

#include "capabilities/validator.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

namespace {

// The name a session of the control socket is reported under (a Call
// points at its holder's name instead of copying it per call).
const std::string kOperatorName = "operator";

// Calls in flight for an operator session (the control socket).
constexpr std::size_t kOperatorCallsInFlight = 16;

std::string_view action_name(policy::BadMessageAction a) {
  switch (a) {
    case policy::BadMessageAction::kReplyError: return "reply_error";
    case policy::BadMessageAction::kClosePort: return "close_port";
    case policy::BadMessageAction::kKill: return "kill_worker";
  }
  return "?";
}

}  // namespace

std::size_t Supervisor::Impl::calls_in_flight_limit(const GrantRecord& g) const {
  if (g.holder == nullptr) return kOperatorCallsInFlight;
  return std::max<std::uint64_t>(1, g.holder->profile->limits.calls_in_flight);
}

void Supervisor::Impl::deny(GrantRecord& g, std::uint64_t call_id, const Method* method,
                            Errc code, std::string_view reason) {
  ++g.denials;
  if (g.holder != nullptr) ++g.holder->denials;
  const std::uint32_t ordinal = method != nullptr ? method->ordinal : 0;
  (void)audit->call_denied(g.holder != nullptr ? g.holder->name : "operator", g.id,
                           g.iface->name(), method != nullptr ? method->name : "?", reason);
  Header h{MessageKind::kError, call_id, ordinal, 0, code, reason};
  auto sent = send_message(g.port, encoder, h, {}, {});
  if (!sent && sent.error().code != Errc::kClosed) {
    // The worker does not read its answers (its receive queue is full):
    // the port is closed rather than queueing answers without bound.
    release(g.id, "holder does not read its replies (overloaded)");
  }
}

void Supervisor::Impl::bad_message(GrantRecord& g, const Error& error, const EnvelopeInfo& info) {
  WorkerRecord* w = g.holder;
  const policy::BadMessageAction action =
      w != nullptr ? w->profile->on_bad_message : policy::BadMessageAction::kClosePort;
  if (w != nullptr) ++w->bad_messages;
  (void)audit->bad_message(w != nullptr ? w->name : "operator", g.id, error.message,
                           action_name(action));
  switch (action) {
    case policy::BadMessageAction::kReplyError: {
      Header h{MessageKind::kError, info.envelope_ok ? info.call_id : 0, info.method, 0,
               Errc::kBadMessage, error.message};
      auto sent = send_message(g.port, encoder, h, {}, {});
      if (!sent && sent.error().code != Errc::kClosed) {
        release(g.id, "holder does not read its replies (overloaded)");
      }
      return;
    }
    case policy::BadMessageAction::kClosePort:
      release(g.id, "bad message: port closed");
      return;
    case policy::BadMessageAction::kKill:
      // Chromium's rule for a renderer that sends a bad IPC: it is assumed
      // compromised. Nothing more is read from any of its ports, and none
      // is closed before it is dead: a worker must not see its verdict
      // (a closed port) and act on it while the kill is on its way. Its
      // grants are released when it is reaped.
      kill_worker(*w, "bad message");
      return;
  }
}

void Supervisor::Impl::on_port_event(GrantId id, Events events) {
  GrantRecord* g = find_grant(id);
  if (g == nullptr) return;
  if (g->holder != nullptr && g->holder->killing) {
    // Being killed: stop serving (what it sent stays unread in the kernel
    // and goes with the socket when the grant is released at the reap).
    reactor->unwatch(std::exchange(g->watch, 0));
    return;
  }
  if (!events.readable() && (events.hung_up() || events.error())) {
    release(id, "holder closed the port");
    return;
  }
  // One packet per callback: the reactor is level-triggered, so a busy port
  // is called again, after the other ready fds of this turn (fairness).
  auto packet = g->port.receive();
  if (!packet) {
    switch (packet.error().code) {
      case Errc::kWouldBlock: return;
      case Errc::kClosed: release(id, "holder closed the port"); return;
      case Errc::kBadMessage: bad_message(*g, packet.error(), EnvelopeInfo{}); return;
      default: release(id, "receive failed: " + packet.error().message); return;
    }
  }
  const std::size_t packet_bytes = packet->bytes.size();
  ValidateOptions vo;
  vo.accept = kAcceptCall;  // built-in services define no events
  vo.rights = g->rights;
  vo.limits.max_packet_bytes = g->port.max_packet_bytes();
  EnvelopeInfo info;
  auto msg = validate(std::move(*packet), *g->iface, vo, &info);
  if (!msg) {
    if (msg.error().code == Errc::kDenied) {
      deny(*g, info.call_id, g->iface->method(info.method), Errc::kDenied,
           "method outside the grant's rights");
    } else {
      bad_message(*g, msg.error(), info);
    }
    return;
  }
  const Method* method = msg->method();
  if (g->holder != nullptr) {
    if (g->holder->message_rate && !g->holder->message_rate->try_acquire()) {
      deny(*g, msg->call_id(), method, Errc::kOverloaded,
           "rate limit: worker messages_per_second");
      return;
    }
    if (g->limits && g->limits->rate && !g->limits->rate->try_acquire()) {
      deny(*g, msg->call_id(), method, Errc::kOverloaded, "rate limit: grant rate");
      return;
    }
    if (g->limits && g->limits->budget && !g->limits->budget->charge(packet_bytes)) {
      deny(*g, msg->call_id(), method, Errc::kOverloaded, "byte budget exhausted");
      return;
    }
  }
  if (g->queue.size() + (g->busy ? 1 : 0) >= calls_in_flight_limit(*g)) {
    deny(*g, msg->call_id(), method, Errc::kOverloaded, "too many calls in flight");
    return;
  }
  g->bytes += packet_bytes;
  if (!g->busy && g->queue.empty() && !g->pumping) {
    // The common case: nothing waiting, no queue allocation.
    dispatch(*g, std::move(*msg));
    if (GrantRecord* again = find_grant(id); again != nullptr && !again->busy) pump(id);
    return;
  }
  g->queue.push_back(std::move(*msg));
  pump(id);
}

void Supervisor::Impl::dispatch(GrantRecord& g, Message msg) {
  auto state = std::make_unique<CallState>();
  state->sink = this;
  state->grant = g.id;
  state->call_id = msg.call_id();
  state->method = msg.method();
  state->request = std::move(msg);
  state->worker = g.holder != nullptr ? &g.holder->name : &kOperatorName;
  g.busy = true;
  ++g.calls;
  if (g.holder != nullptr) ++g.holder->calls;
  g.service->handle(Call(std::move(state)));
}

void Supervisor::Impl::pump(GrantId id) {
  GrantRecord* g = find_grant(id);
  if (g == nullptr || g->pumping) return;
  g->pumping = true;
  // A service may answer inside handle(); the loop then hands it the next
  // call, without recursion. Anything may be released meanwhile: the
  // record is looked up again after every handle().
  while (g != nullptr && !g->busy && !g->queue.empty()) {
    Message next = std::move(g->queue.front());
    g->queue.erase(g->queue.begin());
    dispatch(*g, std::move(next));
    g = find_grant(id);
  }
  if (g != nullptr) {
    g->pumping = false;
    if (g->queue.empty() && g->queue.capacity() > 0) {
      // Give the queue's memory back: a port that once had calls waiting
      // should not keep costing memory (10,000 idle grants).
      std::vector<Message>().swap(g->queue);
    }
  }
}

void Supervisor::Impl::call_done(GrantId id) {
  GrantRecord* g = find_grant(id);
  if (g == nullptr) return;
  g->busy = false;
  if (!g->pumping) pump(id);
}

Result<void> Supervisor::serve_operator(Port port, const Interface& iface,
                                        std::unique_ptr<ServiceObject> service) {
  auto g = impl_->serve(nullptr, std::move(port), iface, kAllRights, GrantOrigin::kPolicy, "",
                        std::move(service));
  if (!g) return std::unexpected(g.error());
  return {};
}

}  // namespace capsa::supervisor
