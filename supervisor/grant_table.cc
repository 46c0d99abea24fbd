// capsa — the grant table: minting, releasing and revoking grants.
//
// Invariants (tested in supervisor_test.cc):
//   - a grant is audited (grant_created) before its port can reach anyone;
//   - every live grant's parent is live or 0: when a grant is released its
//     children move up to its parent, so revoking an ancestor still reaches
//     them; when it is revoked, they are revoked with it;
//   - an ended grant keeps nothing: its port is closed, its service and
//     queued calls destroyed (their fds closed); only a bounded summary stays
//     for the table view.
#include <algorithm>
#include <utility>

#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

std::string_view grant_state_name(GrantState s) noexcept {
  switch (s) {
    case GrantState::kLive: return "live";
    case GrantState::kRevoked: return "revoked";
    case GrantState::kReleased: return "released";
  }
  return "?";
}

GrantRecord* Supervisor::Impl::find_grant(GrantId id) {
  auto it = grants.find(id);
  return it == grants.end() ? nullptr : it->second.get();
}

std::vector<std::string> Supervisor::Impl::rights_names(const Interface& iface,
                                                        Rights rights) const {
  std::vector<std::string> out;
  for (const Method& m : iface.methods()) {
    if ((rights & right_of(m.ordinal)) != 0) out.push_back(m.name);
  }
  return out;
}

Result<GrantRecord*> Supervisor::Impl::serve(WorkerRecord* holder, Port port,
                                             const Interface& iface, Rights rights,
                                             GrantOrigin origin, std::string_view name,
                                             std::unique_ptr<ServiceObject> service) {
  if (auto nb = port.set_nonblocking(true); !nb) return std::unexpected(nb.error());
  if (holder != nullptr) port.set_max_packet_bytes(holder->profile->limits.message_bytes);
  auto g = std::make_unique<GrantRecord>();
  g->id = next_grant++;
  g->holder = holder;
  g->iface = &iface;
  g->rights = rights & iface.defined_rights();
  g->origin = origin;
  g->name = name;
  g->created = std::chrono::system_clock::now();
  g->port_inode = port.peer_inode();
  g->port = std::move(port);
  g->service = std::move(service);
  const GrantId id = g->id;
  auto watch = reactor->watch(g->port.fd(), Interest::kReadable,
                              [this, id](Events ev) { on_port_event(id, ev); });
  if (!watch) return std::unexpected(watch.error());
  g->watch = *watch;
  GrantRecord* raw = g.get();
  if (g->port_inode != 0) by_inode.emplace(g->port_inode, id);
  grants.emplace(id, std::move(g));
  if (holder != nullptr) {
    ++live_count;
    ++holder->grants;
    ++holder->live;
  }
  return raw;
}

Result<Supervisor::Impl::Minted> Supervisor::Impl::mint(WorkerRecord& holder, GrantId parent,
                                      const Interface& iface, Rights rights, GrantOrigin origin,
                                      std::string_view name,
                                      std::shared_ptr<SharedLimits> limits,
                                      std::unique_ptr<ServiceObject> service) {
  if (!holder.running) return make_error(Errc::kRevoked, "the holder is not running");
  if (holder.live >= holder.max_live()) {
    std::string why = "worker '" + holder.name + "' holds its maximum of " +
                      std::to_string(holder.max_live()) + " live ports";
    ++holder.denials;
    (void)audit->event("grant_refused", AuditFields()
                                            .str("worker", holder.name)
                                            .str("interface", iface.name())
                                            .unum("parent_grant", parent)
                                            .str("reason", why));
    return make_error(Errc::kOverloaded, std::move(why));
  }
  GrantRecord* p = parent != 0 ? find_grant(parent) : nullptr;
  if (parent != 0 && p == nullptr) return make_error(Errc::kRevoked, "the parent grant is gone");
  auto pair = make_channel();
  if (!pair) return std::unexpected(pair.error());
  auto& [ours, theirs] = *pair;
  auto rec = serve(&holder, std::move(ours), iface, rights, origin, name, std::move(service));
  if (!rec) return std::unexpected(rec.error());
  GrantRecord& g = **rec;
  g.parent = parent;
  g.limits = std::move(limits);
  if (p != nullptr) p->children.push_back(g.id);
  // Logged before the port leaves this function: an auditor never sees a
  // port in use that the log does not explain.
  (void)audit->grant_created(g.id, holder.name, iface.name(), origin,
                             rights_names(iface, g.rights), parent);
  return Minted{g.id, Handle{HandleKind::kPort, theirs.release_fd()}};
}

GrantRecord& Supervisor::Impl::record_channel_end(WorkerRecord& holder, const ChannelEnd& end,
                                                  std::uint64_t inode) {
  auto g = std::make_unique<GrantRecord>();
  g->id = next_grant++;
  g->holder = &holder;
  g->iface = end.iface;
  g->rights = end.iface->defined_rights();
  g->origin = GrantOrigin::kPolicy;
  g->name = end.channel->name;
  g->channel = true;
  g->created = std::chrono::system_clock::now();
  g->port_inode = inode;
  GrantRecord& ref = *g;
  if (inode != 0) by_inode.emplace(inode, g->id);
  grants.emplace(g->id, std::move(g));
  ++live_count;
  ++holder.grants;
  ++holder.live;
  (void)audit->grant_created(ref.id, holder.name, end.iface->name(), GrantOrigin::kPolicy,
                             rights_names(*end.iface, ref.rights), 0);
  return ref;
}

