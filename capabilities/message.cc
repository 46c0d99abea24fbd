#include "capabilities/message.h"

#include "envelope_generated.h"

namespace capsa {

std::string_view message_kind_name(MessageKind k) noexcept {
  switch (k) {
    case MessageKind::kCall: return "call";
    case MessageKind::kReply: return "reply";
    case MessageKind::kError: return "error";
    case MessageKind::kEvent: return "event";
  }
  return "unknown kind";
}

Fd Message::take_handle(std::size_t index) noexcept {
  if (index >= packet_.fds.size()) return Fd();
  return std::move(packet_.fds[index]);
}

std::span<const std::byte> Encoder::encode(const Header& header,
                                           std::span<const std::uint8_t> payload,
                                           std::span<const HandleKind> handle_kinds) {
  envelope_.Clear();
  flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> payload_off;
  if (!payload.empty()) {
    // The payload is a flatbuffer of its own, read in place by the receiver:
    // it must start on an 8-byte boundary for its 8-byte scalars.
    envelope_.ForceVectorAlignment(payload.size(), 1, 8);
    payload_off = envelope_.CreateVector(payload.data(), payload.size());
  }
  flatbuffers::Offset<flatbuffers::Vector<wire::HandleKind>> handles_off;
  if (!handle_kinds.empty()) {
    // Same one-byte values on both sides (envelope.fbs mirrors handle.h).
    static_assert(sizeof(HandleKind) == sizeof(wire::HandleKind));
    handles_off = envelope_.CreateVector(
        reinterpret_cast<const wire::HandleKind*>(handle_kinds.data()), handle_kinds.size());
  }
  flatbuffers::Offset<flatbuffers::String> text_off;
  if (header.kind == MessageKind::kError && !header.error_text.empty()) {
    auto text = header.error_text.substr(0, kMaxErrorTextBytes);
    text_off = envelope_.CreateString(text.data(), text.size());
  }
  wire::EnvelopeBuilder b(envelope_);
  b.add_call_id(header.call_id);
  if (header.object != 0) b.add_object(header.object);
  if (header.control) b.add_control(true);
  if (text_off.o != 0) b.add_error_text(text_off);
  if (handles_off.o != 0) b.add_handles(handles_off);
  if (payload_off.o != 0) b.add_payload(payload_off);
  b.add_payload_type(header.payload_type);
  b.add_method(header.method);
  if (header.kind == MessageKind::kError) {
    b.add_error_code(static_cast<std::uint8_t>(header.error_code));
  }
  b.add_kind(static_cast<wire::Kind>(header.kind));
  envelope_.Finish(b.Finish(), wire::EnvelopeIdentifier());
  return {reinterpret_cast<const std::byte*>(envelope_.GetBufferPointer()), envelope_.GetSize()};
}

Result<void> send_message(Port& port, Encoder& encoder, const Header& header,
                          std::span<const std::uint8_t> payload, std::vector<Handle> handles) {
  if (handles.size() > kMaxHandlesPerMessage) {
    return make_error(Errc::kInvalidArgument,
                      std::to_string(handles.size()) + " handles in one message (limit " +
                          std::to_string(kMaxHandlesPerMessage) + ")");
  }
  std::array<HandleKind, kMaxHandlesPerMessage> kinds{};
  std::vector<Fd> fds;
  if (!handles.empty()) {
    fds.reserve(handles.size());
    for (std::size_t i = 0; i < handles.size(); ++i) {
      kinds[i] = handles[i].kind;
      fds.push_back(std::move(handles[i].fd));
    }
  }
  auto bytes = encoder.encode(header, payload, std::span(kinds.data(), handles.size()));
  return port.send(bytes, std::move(fds));
}

}  // namespace capsa
