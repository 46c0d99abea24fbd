// capsa — answering a call (service.h).
//
// An answer goes out only if the grant is still served when it is ready:
// after a revocation, a release or the holder's death the grant is gone
// from the table and the answer (with any fds it carried) is dropped here.
#include <utility>

#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

Call::Call(std::unique_ptr<CallState> state) noexcept : state_(std::move(state)) {}
Call::Call(Call&&) noexcept = default;
Call& Call::operator=(Call&& other) noexcept {
  if (this != &other) {
    if (state_ && !state_->answered) fail(Errc::kFailed, "service dropped the call");
    state_ = std::move(other.state_);
  }
  return *this;
}

Call::~Call() {
  if (state_ && !state_->answered) fail(Errc::kFailed, "service dropped the call");
}

Message& Call::request() noexcept { return state_->request; }
const Method& Call::method() const noexcept { return *state_->method; }
GrantId Call::grant() const noexcept { return state_->grant; }
const std::string& Call::worker() const noexcept { return *state_->worker; }
ServiceHost& Call::host() noexcept { return *state_->impl->self; }

bool Call::reply(const std::function<void(flatbuffers::FlatBufferBuilder&)>& build,
                 std::vector<Handle> handles) {
  if (!state_ || state_->answered) return false;
  Supervisor::Impl& impl = *state_->impl;
  if (impl.destroying) {
    state_->answered = true;
    return false;
  }
  GrantRecord* g = impl.find_grant(state_->grant);
  if (g == nullptr) {
    state_->answered = true;  // revoked or released: nothing to answer
    return false;
  }
  flatbuffers::FlatBufferBuilder& fbb = impl.encoder.payload_builder();
  build(fbb);
  std::span<const std::uint8_t> payload = impl.encoder.payload_bytes();
  if (payload.empty()) {
    fail(Errc::kFailed, std::string(g->iface->name()) + "." + state_->method->name +
                            " produced no reply");
    return false;
  }
  if (g->limits && g->limits->budget && !g->limits->budget->charge(payload.size())) {
    fail(Errc::kOverloaded, "byte budget exhausted");
    return false;
  }
  g->bytes += payload.size();
  Header h{MessageKind::kReply, state_->call_id, state_->method->ordinal,
           state_->method->reply.type_hash, Errc::kFailed, {}};
  return impl.answer(*state_, h, payload, std::move(handles));
}

void Call::fail(Errc code, std::string_view text) {
  if (!state_ || state_->answered) return;
  if (state_->impl->destroying) {
    state_->answered = true;
    return;
  }
  if (!is_wire_code(code)) code = Errc::kFailed;
  Header h{MessageKind::kError, state_->call_id, state_->method->ordinal, 0, code, text};
  state_->impl->answer(*state_, h, {}, {});
}

Result<void> Call::charge(std::uint64_t bytes) {
  GrantRecord* g = state_->impl->find_grant(state_->grant);
  if (g == nullptr) return make_error(Errc::kRevoked, "grant is gone");
  if (g->limits && g->limits->budget) {
    if (auto ok = g->limits->budget->charge(bytes); !ok) return ok;
  }
  g->bytes += bytes;
  return {};
}

void Call::submit_off_loop(std::move_only_function<Continuation()> work) {
  Supervisor::Impl& impl = *state_->impl;
  // The Call waits for the result inside the continuation; if the reactor
  // drops the job (shutdown), the Call is destroyed unanswered, which is a
  // no-op once the supervisor is being destroyed.
  auto holder = std::make_shared<Call>(std::move(*this));
  auto submitted = impl.reactor->run_off_loop<Continuation>(
      std::move(work), [holder](Continuation then) mutable { then(std::move(*holder)); });
  if (!submitted) {
    holder->fail(Errc::kOverloaded, "supervisor busy: the service pool is full");
  }
}

bool Supervisor::Impl::answer(CallState& call, const Header& header,
                              std::span<const std::uint8_t> payload,
                              std::vector<Handle> handles) {
  call.answered = true;
  GrantRecord* g = find_grant(call.grant);
  if (g == nullptr) return false;  // handles close with the vector
  // Ports of grants we minted that leave with this answer: audited as
  // transferred once the packet is sent (a Get, an Open, an Attenuate).
  GrantId moved[kMaxHandlesPerMessage];
  std::size_t n_moved = 0;
  for (const Handle& h : handles) {
    if (h.kind != HandleKind::kPort || n_moved == kMaxHandlesPerMessage) continue;
    auto it = by_inode.find(socket_inode(h.fd));
    if (it != by_inode.end()) moved[n_moved++] = it->second;
  }
  WorkerRecord* holder = g->holder;
  auto sent = send_message(g->port, encoder, header, payload, std::move(handles));
  if (!sent) {
    if (sent.error().code == Errc::kClosed) {
      release(call.grant, "holder closed the port");
    } else {
      // kWouldBlock: the holder does not read its replies. Closing the port
      // bounds what it can make us hold (the Server's rule too).
      release(call.grant, "holder does not read its replies (overloaded)");
    }
    return false;
  }
  for (std::size_t i = 0; i < n_moved; ++i) {
    (void)audit->port_transferred(moved[i], "supervisor", holder != nullptr ? holder->name : "operator");
  }
  call_done(call.grant);
  return true;
}

}  // namespace capsa::supervisor
