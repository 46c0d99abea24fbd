// capsa — capsa.Bootstrap, served on each worker's fd 3
// (capabilities/interfaces/capsa_bootstrap.fbs is the contract).
//
// Get(name): a new grant of the worker's policy grant `name` (or its end of
// a channel named `name`), minted and audited before the port is sent.
// Unknown names answer `not found` and are audited as denials: asking for
// what one was not given is what a compromised worker does first.
// List(): names only; grants no authority.
// Attenuate(port, methods): the port must be one this supervisor served to
// this worker; the new grant has the intersection of rights, the same
// service (a clone: same resource, its own per-port state) and the old one
// as parent. The port received is closed here: if it was the worker's only
// copy, the old grant is released when its end hangs up.
// NewChannel(interface): both ends of a new mediated channel, when the
// worker's policy lists the interface in new_channels (an allowlist); both
// are grants of the caller and count against its cap.
#include <algorithm>
#include <utility>

#include "capabilities/interfaces/builtin.h"
#include "capsa_bootstrap_generated.h"
#include "supervisor/services/dispatch.h"
#include "supervisor/supervisor_impl.h"

namespace capsa::supervisor {

namespace {

constexpr std::size_t kMaxNameBytes = 256;

class BootstrapService final : public ServiceObject {
 public:
  BootstrapService(Supervisor::Impl& core, WorkerRecord& worker) : core_(core), worker_(worker) {}

  void handle(Call call) override { methods().dispatch(*this, std::move(call)); }

  // By ordinal (services/dispatch.h); checked against the loaded
  // capsa.Bootstrap in supervisor_test.cc.
  static const MethodTable<BootstrapService, 4>& methods() {
    static constexpr MethodTable<BootstrapService, 4> kTable{
        interfaces::kBootstrap,
        {{{0, "Get", &BootstrapService::get},
          {1, "List", &BootstrapService::list},
          {2, "Attenuate", &BootstrapService::attenuate},
          {3, "NewChannel", &BootstrapService::new_channel}}}};
    return kTable;
  }

  std::unique_ptr<ServiceObject> clone() const override { return nullptr; }

 private:
  void refuse(Call& call, Errc code, std::string_view method, const std::string& reason) {
    ++worker_.denials;
    if (GrantRecord* g = core_.table().find(call.grant())) ++g->denials;
    (void)core_.audit().call_denied(worker_.name, call.grant(), "capsa.Bootstrap", method, reason);
    call.fail(code, reason);
  }

  void send_port(Call& call, Handle port, const Interface& iface, Rights rights) {
    const std::string_view iface_name = iface.name();
    call.reply(
        [&](flatbuffers::FlatBufferBuilder& fbb) {
          auto name = fbb.CreateString(iface_name.data(), iface_name.size());
          fbb.Finish(capsa::CreateGetReply(fbb, 0, name, rights));
        },
        [&] {
          std::vector<Handle> h;
          h.push_back(std::move(port));
          return h;
        }());
  }

  void get(Call call) {
    const auto* req = call.request().payload_as<capsa::GetRequest>();
    if (req->name() == nullptr || req->name()->size() == 0 ||
        req->name()->size() > kMaxNameBytes) {
      call.fail(Errc::kBadMessage, "Get: name missing or longer than 256 bytes");
      return;
    }
    const std::string_view name = req->name()->string_view();
    if (const GrantPlan* plan = worker_.find_plan(name)) {
      if (worker_.revoked_names.contains(name)) {
        refuse(call, Errc::kRevoked, "Get", "grant '" + std::string(name) + "' was revoked");
        return;
      }
      auto service = plan->factory->make(*plan->grant, plan->prepared, core_.host());
      if (!service) {
        call.fail(Errc::kFailed, "no service for " + std::string(plan->iface->name()));
        return;
      }
      GrantTable::Spec spec;
      spec.iface = plan->iface;
      spec.rights = plan->rights;
      spec.origin = GrantOrigin::kPolicy;
      spec.name = plan->grant->name;
      spec.transferable = plan->grant->transferable;
      spec.limits = plan->limits;
      auto port = core_.table().mint(worker_, spec, std::move(service));
      if (!port) {
        call.fail(port.error());
        return;
      }
      send_port(call, std::move(port->handle), *plan->iface,
                plan->rights & plan->iface->defined_rights());
      return;
    }
    if (ChannelEnd* end = worker_.find_channel_end(name)) {
      auto port = core_.take_channel_end(worker_, *end);
      if (!port) {
        if (port.error().code == Errc::kDenied) {
          refuse(call, Errc::kDenied, "Get", port.error().message);
        } else {
          call.fail(port.error());
        }
        return;
      }
      send_port(call, std::move(port->handle), *end->iface, end->iface->defined_rights());
      return;
    }
    refuse(call, Errc::kNotFound, "Get", "not granted: '" + std::string(name) + "'");
  }

