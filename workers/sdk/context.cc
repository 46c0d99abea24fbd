#include "workers/sdk/context.h"

#include <fcntl.h>

#include "capabilities/handle.h"
#include "capabilities/sys.h"
#include "capabilities/interfaces/builtin.h"
#include "capsa_bootstrap_generated.h"

namespace capsa::worker {
namespace {

std::string_view str(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->c_str(), s->size());
}

// The fields a port-carrying Bootstrap reply (Get, Attenuate) shares.
struct PortReply {
  flatbuffers::Optional<std::uint32_t> port;
  std::string_view interface;
  Rights rights;
};

}  // namespace

Result<Context> Context::from_fd(int fd) {
  // Owned first, so every error path below closes it.
  Fd owned(fd);
  if (fd < 0 || ::fcntl(fd, F_GETFD) == -1) {
    (void)owned.release();  // not ours to close: nothing is open there
    return make_error(Errc::kInvalidArgument,
                      "fd " + std::to_string(fd) +
                          " is not open: the program was not started by a capsa supervisor");
  }
  if (auto k = check_handle_kind(owned, HandleKind::kPort); !k) {
    return make_error(Errc::kInvalidArgument,
                      "fd " + std::to_string(fd) + " is not a capsa port: " + k.error().message);
  }
  // The bootstrap port must not leak into programs this worker execs.
  CAPSA_TRY(sys("fcntl", "F_SETFD FD_CLOEXEC on the bootstrap port",
                [&] { return ::fcntl(owned.get(), F_SETFD, FD_CLOEXEC); }));
  return from_port(Port(std::move(owned)));
}

Result<Context> Context::from_port(Port bootstrap) {
  auto reg = std::make_shared<InterfaceRegistry>();
  CAPSA_TRY(interfaces::register_builtin(*reg));
  const Interface* boot = reg->find(interfaces::kBootstrap);
  auto cap = std::make_unique<Capability>(std::move(bootstrap), *boot, kAllRights, reg, "bootstrap");
  return Context(std::move(reg), std::move(cap));
}

Result<Capability> Context::capability_from_reply(Message& reply, std::string_view name,
                                                  std::string_view expected_interface) {
  PortReply r;
  if (reply.method()->name == "Get") {
    const auto* g = reply.payload_as<capsa::GetReply>();
    r = {g->port(), str(g->interface()), g->rights()};
  } else {
    const auto* a = reply.payload_as<capsa::AttenuateReply>();
    r = {a->port(), str(a->interface()), a->rights()};
  }
  if (!r.port.has_value()) {
    return make_error(Errc::kBadMessage, "bootstrap reply for " + std::string(name) +
                                             " carries no port");
  }
  // Taken now: every return below closes it unless it is wrapped.
  Port port(reply.take_handle(*r.port));
  if (r.interface != expected_interface) {
    return make_error(Errc::kNotFound, "grant " + std::string(name) + " is " +
                                           std::string(r.interface) + ", not " +
                                           std::string(expected_interface));
  }
  const Interface* iface = registry_->find(r.interface);
  if (iface == nullptr) {
    return make_error(Errc::kNotFound, "grant " + std::string(name) + " is interface " +
                                           std::string(r.interface) +
                                           ", which this worker SDK does not know");
  }
  return Capability(std::move(port), *iface, r.rights, registry_, std::string(name));
}

Result<Capability> Context::get(std::string_view name, std::string_view expected_interface) {
  auto& fbb = bootstrap_->payload_builder();
  fbb.Finish(capsa::CreateGetRequest(fbb, fbb.CreateString(name.data(), name.size())));
  CAPSA_ASSIGN_OR_RETURN(Message reply, bootstrap_->call("Get", bootstrap_->payload_bytes()));
  return capability_from_reply(reply, name, expected_interface);
}

