// capsa — the server end of a mediated channel (server_end.h).
#include "supervisor/server_end.h"

#include <utility>

#include "capabilities/validator.h"
#include "supervisor/channel_hub.h"
#include "supervisor/grant_table.h"

namespace capsa::supervisor {

Result<std::unique_ptr<ServerEnd>> ServerEnd::create(const EndpointContext& ctx, ChannelHub& hub,
                                                     GrantRecord& grant, Port port) {
  CAPSA_TRY(port.set_nonblocking(true));
  port.set_max_packet_bytes(grant.holder->profile->limits.message_bytes);
  std::unique_ptr<ServerEnd> end(new ServerEnd(ctx, hub, grant, std::move(port)));
  ServerEnd* raw = end.get();
  CAPSA_ASSIGN_OR_RETURN(end->watch_, ctx.reactor.watch(end->port_.fd(), Interest::kReadable,
                                                        [raw](Events ev) { raw->on_event(ev); }));
  hub.server_added(end->channel_, end->id_);
  end->added_ = true;
  return end;
}

ServerEnd::ServerEnd(const EndpointContext& ctx, ChannelHub& hub, GrantRecord& grant, Port port)
    : ctx_(&ctx),
      hub_(&hub),
      grant_(&grant),
      id_(grant.id),
      channel_(grant.channel),
      port_(std::move(port)) {}

ServerEnd::~ServerEnd() {
  stop_reading();
  port_ = Port();  // the server sees end-of-stream before the hub reacts
  if (added_) hub_->end_gone(channel_, ChannelHub::Side::kServer, id_);
}

void ServerEnd::stop_reading() {
  if (watch_ != 0) ctx_->reactor.unwatch(std::exchange(watch_, 0));
}

Result<void> ServerEnd::send(const Header& header, std::span<const std::uint8_t> payload,
                             std::vector<Handle> handles) {
  return send_message(port_, ctx_->encoder, header, payload, std::move(handles));
}

void ServerEnd::on_event(Events events) {
  GrantRecord& g = *grant_;
  if (g.holder->killing) {
    stop_reading();
    return;
  }
  if (!events.readable() && (events.hung_up() || events.error())) {
    ctx_->owner.release(id_, "holder closed the port");
    return;
  }
  auto packet = port_.receive();
  if (!packet) {
    switch (packet.error().code) {
      case Errc::kWouldBlock: return;
      case Errc::kClosed: ctx_->owner.release(id_, "holder closed the port"); return;
      case Errc::kBadMessage: hub_->bad_answer(g, packet.error(), 0); return;
      default: ctx_->owner.release(id_, "receive failed: " + packet.error().message); return;
    }
  }
  const std::size_t packet_bytes = packet->bytes.size();
  ValidateOptions vo;
  vo.accept = kClientAccepts;
  vo.limits.max_packet_bytes = port_.max_packet_bytes();
  EnvelopeInfo info;
  auto msg = validate(std::move(*packet), *g.iface, vo, &info);
  if (!msg) {
    hub_->bad_answer(g, msg.error(), info.envelope_ok ? info.call_id : 0);
    return;
  }
  g.bytes += packet_bytes;
  hub_->answer(g, std::move(*msg));  // may end this object
}

}  // namespace capsa::supervisor
