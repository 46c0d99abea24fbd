// capsa — the grant table: every capability the supervisor handed out, who
// holds it, where it came from, until it is released or revoked.
//
// Invariants (grant_table_test.cc):
//   - a grant is audited (grant_created) before its port can reach anyone;
//   - every live grant's parent is live or 0: when a grant is released its
//     children move up to its parent, so revoking an ancestor still reaches
//     them; when it is revoked, they are revoked with it;
//   - a worker holds at most WorkerRecord::max_live() grants at once: more
//     are refused with `overloaded` and audited (grant_refused);
//   - an ended grant keeps nothing: its port is closed, its service and
//     queued calls destroyed (their fds closed); only a bounded summary stays
//     for the table view (the audit log has them all).
//
// Memory per live grant is a design target (at most 2 KiB at 10,000 grants;
// docs/PERFORMANCE.md): a GrantRecord holds no strings of its own (names
// point into the policy, which outlives it), limits shared by every grant of
// one policy entry are shared_ptrs, and an endpoint's queue allocates only
// while calls wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capabilities/handle.h"
#include "capabilities/interface_registry.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/port_endpoint.h"
#include "supervisor/views.h"
#include "supervisor/worker_record.h"

namespace capsa::supervisor {

class ServerEnd;  // server_end.h

// The call latency histograms of one interface's methods (services/latency.h),
// by method index (Interface::methods() order). One per interface a worker
// was granted, made when its first grant is added and kept for the
// supervisor's life (the counts are Prometheus counters: they never reset).
struct InterfaceLatency {
  const Interface* iface = nullptr;  // the supervisor's registry (outlives the table)
  std::vector<LatencyHistogram> methods;

  // The histogram of `m`, a method of `iface` (nullptr for any other).
  LatencyHistogram* of(const Method* m) noexcept {
    const auto all = iface->methods();
    // std::less: a total order, also for a pointer into another array.
    const std::less<const Method*> before;
    if (before(m, all.data()) || !before(m, all.data() + all.size())) return nullptr;
    return &methods[static_cast<std::size_t>(m - all.data())];
  }
};

struct GrantRecord {
  GrantId id = 0;
  GrantId parent = 0;
  std::vector<GrantId> children;  // live grants derived from this one
  WorkerRecord* holder = nullptr;  // nullptr: an operator session (not a grant)
  const Interface* iface = nullptr;
  Rights rights = 0;
  GrantOrigin origin = GrantOrigin::kPolicy;
  std::string_view name;  // policy grant or channel name (points into the policy)
  GrantKind kind = GrantKind::kServed;
  // May its holder send it on over a mediated channel (policy grants: the
  // policy's `transferable`; what derives from a grant inherits it).
  bool transferable = false;
  ChannelId channel = 0;  // a channel end: its mediated channel (0: direct, or not an end)
  ChannelId via = 0;      // the mediated channel it last travelled through (0: none)
  GrantId peer = 0;       // a direct end: the other end's grant, once handed out
  std::chrono::system_clock::time_point created;
  std::uint64_t calls = 0;
  std::uint64_t bytes = 0;
  std::uint64_t denials = 0;
  std::uint64_t port_inode = 0;  // the holder's end
  std::shared_ptr<SharedLimits> limits;
  // Its interface's latency histograms (a worker's grant; nullptr for an
  // operator session, whose interface is not the supervisor's registry's).
  InterfaceLatency* latency = nullptr;
  std::unique_ptr<PortEndpoint> endpoint;  // kServed
  std::unique_ptr<ServerEnd> server_end;   // kServerEnd
  // kObject: its id on the port of grant `port_grant`, and its service (an
  // object has no endpoint: that port's endpoint dispatches its calls).
  std::uint64_t object = 0;
  GrantId port_grant = 0;
  std::unique_ptr<ServiceObject> object_service;
  // kDirectEnd: a duplicate of the worker's socket, shut down on revoke.
  // Served ports need none: closing our end, their only peer, reaches every
  // copy of theirs (in flight too). The cost: while held, the socket
  // outlives the worker's own fds (its peer sees end-of-stream when this
  // record goes, not when the worker closes its fd).
  Fd retained;

  GrantRecord();
  ~GrantRecord();  // out of line: ServerEnd is complete only in grant_table.cc
  GrantRecord(const GrantRecord&) = delete;
  GrantRecord& operator=(const GrantRecord&) = delete;
};

class GrantTable {
 public:
  // `ended_kept`: how many ended grants the view keeps (bounded so a long
  // run's memory stays flat).
  GrantTable(AuditLog& audit, const EndpointContext& endpoints, std::size_t ended_kept);
  ~GrantTable();
  GrantTable(const GrantTable&) = delete;
  GrantTable& operator=(const GrantTable&) = delete;

