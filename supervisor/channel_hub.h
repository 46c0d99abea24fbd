// capsa — mediated channels: the supervisor on the path between workers.
//
// A mediated channel connects client ends (ports whose calls and events go
// to the channel's server) and server ends (ports on which the supervisor
// sends those calls and reads the answers). Both kinds are grants of the
// grant table, so each is audited, counted against its holder's cap,
// revocable, and can be handed on. The hub relays:
//
//   client --call--> PortEndpoint (validation against the interface, the
//     client grant's rights, the client's messages_per_second, the grant's
//     rate and byte budget, calls in flight; the client's on_bad_message)
//     --> ChannelHub::forward: handles re-minted for the server's holder,
//     a call id of the hub's own, sent on the newest server end
//   server --reply/error--> ServerEnd (validation against the method's reply;
//     the server's on_bad_message) --> ChannelHub::answer: must answer a
//     call the hub sent on that end; handles re-minted for the caller.
//
// Re-minting (carry): every handle a message carries is looked at before it
// reaches the other side.
//   - a port the supervisor issued (matched by its socket inode in the grant
//     table) reaches the receiver as a NEW port: a child grant of the
//     sender's, origin `delegated`, holder the receiver, audited as
//     port_delegated (from, to, grant, parent, channel). Revoking the parent
//     revokes it; its calls are counted and logged under its real holder;
//     revoking the channel revokes it too (`via`), wherever it went after,
//     so a port handed back to where it came from is still cut;
//   - a grant with transferable: false, a port the supervisor did not issue
//     (a worker-made socketpair), a direct channel end: the message is
//     refused, audited as transfer_denied, and the sender's on_bad_message
//     applies;
//   - files and blobs pass as they are (the validator checked their kinds),
//     audited as handle_passed with kind and size.
//
// A channel ends when one side has no ends left (and none still to be
// handed out): the other side's ends are released, calls waiting fail.
//
// Threading: the loop thread only. Reentrancy: ends report their end from
// destructors (a grant released or revoked); the hub never holds a
// reference into its map across a call that may release a grant.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capabilities/message.h"
#include "supervisor/grant_table.h"
#include "supervisor/port_endpoint.h"
#include "supervisor/services/service.h"

namespace capsa::supervisor {

class ChannelHub {
 public:
  enum class Side : std::uint8_t { kClient, kServer };

  ChannelHub(GrantTable& table, const EndpointContext& ctx) : table_(table), ctx_(ctx) {}
  ChannelHub(const ChannelHub&) = delete;
  ChannelHub& operator=(const ChannelHub&) = delete;

  // A new channel of `iface`. `name`: the policy channel's (points into the
  // policy) or "" (made at run time). `awaiting_ends`: its two policy ends
  // are still to be handed out; until then neither side counts as gone.
  ChannelId open(const Interface& iface, std::string_view name, bool awaiting_ends);
  // A new end of channel `id` held by `holder` (spec: parent, origin,
  // name, via; iface, rights and channel are the channel's).
  Result<GrantTable::Minted> mint_end(ChannelId id, Side side, WorkerRecord& holder,
                                      GrantTable::Spec spec);
  // A policy end that will never be handed out (its worker ended first).
  void drop_awaited(ChannelId id, Side side);

  // What the ends report.
  void forward(ChannelId id, Call call);
  void forward_event(ChannelId id, Message msg, GrantId from);
  void answer(GrantRecord& server, Message msg);
  void bad_answer(GrantRecord& server, const Error& error, std::uint64_t call_id);
  void client_added(ChannelId id);
  void server_added(ChannelId id, GrantId grant);
  void end_gone(ChannelId id, Side side, GrantId grant);

  // While a Batch lives, a side left without ends does not end its channel
  // yet (revoking a whole channel audits each end as revoked, not as
  // released by the other side's end).
  class Batch {
   public:
    explicit Batch(ChannelHub& hub) : hub_(hub) { ++hub_.batch_; }
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    ChannelHub& hub_;
  };
  // The supervisor is being destroyed: ends report, nothing is relayed.
  void shut() noexcept { shut_ = true; }

  std::size_t channels() const noexcept { return channels_.size(); }
  std::string_view name(ChannelId id) const;

 private:
  struct Pending {
    Call call;
    GrantId server = 0;  // the end it was sent on
  };
  struct Channel {
    const Interface* iface = nullptr;
    std::string_view name;
    std::size_t clients = 0;       // live client end service objects
    std::vector<GrantId> servers;  // live server ends, oldest first
    bool client_awaited = false;   // a policy end not yet handed out
    bool server_awaited = false;
    std::unordered_map<std::uint64_t, Pending> pending;  // by the hub's call id
    std::vector<Call> waiting;  // calls made before any server end existed
    std::uint64_t next_call_id = 1;
  };

  Channel* find(ChannelId id);
  // Sends `call` to the newest server end of `id` (or keeps it waiting).
  void send_call(ChannelId id, Call call);
  // Re-mints the handles of `msg`, sent on grant `from`, for `to`.
  // kDenied: a refused transfer (the sender's fault); other codes: the
  // receiver could not take them (its live cap).
  Result<std::vector<Handle>> carry(Message& msg, GrantRecord& from, WorkerRecord& to,
                                    ChannelId via);
  // A transfer refused: audited, then the sender's on_bad_message (a call
  // is failed under reply_error).
  void refuse_transfer(WorkerRecord& sender, GrantId from, Call* call, const Error& why);
  // A bad-message action against `w` for what it sent on `grant`.
  void apply(BadMessageAction action, WorkerRecord& w, GrantId grant, Call* call,
             const std::string& reason);
  // Ends channel `id` if a side is empty: the other side's ends released,
  // waiting and pending calls failed.
  void settle(ChannelId id);

  GrantTable& table_;
  const EndpointContext& ctx_;
  std::unordered_map<ChannelId, Channel> channels_;
  std::vector<ChannelId> unsettled_;  // ends gone during a Batch
  ChannelId next_id_ = 1;
  int batch_ = 0;
  bool shut_ = false;
};

}  // namespace capsa::supervisor
