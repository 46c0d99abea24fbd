// capsa — messages: a validated received message, and the encoder that
// builds outgoing envelopes.
//
// A `Message` exists only after validate() (validator.h) accepted a packet:
// its payload verified against the method's table and every handle checked
// against the kernel object it claims to be. The `Encoder` builds the other
// direction and reuses its flatbuffers builders, so a steady stream of calls
// does not allocate per message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "capabilities/error.h"
#include "capabilities/handle.h"
#include "capabilities/interface_registry.h"
#include "capabilities/port.h"

namespace capsa {

// Values are on the wire (envelope.fbs, capsa.wire.Kind).
enum class MessageKind : std::uint8_t { kCall = 1, kReply = 2, kError = 3, kEvent = 4 };

std::string_view message_kind_name(MessageKind k) noexcept;

// The longest error text accepted or sent.
inline constexpr std::size_t kMaxErrorTextBytes = 1024;

class Message {
 public:
  Message() = default;
  Message(Message&&) noexcept = default;
  Message& operator=(Message&&) noexcept = default;

  MessageKind kind() const noexcept { return kind_; }
  std::uint64_t call_id() const noexcept { return call_id_; }
  // The method the message is for (for a reply or error: the call's method).
  // nullptr only for an error whose ordinal the interface does not know
  // (a peer reporting a message it could not parse).
  const Method* method() const noexcept { return method_; }
  // The associated object it names (docs/PROTOCOL.md section 8): 0 for the
  // port's own capability. With control(), method() is capsa.Object's.
  std::uint64_t object() const noexcept { return object_; }
  bool control() const noexcept { return control_; }

  // The payload: a verified flatbuffer whose root is the method's request
  // (call, event) or reply (reply) table. Empty for an error.
  std::span<const std::uint8_t> payload() const noexcept {
    return {reinterpret_cast<const std::uint8_t*>(packet_.bytes.data()) + payload_offset_,
            payload_size_};
  }
  // The typed root. T must be the generated type of the method's table
  // (checked by payload_type at validation).
  template <typename T>
  const T* payload_as() const noexcept {
    return flatbuffers::GetRoot<T>(payload().data());
  }

  // Error messages only.
  Errc error_code() const noexcept { return error_code_; }
  std::string_view error_text() const noexcept { return error_text_; }
  Error to_error() const { return Error{error_code_, std::string(error_text_), 0}; }

  // Handles, indexed as in the payload's handle fields. Each is already
  // checked against its declared kind.
  std::size_t handle_count() const noexcept { return packet_.fds.size(); }
  HandleKind handle_kind(std::size_t index) const noexcept { return kinds_[index]; }
  // Moves handle `index` out (an invalid Fd if already taken or out of
  // range). Handles not taken are closed with the message.
  Fd take_handle(std::size_t index) noexcept;

 private:
  friend struct MessageAccess;  // validator.cc fills a Message in
  Packet packet_;
  const Method* method_ = nullptr;
  MessageKind kind_ = MessageKind::kCall;
  std::uint64_t call_id_ = 0;
  std::uint64_t object_ = 0;
  bool control_ = false;
  std::size_t payload_offset_ = 0;
  std::size_t payload_size_ = 0;
  Errc error_code_ = Errc::kFailed;
  std::string_view error_text_;  // points into packet_.bytes (heap, stable across moves)
  std::array<HandleKind, kMaxHandlesPerMessage> kinds_{};
};

// What goes into an outgoing envelope besides payload and fds.
struct Header {
  MessageKind kind = MessageKind::kCall;
  std::uint64_t call_id = 0;
  std::uint32_t method = 0;
  std::uint32_t payload_type = 0;  // payload_type_hash of the payload's table
  Errc error_code = Errc::kFailed;  // kError only
  std::string_view error_text;      // kError only; cut at kMaxErrorTextBytes
  std::uint64_t object = 0;         // an associated object (0: the port's own)
  bool control = false;             // `method` is capsa.Object's
};

class Encoder {
 public:
  Encoder() : payload_(256), envelope_(512) {}

  // A cleared builder for the next payload. Finish it (fbb.Finish(root))
  // before passing payload_bytes() to encode().
  flatbuffers::FlatBufferBuilder& payload_builder() noexcept {
    payload_.Clear();
    return payload_;
  }
  std::span<const std::uint8_t> payload_bytes() const noexcept {
    return {payload_.GetBufferPointer(), payload_.GetSize()};
  }

  // Encodes one envelope. The bytes stay valid until the next encode() or
  // payload_builder(). `payload` may point into payload_builder()'s buffer.
  std::span<const std::byte> encode(const Header& header, std::span<const std::uint8_t> payload,
                                    std::span<const HandleKind> handle_kinds);

 private:
  flatbuffers::FlatBufferBuilder payload_;
  flatbuffers::FlatBufferBuilder envelope_;
};

// Encodes and sends one message. The handles are consumed whatever happens
// (Port::send's rule). kInvalidArgument for more than kMaxHandlesPerMessage
// handles. An error text is sent only with kind kError.
Result<void> send_message(Port& port, Encoder& encoder, const Header& header,
                          std::span<const std::uint8_t> payload, std::vector<Handle> handles);

}  // namespace capsa
