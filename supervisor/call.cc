// capsa — answering a call: the core's side of a service's Call (CallSink,
// services/service.h).
//
// An answer goes out only if the grant is still served when it is ready:
// after a revocation, a release or the holder's death the grant is gone
// from the table and the answer (with any fds it carried) is dropped here.
#include <chrono>
#include <algorithm>
#include <utility>

#include "capabilities/refusal.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

namespace {

// The grant whose port carries `call` (states made before objects existed,
// in tests, name only the grant).
GrantId port_of(const CallState& call) { return call.port != 0 ? call.port : call.grant; }

}  // namespace

GrantRecord* Supervisor::Impl::answerable(CallState& call) {
  GrantRecord* g = destroying_ ? nullptr : table_->find(call.grant);
  if (g == nullptr) {
    // Revoked, released or shutting down: nothing to answer, the call is
    // done. But an object can end while its port lives on: the holder still
    // waits for this call there, so it gets `revoked` (the port's own
    // revocation closes the port instead, which fails every call).
    call.answered = true;
    GrantRecord* port = destroying_ || call.object == 0 ? nullptr : table_->find(port_of(call));
    if (port != nullptr && port->endpoint) {
      port->endpoint->answered();
      (void)refuse_call(port->endpoint->port(), encoder_, call.call_id, call.method->ordinal,
                        Errc::kRevoked, "the object was released or revoked", call.object);
    }
  }
  return g;
}

Result<void> Supervisor::Impl::reply(CallState& call, const ReplyBuilder& build,
                                     std::vector<Handle> handles) {
  GrantRecord* g = answerable(call);
  if (g == nullptr) return make_error(Errc::kRevoked, "the grant is gone");
  flatbuffers::FlatBufferBuilder& fbb = encoder_.payload_builder();
  build(fbb);
  std::span<const std::uint8_t> payload = encoder_.payload_bytes();
  if (payload.empty()) {
    std::string why = std::string(g->iface->name()) + "." + call.method->name + " produced no reply";
    fail(call, Errc::kFailed, why);
    return make_error(Errc::kFailed, std::move(why));
  }
  return send_reply(call, *g, payload, std::move(handles));
}

Result<void> Supervisor::Impl::reply_bytes(CallState& call, std::span<const std::uint8_t> payload,
                                           std::vector<Handle> handles) {
  GrantRecord* g = answerable(call);
  if (g == nullptr) return make_error(Errc::kRevoked, "the grant is gone");
  return send_reply(call, *g, payload, std::move(handles));
}

Result<void> Supervisor::Impl::send_reply(CallState& call, GrantRecord& g,
                                          std::span<const std::uint8_t> payload,
                                          std::vector<Handle> handles) {
  if (g.limits && g.limits->budget && !g.limits->budget->charge(payload.size())) {
    fail(call, Errc::kOverloaded, "byte budget exhausted");
    return make_error(Errc::kOverloaded, "byte budget exhausted");
  }
  g.bytes += payload.size();
  Header h{MessageKind::kReply, call.call_id, call.method->ordinal, call.method->reply.type_hash,
           Errc::kFailed, {}, call.object};
  if (!answer(call, g, h, payload, std::move(handles))) {
    return make_error(Errc::kClosed, "the reply was not sent: the port is closed");
  }
  return {};
}

void Supervisor::Impl::next(CallState& call) {
  if (destroying_) return;
  // The port's order, even when the call's object is gone.
  GrantRecord* g = table_->find(port_of(call));
  if (g != nullptr && g->endpoint) g->endpoint->call_done();
}

void Supervisor::Impl::fail(CallState& call, Errc code, std::string_view text) {
  GrantRecord* g = answerable(call);
  if (g == nullptr) return;
  if (!is_wire_code(code)) code = Errc::kFailed;
  Header h{MessageKind::kError, call.call_id, call.method->ordinal, 0, code, text, call.object};
  answer(call, *g, h, {}, {});
}

Result<void> Supervisor::Impl::charge(CallState& call, std::uint64_t bytes) {
  GrantRecord* g = table_->find(call.grant);
  if (g == nullptr) return make_error(Errc::kRevoked, "grant is gone");
  if (g->limits && g->limits->budget) {
    if (auto ok = g->limits->budget->charge(bytes); !ok) return ok;
  }
  g->bytes += bytes;
  return {};
}

