// capsa worker SDK — the worker's side of its bootstrap port.
//
// A worker starts with exactly one port, fd 3, served by the supervisor as
// capsa.Bootstrap (capabilities/interfaces/capsa_bootstrap.fbs). Everything
// else it can reach comes from there (docs/SANDBOX.md):
//
//   auto ctx = capsa::worker::Context::from_fd();          // takes fd 3
//   if (!ctx) { /* not started by capsa: fd 3 is not a port */ }
//   auto docs = capsa::worker::Directory::get(*ctx, "docs");
//   auto fd = docs->open_file("report.txt");                // read-only Fd
//
// A grant is checked against the interface the caller expects before it is
// handed out: a worker asking for "docs" as an fs.Directory never gets a
// port that speaks something else.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/interface_registry.h"
#include "capabilities/port.h"
#include "capabilities/server.h"
#include "workers/sdk/capability.h"

namespace capsa::worker {

// The fd the launcher leaves the bootstrap port on.
inline constexpr int kBootstrapFd = 3;

struct GrantInfo {
  std::string name;
  std::string interface;  // fully qualified, e.g. "fs.Directory"
  Rights rights = 0;
};

class Context {
 public:
  // Takes ownership of `fd` (closed on every error path too) and checks it
  // is a port (AF_UNIX SOCK_SEQPACKET). kInvalidArgument when it is not
  // open or not a port: the program was not started by a capsa supervisor.
  static Result<Context> from_fd(int fd = kBootstrapFd);
  // Same, for a bootstrap port the caller already holds (tests, a host
  // that embeds a worker in-process).
  static Result<Context> from_port(Port bootstrap);

  // The capability granted as `name`, checked to be `expected_interface`.
  // Errors: kNotFound (no such grant; or the grant is another interface,
  // or one this SDK does not know: the port is closed, nothing is used),
  // kRevoked (the grant was revoked, or the bootstrap port is gone),
  // kBadMessage (the reply had no port), and the supervisor's errors.
  Result<Capability> get(std::string_view name, std::string_view expected_interface);

  // The grants this worker may get. Listing grants no authority.
  Result<std::vector<GrantInfo>> list();

  // A narrower copy of `cap`: only `methods` (names of its interface) among
  // its rights. `cap` is consumed (its port travels to the supervisor);
  // on error it is gone too, so Get it again if the wide one is needed.
  // Errors: kNotFound (a method name the interface lacks), kDenied (the
  // result would have no rights), kInvalidArgument (`cap` is not live).
  Result<Capability> attenuate(Capability cap, std::span<const std::string_view> methods);

  // Wraps a port received in a reply or message as a capability of
  // `expected_interface`. Its rights are unknown here (the serving side
  // enforces them): all methods are allowed locally. kNotFound when the
  // interface is not one this SDK knows.
  Result<Capability> adopt(Port port, std::string_view expected_interface,
                           std::string name = "");

  // Both ends of a new mediated channel speaking `interface`, allowed when
  // the worker's policy lists it in new_channels. The supervisor relays
  // and checks every message between them; both are grants of this worker
  // and can be handed on (a port sent in a message). `client` calls;
  // `server` is served with serve() here or by whoever receives it.
  // Errors: kDenied (the policy does not allow it), kOverloaded (this
  // worker holds its maximum of live ports), kNotFound (an interface this
  // SDK does not know).
  struct ChannelEnds {
    Capability client;
    Port server;
  };
  Result<ChannelEnds> new_channel(std::string_view interface);

  // Serves `interface` on `port` (the other end of a channel this worker
  // made or received): a capsa::Server, validated like any supervisor
  // service. Register handlers with on(), then run() or on_readable().
  Result<std::unique_ptr<Server>> serve(Port port, std::string_view interface,
                                        ServerOptions options = {});

  Capability& bootstrap() noexcept { return *bootstrap_; }
  const std::shared_ptr<const InterfaceRegistry>& registry() const noexcept { return registry_; }

 private:
  Context(std::shared_ptr<const InterfaceRegistry> reg, std::unique_ptr<Capability> boot)
      : registry_(std::move(reg)), bootstrap_(std::move(boot)) {}
  // Checks a port-carrying reply (Get, Attenuate) and wraps its port.
  Result<Capability> capability_from_reply(Message& reply, std::string_view name,
                                           std::string_view expected_interface);

  std::shared_ptr<const InterfaceRegistry> registry_;
  std::unique_ptr<Capability> bootstrap_;
};

}  // namespace capsa::worker
