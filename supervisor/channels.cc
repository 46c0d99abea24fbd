// capsa — the policy's channels and the ones workers make at run time, as
// the core hands out their ends (channel_hub.h relays the mediated ones).
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "capabilities/sys.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

Result<void> Supervisor::Impl::open_channels() {
  for (const policy::Channel& c : policy_.channels) {
    ChannelEnd* client = find_worker(c.client)->find_channel_end(c.name);
    ChannelEnd* server = find_worker(c.server)->find_channel_end(c.name);
    if (c.mode == policy::ChannelMode::kMediated) {
      client->mediated = server->mediated = hub_->open(*client->iface, c.name, true);
      continue;
    }
    // Made now, each end waiting for its worker's Get.
    CAPSA_ASSIGN_OR_RETURN(auto pair, make_channel());
    client->port = std::move(pair.first);
    server->port = std::move(pair.second);
  }
  return {};
}

Result<GrantTable::Minted> Supervisor::Impl::take_channel_end(WorkerRecord& w, ChannelEnd& end) {
  if (end.taken) {
    return make_error(Errc::kDenied, "channel '" + end.channel->name +
                                         "' was already handed out (one end per worker)");
  }
  end.taken = true;
  if (end.mediated != 0) {
    GrantTable::Spec spec;
    spec.origin = GrantOrigin::kPolicy;
    spec.name = end.channel->name;
    CAPSA_ASSIGN_OR_RETURN(
        auto minted,
        hub_->mint_end(end.mediated,
                       end.server ? ChannelHub::Side::kServer : ChannelHub::Side::kClient, w, spec));
    end.grant = minted.id;
    return minted;
  }
  if (!end.port.valid()) {
    return make_error(Errc::kRevoked, "channel '" + end.channel->name + "' is closed");
  }
  // A duplicate of the worker's end stays with the grant: revoking it shuts
  // the socket down for whoever holds it by then.
  CAPSA_ASSIGN_OR_RETURN(Fd retained, sys_fd("dup", "channel end", [&] {
                           return ::fcntl(end.port.fd().get(), F_DUPFD_CLOEXEC, 0);
                         }));
  GrantRecord& g = table_->record_direct_end(w, end, std::move(retained));
  end.grant = g.id;
  // Link the two ends once both are out: revoking one cuts both.
  const std::string& other = end.server ? end.channel->client : end.channel->server;
  if (WorkerRecord* peer = find_worker(other)) {
    ChannelEnd* pe = peer->find_channel_end(end.channel->name);
    if (GrantRecord* pg = pe != nullptr ? table_->find(pe->grant) : nullptr) {
      pg->peer = g.id;
      g.peer = pg->id;
    }
  }
  return GrantTable::Minted{g.id, Handle{HandleKind::kPort, end.port.release_fd()}};
}

Result<std::pair<GrantTable::Minted, GrantTable::Minted>> Supervisor::Impl::new_channel(
    WorkerRecord& w, const Interface& iface) {
  // Both ends awaited until minted: the first alone is not a channel
  // whose other side is gone.
  const ChannelId id = hub_->open(iface, "", true);
  GrantTable::Spec spec;
  spec.origin = GrantOrigin::kPolicy;
  spec.name = iface.name();
  auto client = hub_->mint_end(id, ChannelHub::Side::kClient, w, spec);
  if (!client) {
    hub_->drop_awaited(id, ChannelHub::Side::kClient);
    hub_->drop_awaited(id, ChannelHub::Side::kServer);  // settles: nothing is left of it
    return std::unexpected(client.error());
  }
  auto server = hub_->mint_end(id, ChannelHub::Side::kServer, w, spec);
  if (!server) {
    hub_->drop_awaited(id, ChannelHub::Side::kServer);  // releases the client end
    return std::unexpected(server.error());
  }
  (void)audit_->event("channel_created", AuditFields()
                                             .str("worker", w.name)
                                             .str("interface", iface.name())
                                             .unum("channel", id)
                                             .unum("client_grant", client->id)
                                             .unum("server_grant", server->id));
  return std::pair{std::move(*client), std::move(*server)};
}

void Supervisor::Impl::drop_channel_ends(WorkerRecord& w) {
  for (ChannelEnd& e : w.channel_ends) {
    // Direct: closing the end tells the other side at once.
    e.port = Port();
    if (e.mediated != 0 && !e.taken) {
      e.taken = true;
      hub_->drop_awaited(e.mediated, e.server ? ChannelHub::Side::kServer : ChannelHub::Side::kClient);
    }
  }
}

}  // namespace capsa::supervisor
