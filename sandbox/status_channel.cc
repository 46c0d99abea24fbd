#include "sandbox/status_channel.h"

#include <cstring>

namespace capsa::sandbox::detail {

Port status_port(Fd socket) {
  Port port(std::move(socket));
  port.set_max_packet_bytes(sizeof(StatusRecord));
  return port;
}

Result<std::optional<ReceivedRecord>> read_status_record(Port& port) {
  auto packet = port.receive();
  if (!packet) {
    if (packet.error().code == Errc::kClosed) return std::nullopt;
    if (packet.error().code == Errc::kBadMessage) {
      return make_error(Errc::kBadMessage, "launcher status: " + packet.error().message);
    }
    return std::unexpected(std::move(packet).error());
  }
  ReceivedRecord out;
  if (packet->bytes.size() != sizeof out.record || packet->fds.size() > 1) {
    return make_error(Errc::kBadMessage, "launcher status: malformed record");
  }
  std::memcpy(&out.record, packet->bytes.data(), sizeof out.record);
  auto type = static_cast<StatusType>(out.record.type);
  bool wants_fd = type == StatusType::kListener;
  if (type < StatusType::kListener || type > StatusType::kAccepted ||
      wants_fd != (packet->fds.size() == 1)) {
    return make_error(Errc::kBadMessage, "launcher status: unexpected record or fd");
  }
  out.record.text[sizeof out.record.text - 1] = '\0';
  if (wants_fd) out.fd = std::move(packet->fds[0]);
  return out;
}

}  // namespace capsa::sandbox::detail