Result<std::vector<GrantInfo>> Context::list() {
  auto& fbb = bootstrap_->payload_builder();
  fbb.Finish(capsa::CreateListRequest(fbb));
  CAPSA_ASSIGN_OR_RETURN(Message reply, bootstrap_->call("List", bootstrap_->payload_bytes()));
  std::vector<GrantInfo> out;
  if (const auto* grants = reply.payload_as<capsa::ListReply>()->grants()) {
    out.reserve(grants->size());
    for (const auto* g : *grants) {
      out.push_back({std::string(str(g->name())), std::string(str(g->interface())), g->rights()});
    }
  }
  return out;
}

Result<Capability> Context::attenuate(Capability cap, std::span<const std::string_view> methods) {
  if (cap.state() != CapabilityState::kLive) {
    return make_error(Errc::kInvalidArgument, "cannot attenuate a capability that is " +
                                                  std::string(capability_state_name(cap.state())));
  }
  for (auto m : methods) {
    if (cap.interface().method(m) == nullptr) {
      return make_error(Errc::kNotFound,
                        std::string(cap.interface_name()) + " has no method " + std::string(m));
    }
  }
  std::string name(cap.name());
  std::string iface(cap.interface_name());
  auto& fbb = bootstrap_->payload_builder();
  std::vector<flatbuffers::Offset<flatbuffers::String>> names;
  names.reserve(methods.size());
  for (auto m : methods) names.push_back(fbb.CreateString(m.data(), m.size()));
  fbb.Finish(capsa::CreateAttenuateRequest(fbb, 0, fbb.CreateVector(names)));
  std::vector<Handle> handles;
  handles.push_back(Handle{HandleKind::kPort, cap.release().release_fd()});
  CAPSA_ASSIGN_OR_RETURN(Message reply, bootstrap_->call("Attenuate", bootstrap_->payload_bytes(),
                                                         std::move(handles)));
  return capability_from_reply(reply, name, iface);
}

Result<Context::ChannelEnds> Context::new_channel(std::string_view interface) {
  const Interface* iface = registry_->find(interface);
  if (iface == nullptr) {
    return make_error(Errc::kNotFound, "interface " + std::string(interface) +
                                           " is not one this worker SDK knows");
  }
  auto& fbb = bootstrap_->payload_builder();
  fbb.Finish(capsa::CreateNewChannelRequest(fbb, fbb.CreateString(interface.data(), interface.size())));
  CAPSA_ASSIGN_OR_RETURN(Message reply, bootstrap_->call("NewChannel", bootstrap_->payload_bytes()));
  const auto* r = reply.payload_as<capsa::NewChannelReply>();
  if (!r->client().has_value() || !r->server().has_value()) {
    return make_error(Errc::kBadMessage, "NewChannel reply carries no ports");
  }
  // Taken now: both close on every return below unless wrapped.
  Port client(reply.take_handle(*r->client()));
  Port server(reply.take_handle(*r->server()));
  if (str(r->interface()) != interface) {
    return make_error(Errc::kBadMessage, "NewChannel answered a channel of " +
                                             std::string(str(r->interface())) + ", not " +
                                             std::string(interface));
  }
  return ChannelEnds{Capability(std::move(client), *iface, kAllRights, registry_, std::string(interface)),
                     std::move(server)};
}

Result<Capability> Context::adopt(Port port, std::string_view expected_interface,
                                  std::string name) {
  const Interface* iface = registry_->find(expected_interface);
  if (iface == nullptr) {
    return make_error(Errc::kNotFound, "interface " + std::string(expected_interface) +
                                           " is not one this worker SDK knows");
  }
  return Capability(std::move(port), *iface, kAllRights, registry_, std::move(name));
}

Result<std::unique_ptr<Server>> Context::serve(Port port, std::string_view interface,
                                               ServerOptions options) {
  const Interface* iface = registry_->find(interface);
  if (iface == nullptr) {
    return make_error(Errc::kNotFound,
                      "interface " + std::string(interface) + " is not one this worker SDK knows");
  }
  return std::make_unique<Server>(std::move(port), *iface, std::move(options));
}

}  // namespace capsa::worker
