// capsa — a Call as a service sees it (service.h): every answer goes to the
// core through its CallSink, which checks that the grant is still served.
#include <memory>
#include <utility>

#include "supervisor/services/service.h"

namespace capsa::supervisor {

Call::Call(std::unique_ptr<CallState> state) noexcept : state_(std::move(state)) {}
Call::Call(Call&&) noexcept = default;

Call& Call::operator=(Call&& other) noexcept {
  if (this != &other) {
    finish();
    state_ = std::move(other.state_);
  }
  return *this;
}

Call::~Call() { finish(); }

void Call::finish() noexcept {
  if (!state_) return;
  if (!state_->answered) fail(Errc::kFailed, "service dropped the call");
  allow_next();
}

Message& Call::request() noexcept { return state_->request; }
const Method& Call::method() const noexcept { return *state_->method; }
GrantId Call::grant() const noexcept { return state_->grant; }
GrantId Call::port() const noexcept { return state_->port; }
const std::string& Call::worker() const noexcept { return *state_->worker; }
ServiceHost& Call::host() noexcept { return state_->sink->host(); }

Result<void> Call::reply(const ReplyBuilder& build, std::vector<Handle> handles) {
  if (!state_ || state_->answered) return make_error(Errc::kFailed, "the call was answered");
  return state_->sink->reply(*state_, build, std::move(handles));
}

Result<void> Call::reply_bytes(std::span<const std::uint8_t> payload, std::vector<Handle> handles) {
  if (!state_ || state_->answered) return make_error(Errc::kFailed, "the call was answered");
  return state_->sink->reply_bytes(*state_, payload, std::move(handles));
}

void Call::allow_next() {
  if (!state_ || state_->next_allowed) return;
  state_->next_allowed = true;
  state_->sink->next(*state_);
}

void Call::fail(Errc code, std::string_view text) {
  if (!state_ || state_->answered) return;
  state_->sink->fail(*state_, code, text);
}

Result<void> Call::charge(std::uint64_t bytes) { return state_->sink->charge(*state_, bytes); }

void Call::submit_off_loop(std::move_only_function<Continuation()> work) {
  CallSink* sink = state_->sink;
  sink->off_loop(std::move(*this), std::move(work));
}

}  // namespace capsa::supervisor