void Supervisor::Impl::off_loop(Call call, std::move_only_function<Continuation()> work) {
  // Without a pool (or with a queue of 0) nothing would ever free a place:
  // refusing is the only answer that completes the call.
  if (options_.reactor.pool_threads == 0 || options_.reactor.pool_queue_limit == 0) {
    return call.fail(Errc::kOverloaded, "supervisor busy: no service pool");
  }
  GrantRecord* g = table_->find(call.port() != 0 ? call.port() : call.grant());
  if (g == nullptr || !g->endpoint || table_->find(call.grant()) == nullptr) {
    return;  // gone: the Call answers as its grant's state says (answerable)
  }
  PoolJob job{std::move(call), std::move(work)};
  // Ports already waiting go first (their turn is kept); otherwise the
  // pool takes it now or the port waits (backpressure, pool_waiters.h).
  if (pool_waiters_.empty() && pool_room() && submit_to_pool(job)) return;
  g->endpoint->park(std::move(job));
  drain_pool();
}

bool Supervisor::Impl::pool_room() const noexcept {
  // The pool's own queue is FIFO: whatever waits there is past the turns
  // of pool_waiters. So the supervisor keeps at most one job queued per
  // thread beyond those running (enough to keep every thread busy while
  // the loop hands over the next), and a worker that asks now waits
  // behind at most that many jobs plus one turn of each other waiting
  // worker, however many calls they have parked.
  const std::size_t threads = options_.reactor.pool_threads;
  return pool_jobs_ < threads + std::min(threads, options_.reactor.pool_queue_limit);
}

bool Supervisor::Impl::submit_to_pool(PoolJob& job) {
  // Boxed so that a refusal (the reactor drops what it was given) leaves
  // the job with us. The Call itself never leaves the loop thread: only
  // the continuation that holds it is posted back.
  auto work = std::make_shared<std::move_only_function<Continuation()>>(std::move(job.work));
  auto holder = std::make_shared<Call>(std::move(job.call));
  auto submitted = reactor_->run_off_loop<Continuation>(
      [work] { return (*work)(); },
      [this, holder](Continuation then) mutable {
        --pool_jobs_;
        then(std::move(*holder));
        // A job is done, so the pool has room again: the next worker's turn.
        drain_pool();
      });
  if (submitted) {
    ++pool_jobs_;
    return true;
  }
  job.work = std::move(*work);
  job.call = std::move(*holder);
  return false;
}

void Supervisor::Impl::drain_pool() {
  if (destroying_) return;
  // Every job refused here is behind a queued one whose continuation calls
  // this again, so a waiting port is never forgotten.
  while (PortEndpoint* ep = pool_waiters_.front()) {
    if (!pool_room() || !submit_to_pool(ep->first_parked())) return;
    pool_waiters_.pop_front();
    ep->parked_sent();  // may resume reading; runs nothing
  }
}

bool Supervisor::Impl::answer(CallState& call, GrantRecord& grant, const Header& header,
                              std::span<const std::uint8_t> payload,
                              std::vector<Handle> handles) {
  call.answered = true;
  // The port the call came in on: the grant's own, or for an object the
  // port that serves it (alive while the object is: objects end first).
  GrantRecord* g = grant.endpoint ? &grant : table_->find(port_of(call));
  if (g == nullptr || !g->endpoint) return false;
  g->endpoint->answered();  // handles close with the vector on every early return
  // A worker being killed does not see its verdict (a refusal) before it
  // is dead (port_endpoint.cc, bad_message).
  if (g->holder != nullptr && g->holder->killing) return false;
  // Ports of grants we minted that leave with this answer: audited as
  // transferred once the packet is sent (a Get, an Open, an Attenuate).
  GrantId moved[kMaxHandlesPerMessage];
  std::size_t n_moved = 0;
  for (const Handle& h : handles) {
    if (h.kind != HandleKind::kPort || n_moved == kMaxHandlesPerMessage) continue;
    if (GrantId id = table_->find_by_inode(socket_inode(h.fd)); id != 0) moved[n_moved++] = id;
  }
  WorkerRecord* holder = g->holder;
  auto sent = send_message(g->endpoint->port(), encoder_, header, payload, std::move(handles));
  if (!sent) {
    // kWouldBlock: the holder does not read its replies. Closing the port
    // bounds what it can make us hold (the Server's rule too).
    release(g->id, sent.error().code == Errc::kClosed
                            ? "holder closed the port"
                            : "holder does not read its replies (overloaded)");
    return false;
  }
  if (call.latency != nullptr) call.latency->observe(std::chrono::steady_clock::now() - call.dispatched);
  for (std::size_t i = 0; i < n_moved; ++i) {
    (void)audit_->port_transferred(moved[i], "supervisor",
                                   holder != nullptr ? holder->name : "operator");
  }
  return true;
}

}  // namespace capsa::supervisor
