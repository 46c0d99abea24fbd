// capsa — mediated channels (channel_hub.h): ends, relaying, settling.
// Re-minting the handles a message carries is in delegation.cc.
#include "supervisor/channel_hub.h"

#include <algorithm>
#include <utility>

#include "supervisor/server_end.h"

namespace capsa::supervisor {

namespace {

// A client end's service: every call and event goes to the hub. Calls on a
// channel are not served in order here: the server orders them, as it
// would on a direct channel.
class ChannelClient final : public ServiceObject {
 public:
  ChannelClient(ChannelHub& hub, ChannelId id) : hub_(hub), id_(id) { hub_.client_added(id_); }
  ~ChannelClient() override { hub_.end_gone(id_, ChannelHub::Side::kClient, 0); }
  ChannelClient(const ChannelClient&) = delete;
  ChannelClient& operator=(const ChannelClient&) = delete;

  void handle(Call call) override {
    call.allow_next();
    hub_.forward(id_, std::move(call));
  }
  std::unique_ptr<ServiceObject> clone() const override {
    return std::make_unique<ChannelClient>(hub_, id_);
  }
  bool takes_events() const override { return true; }
  void event(Message msg, GrantId from) override { hub_.forward_event(id_, std::move(msg), from); }

 private:
  ChannelHub& hub_;
  ChannelId id_;
};

}  // namespace

ChannelHub::Batch::~Batch() {
  if (--hub_.batch_ > 0) return;
  std::vector<ChannelId> ids = std::move(hub_.unsettled_);
  hub_.unsettled_.clear();
  for (ChannelId id : ids) hub_.settle(id);
}

ChannelHub::Channel* ChannelHub::find(ChannelId id) {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : &it->second;
}

std::string_view ChannelHub::name(ChannelId id) const {
  auto it = channels_.find(id);
  return it == channels_.end() ? std::string_view() : it->second.name;
}

ChannelId ChannelHub::open(const Interface& iface, std::string_view name, bool awaiting_ends) {
  const ChannelId id = next_id_++;
  Channel& c = channels_[id];
  c.iface = &iface;
  c.name = name;
  c.client_awaited = awaiting_ends;
  c.server_awaited = awaiting_ends;
  return id;
}

Result<GrantTable::Minted> ChannelHub::mint_end(ChannelId id, Side side, WorkerRecord& holder,
                                                GrantTable::Spec spec) {
  Channel* c = find(id);
  if (c == nullptr) return make_error(Errc::kRevoked, "the channel is closed");
  spec.iface = c->iface;
  spec.rights = c->iface->defined_rights();
  spec.channel = id;
  spec.transferable = true;  // a channel end can be handed on like any port
  if (side == Side::kClient) {
    auto minted = table_.mint(holder, spec, std::make_unique<ChannelClient>(*this, id));
    if (minted && spec.origin == GrantOrigin::kPolicy && spec.parent == 0) {
      if (Channel* again = find(id)) again->client_awaited = false;
      settle(id);  // the server side may be gone already
    }
    return minted;
  }
  auto minted = table_.mint(holder, spec, GrantKind::kServerEnd,
                            [&](GrantRecord& g, Port ours) -> Result<void> {
                              CAPSA_ASSIGN_OR_RETURN(
                                  g.server_end, ServerEnd::create(ctx_, *this, g, std::move(ours)));
                              return {};
                            });
  if (!minted) return minted;
  if (Channel* again = find(id)) {
    if (spec.origin == GrantOrigin::kPolicy && spec.parent == 0) again->server_awaited = false;
    // Calls made before the channel had a server end go out now, in order.
    std::vector<Call> waiting = std::move(again->waiting);
    again->waiting.clear();
    for (Call& call : waiting) send_call(id, std::move(call));
    settle(id);  // the clients may be gone already
  }
  return minted;
}

void ChannelHub::drop_awaited(ChannelId id, Side side) {
  Channel* c = find(id);
  if (c == nullptr) return;
  (side == Side::kClient ? c->client_awaited : c->server_awaited) = false;
  settle(id);
}

void ChannelHub::client_added(ChannelId id) {
  if (Channel* c = find(id)) ++c->clients;
}

void ChannelHub::server_added(ChannelId id, GrantId grant) {
  if (Channel* c = find(id)) c->servers.push_back(grant);
}

void ChannelHub::end_gone(ChannelId id, Side side, GrantId grant) {
  if (shut_) return;
  Channel* c = find(id);
  if (c == nullptr) return;
  if (side == Side::kClient) {
    if (c->clients > 0) --c->clients;
  } else {
    std::erase(c->servers, grant);
    // Calls the gone end will never answer.
    std::vector<Call> lost;
    for (auto it = c->pending.begin(); it != c->pending.end();) {
      if (it->second.server == grant) {
        lost.push_back(std::move(it->second.call));
        it = c->pending.erase(it);
      } else {
        ++it;
      }
    }
    for (Call& call : lost) call.fail(Errc::kFailed, "the channel's server end closed");
  }
  if (batch_ > 0) {
    unsettled_.push_back(id);
    return;
  }
  settle(id);
}

void ChannelHub::settle(ChannelId id) {
  Channel* c = find(id);
  if (c == nullptr) return;
  const bool clients_gone = c->clients == 0 && !c->client_awaited;
  const bool servers_gone = c->servers.empty() && !c->server_awaited;
  if (!clients_gone && !servers_gone) return;
  if ((clients_gone && c->server_awaited) || (servers_gone && c->client_awaited)) {
    // One side is gone before the other took its policy end: the channel
    // stays until it does (then that end is released at once, and its
    // worker reads end-of-stream, as on a socketpair whose peer closed) or
    // its worker ends. Calls waiting for a server nobody will answer fail.
    std::vector<Call> waiting = std::move(c->waiting);
    c->waiting.clear();
    for (Call& call : waiting) call.fail(Errc::kFailed, "the channel closed");
    return;
  }
  // Out of the map first: what follows releases grants, whose ends report
  // back here (and find nothing).
  Channel dead = std::move(*c);
  channels_.erase(id);
  for (auto& [call_id, p] : dead.pending) p.call.fail(Errc::kFailed, "the channel closed");
  for (Call& call : dead.waiting) call.fail(Errc::kFailed, "the channel closed");
  const std::string_view why = clients_gone ? "the channel's clients are gone"
                                            : "the channel's server end is gone";
  for (GrantId g : table_.of_channel(id)) {
    const GrantRecord* r = table_.find(g);
    if (r != nullptr && r->channel == id) ctx_.owner.release(g, why);
  }
}

void ChannelHub::forward(ChannelId id, Call call) {
  if (shut_) return;
  Channel* c = find(id);
  if (c == nullptr) {
    call.fail(Errc::kFailed, "the channel closed");
    return;
  }
  if (c->servers.empty()) {
    // The server has not taken its end yet: the call waits, bounded by the
    // client's calls in flight.
    c->waiting.push_back(std::move(call));
    return;
  }
  send_call(id, std::move(call));
}

void ChannelHub::send_call(ChannelId id, Call call) {
  Channel* c = find(id);
  GrantRecord* server = c != nullptr && !c->servers.empty() ? table_.find(c->servers.back()) : nullptr;
  GrantRecord* from = table_.find(call.grant());
  if (server == nullptr || from == nullptr) {
    call.fail(Errc::kFailed, "the channel closed");
    return;
  }
  const std::uint64_t limit = std::max<std::uint64_t>(1, server->holder->profile->limits.calls_in_flight);
  std::size_t on_end = 0;
  for (const auto& [cid, p] : c->pending) on_end += p.server == server->id ? 1 : 0;
  if (on_end >= limit) {
    call.fail(Errc::kOverloaded, "the channel's server has its maximum of calls in flight");
    return;
  }
  auto handles = carry(call.request(), *from, *server->holder, id);
  if (!handles) {
    if (handles.error().code == Errc::kDenied) {
      refuse_transfer(*from->holder, from->id, &call, handles.error());
    } else {
      call.fail(handles.error());
    }
    return;
  }
  // carry() may have minted grants: find the channel and the end again.
  c = find(id);
  server = c != nullptr && !c->servers.empty() ? table_.find(c->servers.back()) : nullptr;
  if (server == nullptr) {
    call.fail(Errc::kFailed, "the channel closed");
    return;
  }
  const std::uint64_t call_id = c->next_call_id++;
  const Method& m = call.method();
  Header h{MessageKind::kCall, call_id, m.ordinal, m.request.type_hash, Errc::kFailed, {}};
  auto sent = server->server_end->send(h, call.request().payload(), std::move(*handles));
  if (!sent) {
    // The server does not read its calls (its socket is full) or is gone.
    call.fail(sent.error().code == Errc::kWouldBlock ? Errc::kOverloaded : Errc::kFailed,
              "the channel's server does not take calls: " + sent.error().message);
    return;
  }
  server->calls += 1;
  c->pending.emplace(call_id, Pending{std::move(call), server->id});
}

void ChannelHub::forward_event(ChannelId id, Message msg, GrantId from_id) {
  if (shut_) return;
  Channel* c = find(id);
  GrantRecord* from = table_.find(from_id);
  if (c == nullptr || from == nullptr || c->servers.empty()) {
    // One-way: nobody waits. Dropped and audited, as a direct channel
    // would drop it with its closed socket.
    (void)ctx_.audit.event("event_dropped", AuditFields()
                                                .unum("grant", from_id)
                                                .str("reason", "the channel has no server end"));
    return;
  }
  GrantRecord* server = table_.find(c->servers.back());
  if (server == nullptr) return;
  auto handles = carry(msg, *from, *server->holder, id);
  if (!handles) {
    if (handles.error().code == Errc::kDenied) {
      refuse_transfer(*from->holder, from->id, nullptr, handles.error());
    }
    return;
  }
  server = (c = find(id)) != nullptr && !c->servers.empty() ? table_.find(c->servers.back()) : nullptr;
  if (server == nullptr) return;
  const Method& m = *msg.method();
  Header h{MessageKind::kEvent, 0, m.ordinal, m.request.type_hash, Errc::kFailed, {}};
  (void)server->server_end->send(h, msg.payload(), std::move(*handles));
}

void ChannelHub::answer(GrantRecord& server, Message msg) {
  if (shut_) return;
  Channel* c = find(server.channel);
  auto it = c != nullptr ? c->pending.find(msg.call_id()) : decltype(c->pending)::iterator{};
  if (c == nullptr || it == c->pending.end() || it->second.server != server.id) {
    bad_answer(server, Error{Errc::kBadMessage, "an answer to no call sent on this port", 0},
               msg.call_id());
    return;
  }
  if (msg.method() == nullptr || msg.method()->ordinal != it->second.call.method().ordinal) {
    bad_answer(server, Error{Errc::kBadMessage, "an answer of another method than its call", 0},
               msg.call_id());
    return;
  }
  Call call = std::move(it->second.call);
  c->pending.erase(it);
  if (msg.kind() == MessageKind::kError) {
    call.fail(msg.error_code(), msg.error_text());
    return;
  }
  GrantRecord* caller = table_.find(call.grant());
  if (caller == nullptr) return;  // the caller's end is gone: nobody to answer
  auto handles = carry(msg, server, *caller->holder, server.channel);
  if (!handles) {
    if (handles.error().code == Errc::kDenied) {
      WorkerRecord& w = *server.holder;
      const GrantId server_id = server.id;  // `server` may end with the call
      call.fail(Errc::kFailed, "the server's answer was refused: " + handles.error().message);
      refuse_transfer(w, server_id, nullptr, handles.error());
    } else {
      call.fail(handles.error());
    }
    return;
  }
  (void)call.reply_bytes(msg.payload(), std::move(*handles));
}

void ChannelHub::bad_answer(GrantRecord& server, const Error& error, std::uint64_t call_id) {
  WorkerRecord& w = *server.holder;
  const GrantId server_id = server.id;  // `server` may end below
  ++w.bad_messages;
  const BadMessageAction action = w.profile->on_bad_message;
  (void)ctx_.audit.bad_message(w.name, server_id, error.message, audit_action_name(action));
  // The caller of the call it claimed to answer learns it failed.
  if (Channel* c = find(server.channel); c != nullptr && call_id != 0) {
    auto it = c->pending.find(call_id);
    if (it != c->pending.end() && it->second.server == server_id) {
      Call call = std::move(it->second.call);
      c->pending.erase(it);
      call.fail(Errc::kFailed, "the channel's server sent an invalid answer");
    }
  }
  apply(action, w, server_id, nullptr, error.message);
}

void ChannelHub::refuse_transfer(WorkerRecord& w, GrantId from, Call* call, const Error& why) {
  ++w.bad_messages;
  const BadMessageAction action = w.profile->on_bad_message;
  (void)ctx_.audit.event("transfer_denied", AuditFields()
                                                .str("worker", w.name)
                                                .unum("grant", from)
                                                .str("reason", why.message)
                                                .str("action", audit_action_name(action)));
  apply(action, w, from, call, why.message);
}

void ChannelHub::apply(BadMessageAction action, WorkerRecord& w, GrantId grant, Call* call,
                       const std::string& reason) {
  switch (action) {
    case BadMessageAction::kReplyError:
      // An answer cannot be answered: a refused answer is only dropped.
      if (call != nullptr) call->fail(Errc::kDenied, reason);
      return;
    case BadMessageAction::kClosePort:
      ctx_.owner.release(grant, reason);  // a call goes with its grant
      return;
    case BadMessageAction::kKill:
      ctx_.owner.kill_worker(w, reason);  // its answers are no longer sent
      return;
  }
}

}  // namespace capsa::supervisor