  void list(Call call) {
    call.reply([&](flatbuffers::FlatBufferBuilder& fbb) {
      std::vector<flatbuffers::Offset<capsa::GrantInfo>> infos;
      for (const GrantPlan& p : worker_.plans) {
        infos.push_back(capsa::CreateGrantInfo(fbb, fbb.CreateString(p.grant->name),
                                               fbb.CreateString(p.iface->name().data(),
                                                                p.iface->name().size()),
                                               p.rights & p.iface->defined_rights()));
      }
      for (const ChannelEnd& e : worker_.channel_ends) {
        infos.push_back(capsa::CreateGrantInfo(fbb, fbb.CreateString(e.channel->name),
                                               fbb.CreateString(e.iface->name().data(),
                                                                e.iface->name().size()),
                                               e.iface->defined_rights()));
      }
      fbb.Finish(capsa::CreateListReply(fbb, fbb.CreateVector(infos)));
    });
  }

  void attenuate(Call call) {
    const auto* req = call.request().payload_as<capsa::AttenuateRequest>();
    if (!req->port().has_value()) {
      call.fail(Errc::kBadMessage, "Attenuate: no port attached");
      return;
    }
    Fd fd = call.request().take_handle(*req->port());
    const std::uint64_t inode = socket_inode(fd);
    GrantRecord* old = core_.table().find(core_.table().find_by_inode(inode));
    if (old == nullptr || old->holder != &worker_ || old->kind != GrantKind::kServed) {
      refuse(call, Errc::kNotFound, "Attenuate",
             "the port is not a capability the supervisor serves to this worker");
      return;
    }
    Rights wanted = 0;
    if (req->methods() != nullptr) {
      for (const auto* m : *req->methods()) {
        const Method* method = m != nullptr ? old->iface->method(m->string_view()) : nullptr;
        if (method == nullptr) {
          refuse(call, Errc::kNotFound, "Attenuate",
                 "no method '" + (m != nullptr ? m->str() : std::string()) + "' in " +
                     std::string(old->iface->name()));
          return;
        }
        wanted |= right_of(method->ordinal);
      }
    }
    const Rights rights = old->rights & wanted;
    if (rights == 0) {
      refuse(call, Errc::kDenied, "Attenuate", "the attenuated capability would have no rights");
      return;
    }
    auto service = old->endpoint->service().clone();
    if (!service) {
      refuse(call, Errc::kDenied, "Attenuate",
             std::string(old->iface->name()) + " cannot be attenuated");
      return;
    }
    const Interface& iface = *old->iface;
    GrantTable::Spec spec;
    spec.parent = old->id;
    spec.iface = &iface;
    spec.rights = rights;
    spec.origin = GrantOrigin::kAttenuated;
    spec.name = old->name;
    spec.transferable = old->transferable;
    spec.limits = old->limits;
    spec.channel = old->channel;  // a narrower client end of the same channel
    spec.via = old->via;
    auto port = core_.table().mint(worker_, spec, std::move(service));
    fd.reset();  // consumed: the worker's copy of the wide port came to us
    if (!port) {
      call.fail(port.error());
      return;
    }
    call.reply(
        [&](flatbuffers::FlatBufferBuilder& fbb) {
          auto name = fbb.CreateString(iface.name().data(), iface.name().size());
          fbb.Finish(capsa::CreateAttenuateReply(fbb, 0, name, rights));
        },
        [&] {
          std::vector<Handle> h;
          h.push_back(std::move(port->handle));
          return h;
        }());
  }

  void new_channel(Call call) {
    const auto* req = call.request().payload_as<capsa::NewChannelRequest>();
    if (req->interface() == nullptr || req->interface()->size() == 0 ||
        req->interface()->size() > kMaxNameBytes) {
      call.fail(Errc::kBadMessage, "NewChannel: interface missing or longer than 256 bytes");
      return;
    }
    const std::string_view api = req->interface()->string_view();
    const auto& allowed = worker_.profile->new_channels;
    const Interface* iface = core_.registry().find(api);
    if (iface == nullptr || std::find(allowed.begin(), allowed.end(), api) == allowed.end()) {
      refuse(call, Errc::kDenied, "NewChannel",
             "the policy lets worker '" + worker_.name + "' make no channel of '" +
                 std::string(api) + "'");
      return;
    }
    auto ends = core_.new_channel(worker_, *iface);
    if (!ends) {
      call.fail(ends.error());
      return;
    }
    const std::string_view name = iface->name();
    call.reply(
        [&](flatbuffers::FlatBufferBuilder& fbb) {
          auto n = fbb.CreateString(name.data(), name.size());
          fbb.Finish(capsa::CreateNewChannelReply(fbb, 0, 1, n));
        },
        [&] {
          std::vector<Handle> h;
          h.push_back(std::move(ends->first.handle));
          h.push_back(std::move(ends->second.handle));
          return h;
        }());
  }

  Supervisor::Impl& core_;
  WorkerRecord& worker_;
};

}  // namespace

Result<void> check_bootstrap_methods(const Interface& iface) {
  return BootstrapService::methods().check(iface);
}

std::unique_ptr<ServiceObject> make_bootstrap(Supervisor::Impl& core, WorkerRecord& worker) {
  return std::make_unique<BootstrapService>(core, worker);
}

}  // namespace capsa::supervisor
