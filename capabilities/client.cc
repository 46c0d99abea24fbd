#include "capabilities/client.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

namespace capsa {

Client::Client(Port port, const Interface& iface, ClientOptions options)
    : port_(std::move(port)), iface_(&iface), options_(options) {
  pending_.reserve(options_.max_in_flight);
}

Client::~Client() {
  if (!pending_.empty()) fail_all(Error{Errc::kClosed, "the client was destroyed", 0});
}

namespace {

Result<const Method*> method_of(const Interface& iface, std::uint32_t ordinal) {
  const Method* m = iface.method(ordinal);
  if (m == nullptr) {
    return make_error(Errc::kInvalidArgument, std::string(iface.name()) +
                                                  " has no method with ordinal " +
                                                  std::to_string(ordinal));
  }
  return m;
}

}  // namespace

Result<ObjectTarget> Client::AnswerTargets::resolve(const EnvelopeInfo& info) const {
  for (const Pending& p : client_->pending_) {
    if (p.id != info.call_id) continue;
    if (p.object != info.object || p.control != info.control) break;
    return ObjectTarget{p.iface, kAllRights};
  }
  return make_error(Errc::kBadMessage, "answer to call " + std::to_string(info.call_id) +
                                           " names object " + std::to_string(info.object) +
                                           ", which that call did not");
}

Result<std::uint64_t> Client::submit(const CallTarget& target, std::uint32_t ordinal,
                                     std::span<const std::uint8_t> payload,
                                     std::vector<Handle> handles, Completion done) {
  const Interface& iface = target.iface != nullptr ? *target.iface : *iface_;
  CAPSA_ASSIGN_OR_RETURN(const Method* m, method_of(iface, ordinal));
  if (!port_.valid()) return make_error(Errc::kClosed, "the port is closed");
  // Checked before sending: a call beyond the bound never reaches the peer,
  // so neither side holds memory for it.
  if (pending_.size() >= options_.max_in_flight) {
    return make_error(Errc::kOverloaded, std::to_string(pending_.size()) +
                                             " calls already in flight on this port (limit " +
                                             std::to_string(options_.max_in_flight) + ")");
  }
  const std::uint64_t id = next_id_++;
  Header h{MessageKind::kCall, id,       ordinal, m->request.type_hash, Errc::kFailed, {},
           target.object,     target.control};
  CAPSA_TRY(send_message(port_, encoder_, h, payload, std::move(handles)));
  pending_.push_back(Pending{id, ordinal, std::move(done), target.object, target.control, &iface});
  return id;
}

Result<void> Client::send_event(const CallTarget& target, std::uint32_t ordinal,
                                std::span<const std::uint8_t> payload,
                                std::vector<Handle> handles) {
  const Interface& iface = target.iface != nullptr ? *target.iface : *iface_;
  CAPSA_ASSIGN_OR_RETURN(const Method* m, method_of(iface, ordinal));
  if (!port_.valid()) return make_error(Errc::kClosed, "the port is closed");
  Header h{MessageKind::kEvent, 0,  ordinal, m->request.type_hash, Errc::kFailed, {},
           target.object,       target.control};
  return send_message(port_, encoder_, h, payload, std::move(handles));
}

void Client::abandon(std::uint64_t object, const Error& error) {
  if (object == 0) return;
  // Completions run after the loop: one may submit again (and grow pending_).
  std::vector<Completion> failed;
  for (Pending& p : pending_) {
    if (p.object == object && p.done) failed.push_back(std::exchange(p.done, nullptr));
  }
  for (Completion& done : failed) done(std::unexpected(error));
}

Result<void> Client::on_readable() {
  if (!port_.valid()) return make_error(Errc::kClosed, "the port is closed");
  auto packet = port_.receive();
  if (!packet) {
    Error e = std::move(packet.error());
    if (e.code == Errc::kClosed) {
      fail_all(peer_closed_);
      return std::unexpected(std::move(e));
    }
    if (e.code == Errc::kBadMessage) return fail_bad_message(std::move(e));
    return std::unexpected(std::move(e));
  }
  const AnswerTargets targets(*this);
  ValidateOptions vo{kClientAccepts, kAllRights, options_.limits, &targets};
  auto msg = validate(std::move(*packet), *iface_, vo);
  if (!msg) return fail_bad_message(std::move(msg.error()));
  return dispatch(std::move(*msg));
}

Result<void> Client::dispatch(Message msg) {
  // An error with call id 0 answers no call: the peer could not read one of
  // our messages at all. Nothing can be matched, so every call fails.
  if (msg.kind() == MessageKind::kError && msg.call_id() == 0) {
    Error e = msg.to_error();
    e.message = "the peer refused a message: " + e.message;
    fail_all(e);
    return std::unexpected(std::move(e));
  }
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].id != msg.call_id()) continue;
    if (msg.method() == nullptr || msg.method()->ordinal != pending_[i].method) {
      return fail_bad_message(Error{Errc::kBadMessage,
                                    "answer to call " + std::to_string(msg.call_id()) +
                                        " names another method",
                                    0});
    }
    // An answer naming no object to a call on one (an answer naming one was
    // matched to its call by AnswerTargets already).
    if (msg.object() != pending_[i].object || msg.control() != pending_[i].control) {
      return fail_bad_message(Error{Errc::kBadMessage,
                                    "answer to call " + std::to_string(msg.call_id()) +
                                        " names another object",
                                    0});
    }
    Completion done = std::move(pending_[i].done);
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    if (!done) return {};  // abandoned: the holder gave the object up
    if (msg.kind() == MessageKind::kError) {
      done(std::unexpected(msg.to_error()));
    } else {
      done(std::move(msg));
    }
    return {};
  }
  return fail_bad_message(Error{Errc::kBadMessage,
                                "answer to call " + std::to_string(msg.call_id()) +
                                    ", which is not outstanding",
                                0});
}

Result<void> Client::fail_bad_message(Error error) {
  fail_all(Error{Errc::kBadMessage, "the peer sent a bad message: " + error.message, 0});
  return std::unexpected(std::move(error));
}

void Client::fail_all(const Error& error) {
  // Closing first: a completion that submits again sees a closed port
  // instead of sending on a channel we have given up on.
  port_ = Port();
  std::vector<Pending> failed = std::move(pending_);
  pending_.clear();
  for (Pending& p : failed) {
    if (p.done) p.done(std::unexpected(error));
  }
}

void Client::set_peer_closed_error(Errc code, std::string text) {
  peer_closed_ = Error{code, std::move(text), 0};
}

Result<Message> Client::call(const CallTarget& target, std::uint32_t ordinal,
                             std::span<const std::uint8_t> payload, std::vector<Handle> handles) {
  std::optional<Result<Message>> result;
  CAPSA_ASSIGN_OR_RETURN(const std::uint64_t id,
                         submit(target, ordinal, payload, std::move(handles),
                                [&result](Result<Message> r) { result.emplace(std::move(r)); }));
  // The completion refers to `result` in this frame: every return that
  // leaves the call uncompleted must forget it first, or a later
  // on_readable() or fail_all() would write into a dead frame.
  auto give_up = [&](Error error) -> Result<Message> {
    std::erase_if(pending_, [&](const Pending& p) { return p.id == id; });
    return std::unexpected(std::move(error));
  };
  while (!result) {
    auto r = on_readable();
    if (r || result) continue;
    if (r.error().code == Errc::kWouldBlock) {
      auto ready = port_.wait_readable(-1);
      if (!ready) return give_up(std::move(ready.error()));
      continue;
    }
    return give_up(std::move(r.error()));
  }
  return std::move(*result);
}

}  // namespace capsa