  struct Minted {
    GrantId id = 0;
    Handle handle;  // the holder's end, ready to attach to a reply
  };
  // What a new grant is, besides its holder.
  struct Spec {
    GrantId parent = 0;  // derived from (0: none)
    const Interface* iface = nullptr;
    Rights rights = 0;
    GrantOrigin origin = GrantOrigin::kPolicy;
    std::string_view name;
    bool transferable = false;
    std::shared_ptr<SharedLimits> limits;
    ChannelId channel = 0;  // a mediated channel's end
    ChannelId via = 0;      // delegated through this mediated channel
  };
  // Attaches the supervisor's end of a new grant's port to its record (a
  // served endpoint, a channel's server end).
  using Attach = std::function<Result<void>(GrantRecord& g, Port ours)>;
  // A new grant for `holder` on a fresh socketpair: `attach` takes our end,
  // the holder's is returned. Audited before the holder's end is returned.
  // kOverloaded past the holder's live cap (audited grant_refused),
  // kRevoked when the holder no longer runs or the parent is gone.
  Result<Minted> mint(WorkerRecord& holder, const Spec& spec, GrantKind kind,
                      const Attach& attach);
  // The common case: our end served by `service`.
  Result<Minted> mint(WorkerRecord& holder, const Spec& spec,
                      std::unique_ptr<ServiceObject> service);
  // A served grant on an existing port (a bootstrap port; `holder` nullptr:
  // an operator session, all rights, not a grant and not audited).
  Result<GrantRecord*> serve(WorkerRecord* holder, Port port, const Interface& iface,
                             Rights rights, GrantOrigin origin, std::string_view name,
                             std::unique_ptr<ServiceObject> service);
  struct MintedObject {
    GrantId id = 0;
    std::uint64_t object = 0;  // its id on the port of `port_grant`
  };
  // A new associated object for `holder` on the port of grant `port_grant`
  // (a served grant of the same holder), served by `service`. Audited
  // (grant_created, kind "object") before its id is returned. kOverloaded
  // past the holder's `objects` limit (audited grant_refused), kRevoked
  // when the holder no longer runs or the port or the parent is gone.
  Result<MintedObject> mint_object(WorkerRecord& holder, const Spec& spec, GrantId port_grant,
                                   std::unique_ptr<ServiceObject> service);
  // A direct channel end handed to `holder` (not served: the supervisor is
  // not on its path); `retained` is a duplicate of the socket the holder
  // receives. Audited.
  GrantRecord& record_direct_end(WorkerRecord& holder, const ChannelEnd& end, Fd retained);

  GrantRecord* find(GrantId id);
  const GrantRecord* find(GrantId id) const;
  // The grant whose holder's end is the socket `inode` (0 if none).
  GrantId find_by_inode(std::uint64_t inode) const;
  // The live grants `holder` holds, ascending.
  std::vector<GrantId> held_by(const WorkerRecord& holder) const;

  // Ends one grant: closes our end, audits `released` (worker grants),
  // moves its children up to its parent. A port's associated objects end
  // with it (each audited `released`, before the port).
  void release(GrantId id, std::string_view reason);
  // Revokes `id` and everything derived from it, parent first (the audit
  // reads in that order); a revoked policy grant stays revoked for later
  // Gets of its name. A direct end's socket is shut down: every holder
  // reads what was queued, then end-of-stream. Returns the ids revoked.
  std::vector<GrantId> revoke_tree(GrantId id, std::string_view reason);
  // The live grants that travelled through mediated channel `via`, or are
  // an end of it.
  std::vector<GrantId> of_channel(ChannelId id) const;
  // Drops every record without auditing (the supervisor is destroyed).
  void clear();

  GrantView view(const GrantRecord& g, GrantState state) const;
  std::vector<GrantView> views(bool include_ended) const;
  std::size_t live() const noexcept { return live_; }
  // The payload bytes of `holder`'s grants, the ended ones included.
  std::uint64_t bytes_of(const WorkerRecord& holder) const;
  // Every interface's latency histograms, in no particular order.
  const std::unordered_map<const Interface*, std::unique_ptr<InterfaceLatency>>& latency()
      const noexcept {
    return latency_;
  }

 private:
  // Puts a new record in the table and counts it against its holder.
  GrantRecord& add(std::unique_ptr<GrantRecord> g);
  // Takes the record out of the table and its parent's children.
  std::unique_ptr<GrantRecord> take(GrantId id);
  void remember(const GrantRecord& g, GrantState state);
  // The grant_created line of `g` (held by a worker).
  void audit_created(const GrantRecord& g, const Spec& spec);
  // Refuses one more grant of `holder` past `limit` (audited grant_refused).
  std::unexpected<Error> refuse(WorkerRecord& holder, const Spec& spec, std::string why);

  AuditLog& audit_;
  const EndpointContext& endpoints_;
  std::size_t ended_kept_;
  std::unordered_map<GrantId, std::unique_ptr<GrantRecord>> grants_;
  std::unordered_map<std::uint64_t, GrantId> by_inode_;  // holder's end inode -> grant
  std::deque<GrantView> ended_;                          // bounded, newest last
  GrantId next_ = 1;
  std::size_t live_ = 0;  // grants held by workers (sessions excluded)
  std::unordered_map<const Interface*, std::unique_ptr<InterfaceLatency>> latency_;
};

// The names of the methods in `rights`, in ordinal order.
std::vector<std::string> rights_names(const Interface& iface, Rights rights);

}  // namespace capsa::supervisor