GrantView Supervisor::Impl::view(const GrantRecord& g, GrantState state) const {
  GrantView v;
  v.id = g.id;
  v.parent = g.parent;
  if (g.holder != nullptr) {
    v.worker = g.holder->name;
    v.holder_pid = g.holder->pid;
  }
  v.name = std::string(g.name);
  v.interface = std::string(g.iface->name());
  v.rights = rights_names(*g.iface, g.rights);
  v.origin = g.origin;
  v.state = state;
  v.channel = g.channel;
  v.created = g.created;
  if (state != GrantState::kLive) v.ended = std::chrono::system_clock::now();
  v.calls = g.calls;
  v.bytes = g.bytes;
  v.denials = g.denials;
  v.port_inode = g.port_inode;
  return v;
}

namespace {

void erase_child(std::vector<GrantId>& children, GrantId child) {
  auto it = std::find(children.begin(), children.end(), child);
  if (it != children.end()) {
    *it = children.back();
    children.pop_back();
  }
}

}  // namespace

void Supervisor::Impl::release(GrantId id, std::string_view reason) {
  auto it = grants.find(id);
  if (it == grants.end()) return;
  std::unique_ptr<GrantRecord> g = std::move(it->second);
  grants.erase(it);
  if (g->watch != 0) reactor->unwatch(g->watch);
  if (g->port_inode != 0) by_inode.erase(g->port_inode);
  // Children outlive a released parent (a File stays open after its
  // Directory port is closed) but stay reachable by revocation of the
  // grandparent.
  GrantRecord* parent = g->parent != 0 ? find_grant(g->parent) : nullptr;
  if (parent != nullptr) erase_child(parent->children, g->id);
  for (GrantId c : g->children) {
    if (GrantRecord* child = find_grant(c)) {
      child->parent = g->parent;
      if (parent != nullptr) parent->children.push_back(c);
    }
  }
  if (g->holder != nullptr) {
    --live_count;
    --g->holder->live;
    (void)audit->released(g->id, g->holder->name, reason);
    if (options.ended_grants_kept > 0) {
      if (ended.size() >= options.ended_grants_kept) ended.pop_front();
      ended.push_back(view(*g, GrantState::kReleased));
    }
  }
  // An attached worker without a pid lives as long as its bootstrap port.
  WorkerRecord* holder = g->holder;
  g.reset();  // the port, service and queued calls (with their fds) close here
  if (holder != nullptr && holder->attached && holder->pid == 0 && holder->running &&
      holder->bootstrap == id) {
    worker_ended(*holder, "bootstrap port closed (attached worker)");
  }
}

void Supervisor::Impl::revoke_tree(GrantId id, std::string_view reason,
                                   std::vector<GrantId>& out) {
  GrantRecord* g = find_grant(id);
  if (g == nullptr) return;
  out.push_back(id);
  // Children first would also work; parent first keeps the audit lines in
  // the order an operator reads them (the grant, then what came from it).
  (void)audit->revoked(g->id, g->holder != nullptr ? g->holder->name : "", reason);
  std::vector<GrantId> children = std::move(g->children);
  g->children.clear();
  if (g->origin == GrantOrigin::kPolicy && g->holder != nullptr && !g->name.empty()) {
    g->holder->revoked_names.emplace(g->name);
  }
  // Detach from the parent and drop the record without a "released" line.
  auto it = grants.find(id);
  std::unique_ptr<GrantRecord> rec = std::move(it->second);
  grants.erase(it);
  if (rec->watch != 0) reactor->unwatch(rec->watch);
  if (rec->port_inode != 0) by_inode.erase(rec->port_inode);
  if (GrantRecord* parent = rec->parent != 0 ? find_grant(rec->parent) : nullptr) {
    erase_child(parent->children, id);
  }
  if (rec->holder != nullptr) {
    --live_count;
    --rec->holder->live;
    if (options.ended_grants_kept > 0) {
      if (ended.size() >= options.ended_grants_kept) ended.pop_front();
      ended.push_back(view(*rec, GrantState::kRevoked));
    }
  }
  rec.reset();  // closes our end now: the holder sees peer-closed
  for (GrantId c : children) revoke_tree(c, "parent grant " + std::to_string(id) + " revoked", out);
}

Result<std::vector<GrantId>> Supervisor::revoke(GrantId id, std::string_view reason) {
  GrantRecord* g = impl_->find_grant(id);
  if (g == nullptr || g->holder == nullptr) {
    return make_error(Errc::kNotFound, "no live grant " + std::to_string(id));
  }
  if (g->channel) {
    return make_error(Errc::kInvalidArgument,
                      "grant " + std::to_string(id) +
                          " is a direct channel end: the supervisor is not on its path, so it "
                          "cannot be revoked (it ends with either worker)");
  }
  std::vector<GrantId> out;
  impl_->revoke_tree(id, reason.empty() ? "revoked by the operator" : reason, out);
  return out;
}

std::vector<GrantView> Supervisor::grants(bool include_ended) const {
  std::vector<GrantView> out;
  out.reserve(impl_->live_count + (include_ended ? impl_->ended.size() : 0));
  for (const auto& [id, g] : impl_->grants) {
    if (g->holder != nullptr) out.push_back(impl_->view(*g, GrantState::kLive));
  }
  if (include_ended) out.insert(out.end(), impl_->ended.begin(), impl_->ended.end());
  std::sort(out.begin(), out.end(), [](const GrantView& a, const GrantView& b) {
    return a.id < b.id;
  });
  return out;
}

std::size_t Supervisor::live_grants() const noexcept { return impl_->live_count; }

}  // namespace capsa::supervisor
