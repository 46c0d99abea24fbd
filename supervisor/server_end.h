// capsa — the server end of a mediated channel, as the supervisor holds it.
//
// A mediated channel (channel_hub.h) gives its server worker a port on
// which the SUPERVISOR is the caller: it sends the calls and events of the
// channel's clients (with their handles re-minted for the server) and reads
// the answers. Every packet the server sends passes, in order:
//   1. the port's packet rules (size <= the server's message_bytes, no
//      truncated control data) and the validator, accepting only replies
//      and errors, payload against the answered method's reply table,
//      handles against their kinds;
//   2. the hub: the answer must be to a call the hub sent on THIS port and
//      not yet answered, of the same method; its ports are re-minted for the
//      caller (transferable: false and ports the supervisor did not issue
//      are refused).
// A failure is a bad message of the server (its on_bad_message: reply_error
// drops the answer and fails the caller's call; close_port releases this
// end; kill kills the server). The answers a server can send are bounded by
// the calls it was sent (calls in flight), so no rate applies here.
//
// Lifetime: owned by its grant's record (grant_table.h). What it reports may
// destroy it, so every such call is the last thing a method does.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "capabilities/message.h"
#include "capabilities/port.h"
#include "supervisor/port_endpoint.h"
#include "supervisor/views.h"

namespace capsa::supervisor {

class ChannelHub;

class ServerEnd {
 public:
  // Watches `port` (our end) for grant `grant`, an end of channel `channel`.
  static Result<std::unique_ptr<ServerEnd>> create(const EndpointContext& ctx, ChannelHub& hub,
                                                   GrantRecord& grant, Port port);
  // Stops watching, closes our end (the server sees end-of-stream) and
  // tells the hub this end is gone.
  ~ServerEnd();
  ServerEnd(const ServerEnd&) = delete;
  ServerEnd& operator=(const ServerEnd&) = delete;

  // Sends one message to the server; the handles are consumed.
  Result<void> send(const Header& header, std::span<const std::uint8_t> payload,
                    std::vector<Handle> handles);
  // Its holder is being killed: read nothing more.
  void stop_reading();

 private:
  ServerEnd(const EndpointContext& ctx, ChannelHub& hub, GrantRecord& grant, Port port);
  void on_event(Events events);

  const EndpointContext* ctx_;
  ChannelHub* hub_;
  GrantRecord* grant_;
  GrantId id_;           // copies: the record may be half destroyed in ~ServerEnd
  ChannelId channel_;
  Port port_;
  WatchId watch_ = 0;
  bool added_ = false;  // the hub counts it
};

}  // namespace capsa::supervisor
