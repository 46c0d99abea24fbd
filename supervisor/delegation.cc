// capsa — re-minting what a message carries over a mediated channel
// (channel_hub.h, "Re-minting").
//
// Every handle is looked at before anything is minted, so a refused message
// leaves nothing behind; a mint that fails half way (the receiver at its
// live cap) releases what it had minted.
#include <sys/stat.h>

#include <string>
#include <utility>

#include "supervisor/channel_hub.h"
#include "supervisor/server_end.h"

namespace capsa::supervisor {

namespace {

std::string handle_label(std::size_t i) { return "handle " + std::to_string(i) + ": "; }

}  // namespace

Result<std::vector<Handle>> ChannelHub::carry(Message& msg, GrantRecord& from, WorkerRecord& to,
                                              ChannelId via) {
  struct Item {
    HandleKind kind;
    Fd fd;
    GrantRecord* source = nullptr;  // ports
    std::unique_ptr<ServiceObject> service;  // a served port's copy
  };
  const std::size_t n = msg.handle_count();
  std::vector<Item> items;
  items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Item it{msg.handle_kind(i), msg.take_handle(i), nullptr, nullptr};
    if (it.kind == HandleKind::kPort) {
      GrantRecord* src = table_.find(table_.find_by_inode(socket_inode(it.fd)));
      if (src == nullptr || src->holder == nullptr) {
        return make_error(Errc::kDenied,
                          handle_label(i) + "a port the supervisor did not issue: on a mediated "
                                            "channel only capabilities the supervisor issued travel");
      }
      if (src->kind == GrantKind::kDirectEnd) {
        return make_error(Errc::kDenied, handle_label(i) + "grant " + std::to_string(src->id) +
                                             " is a direct channel end: the supervisor is not on "
                                             "its path, so it cannot re-mint it");
      }
      if (!src->transferable) {
        return make_error(Errc::kDenied, handle_label(i) + "grant " + std::to_string(src->id) +
                                             " (" + std::string(src->iface->name()) +
                                             ") is not transferable");
      }
      if (src->kind == GrantKind::kServed) {
        it.service = src->endpoint->service().clone();
        if (!it.service) {
          return make_error(Errc::kDenied, handle_label(i) + std::string(src->iface->name()) +
                                               " cannot be delegated");
        }
      }
      it.source = src;
    }
    items.push_back(std::move(it));
  }

  std::vector<Handle> out;
  out.reserve(n);
  std::vector<GrantId> minted;
  auto undo = [&] {
    out.clear();  // the receiver's ends close: nobody got them
    for (GrantId g : minted) table_.release(g, "the message carrying it was not delivered");
  };
  for (Item& it : items) {
    if (it.kind != HandleKind::kPort) {
      struct stat st {};
      const std::uint64_t size = ::fstat(it.fd.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
      (void)ctx_.audit.event("handle_passed", AuditFields()
                                                  .str("from", from.holder->name)
                                                  .str("to", to.name)
                                                  .str("kind", handle_kind_name(it.kind))
                                                  .unum("size", size)
                                                  .unum("channel", via));
      out.push_back(Handle{it.kind, std::move(it.fd)});
      continue;
    }
    GrantRecord& src = *it.source;
    GrantTable::Spec spec;
    spec.parent = src.id;
    spec.iface = src.iface;
    spec.rights = src.rights;
    spec.origin = GrantOrigin::kDelegated;
    spec.name = src.name;
    spec.transferable = true;
    spec.limits = src.limits;  // a budget cannot be reset by handing the port on
    spec.channel = src.channel;
    spec.via = via;
    Result<GrantTable::Minted> m =
        src.kind == GrantKind::kServerEnd
            ? mint_end(src.channel, Side::kServer, to, spec)
            : table_.mint(to, spec, std::move(it.service));
    if (!m) {
      undo();
      return std::unexpected(m.error());
    }
    minted.push_back(m->id);
    (void)ctx_.audit.event("port_delegated", AuditFields()
                                                 .unum("grant", m->id)
                                                 .unum("parent", src.id)
                                                 .str("from", from.holder->name)
                                                 .str("to", to.name)
                                                 .str("interface", src.iface->name())
                                                 .unum("channel", via));
    out.push_back(std::move(m->handle));
    // it.fd (the sender's copy that came to us) closes with `items`.
  }
  return out;
}

}  // namespace capsa::supervisor
