// capsa — associated objects (docs/PROTOCOL.md section 8): minting one for
// a service, and the capsa.Object methods every object answers (Release,
// Detach).
//
// An object is a grant (grant_table.h, kind kObject) with no port of its
// own: the endpoint of the port it was issued on dispatches its calls, in
// that port's order, under an id that only that port knows. So a worker
// cannot name another worker's object, and ending the port ends them all.
#include <utility>

#include "capabilities/interfaces/builtin.h"
#include "capsa_object_generated.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {
namespace {

// capsa.Object's ordinals (capsa_object.fbs).
constexpr std::uint32_t kRelease = 0;
constexpr std::uint32_t kDetach = 1;

}  // namespace

Result<std::uint64_t> Supervisor::Impl::mint_object(GrantId parent, const Interface& iface,
                                                    Rights rights,
                                                    std::unique_ptr<ServiceObject> service) {
  CAPSA_ASSIGN_OR_RETURN(const GrantTable::Spec spec, returned_spec(parent, iface, rights));
  const GrantRecord& p = *table_->find(parent);
  // The port the parent's calls come in on: its own, or its port if the
  // parent is an object itself (a Directory object's Open).
  const GrantId port = p.kind == GrantKind::kObject ? p.port_grant : p.id;
  CAPSA_ASSIGN_OR_RETURN(auto minted, table_->mint_object(*p.holder, spec, port, std::move(service)));
  return minted.object;
}

void Supervisor::Impl::answer_control(GrantRecord& port, const Message& msg,
                                      const ReplyBuilder& build, std::vector<Handle> handles) {
  if (msg.kind() != MessageKind::kCall) return;  // an event: nobody waits
  if (port.holder != nullptr && port.holder->killing) return;
  flatbuffers::FlatBufferBuilder& fbb = encoder_.payload_builder();
  build(fbb);
  const Method& m = *msg.method();
  Header h{MessageKind::kReply, msg.call_id(), m.ordinal, m.reply.type_hash, Errc::kFailed, {},
           msg.object(),        true};
  auto sent = send_message(port.endpoint->port(), encoder_, h, encoder_.payload_bytes(),
                           std::move(handles));
  if (!sent) {
    // As for any answer (call.cc): a holder that does not read its replies
    // is cut off rather than answers queued without bound.
    release(port.id, sent.error().code == Errc::kClosed
                         ? "holder closed the port"
                         : "holder does not read its replies (overloaded)");
  }
}

void Supervisor::Impl::control_object(GrantId port_id, GrantId object_id, Message msg) {
  GrantRecord* port = table_->find(port_id);
  GrantRecord* obj = table_->find(object_id);
  if (port == nullptr || obj == nullptr || !port->endpoint) return;
  const bool call = msg.kind() == MessageKind::kCall;
  const std::uint32_t ordinal = msg.method()->ordinal;
  const auto refuse = [&](Errc code, std::string_view why) {
    ++obj->denials;
    if (obj->holder != nullptr) ++obj->holder->denials;
    (void)audit_->call_denied(obj->holder != nullptr ? obj->holder->name : "", obj->id,
                              interfaces::kObject, msg.method()->name, why);
    if (!call) return;
    const RefusalOutcome out = refuse_call(port->endpoint->port(), encoder_, msg.call_id(), ordinal,
                                           code, why, msg.object(), true);
    if (out.answer_failed == Errc::kOverloaded) release(port_id, out.reason);
  };

  if (ordinal == kRelease) {
    table_->release(object_id, "released by its holder");
    answer_control(*port, msg, [](flatbuffers::FlatBufferBuilder& fbb) {
      fbb.Finish(CreateReleaseReply(fbb));
    }, {});
    return;
  }
  if (ordinal != kDetach) return refuse(Errc::kNotFound, "capsa.Object has no such method");
  if (!call) return refuse(Errc::kBadMessage, "Detach is a call: its answer carries the port");

  // The same capability on a port of its own: a new grant (counted against
  // the live ports, refused `overloaded` past them with the object intact),
  // taking over the object's service and so its state (a file position).
  GrantTable::Spec spec;
  spec.parent = obj->parent;
  spec.iface = obj->iface;
  spec.rights = obj->rights;
  spec.origin = obj->origin;
  spec.name = obj->name;
  spec.transferable = obj->transferable;
  spec.limits = obj->limits;
  auto minted = table_->mint(*obj->holder, spec, GrantKind::kServed,
                             [&](GrantRecord& g, Port ours) -> Result<void> {
                               CAPSA_ASSIGN_OR_RETURN(
                                   g.endpoint, PortEndpoint::create(*endpoints_, g, std::move(ours),
                                                                    std::move(obj->object_service)));
                               return {};
                             });
  if (!minted) {
    // A refusal (overloaded, the parent gone) leaves the service with the
    // object; a failure to serve the new port took it: then the object
    // cannot be served any more and ends.
    const bool lost = !obj->object_service;
    refuse(minted.error().code, minted.error().message);
    if (lost) table_->release(object_id, "detach failed: " + minted.error().message);
    return;
  }
  const GrantId detached = minted->id;
  WorkerRecord* holder = obj->holder;
  table_->release(object_id, "detached to grant " + std::to_string(detached));
  const Interface& iface = *table_->find(detached)->iface;
  const Rights rights = table_->find(detached)->rights;
  std::vector<Handle> handles;
  handles.push_back(std::move(minted->handle));
  answer_control(*port, msg, [&](flatbuffers::FlatBufferBuilder& fbb) {
    auto name = fbb.CreateString(iface.name().data(), iface.name().size());
    fbb.Finish(CreateDetachReply(fbb, 0, name, rights));
  }, std::move(handles));
  if (table_->find(detached) != nullptr && table_->find(port_id) != nullptr) {
    (void)audit_->port_transferred(detached, "supervisor", holder->name);
  }
}

}  // namespace capsa::supervisor
