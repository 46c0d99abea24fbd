#include "capabilities/validator.h"

#include <flatbuffers/reflection.h>

#include <algorithm>
#include <string>

#include "envelope_generated.h"

namespace capsa {

// Fills a Message once validation succeeded (Message's fields are private so
// that nothing else can make one).
struct MessageAccess {
  static Message& fill(Message& m, Packet&& packet, const Method* method, MessageKind kind,
                       const EnvelopeInfo& info) {
    m.packet_ = std::move(packet);
    m.method_ = method;
    m.kind_ = kind;
    m.call_id_ = info.call_id;
    m.object_ = info.object;
    m.control_ = info.control;
    return m;
  }
  static void set_payload(Message& m, std::size_t offset, std::size_t size) {
    m.payload_offset_ = offset;
    m.payload_size_ = size;
  }
  static void set_error(Message& m, Errc code, std::string_view text) {
    m.error_code_ = code;
    m.error_text_ = text;
  }
  static void set_kind(Message& m, std::size_t i, HandleKind k) { m.kinds_[i] = k; }
};

namespace {

std::unexpected<Error> bad(std::string message) {
  return make_error(Errc::kBadMessage, std::move(message));
}

std::string where(const Interface& iface, const Method& m) {
  std::string s(iface.name());
  s += '.';
  s += m.name;
  s += ": ";
  return s;
}

std::string kind_name(HandleKind k) { return std::string(handle_kind_name(k)); }

// Rule 5: every declared handle is referenced exactly once, by a field of
// its kind. `declared` has already been bounded by the handle limit.
// `iface` and `m` name the method in error text; the text is built only on
// failure, so a valid message allocates nothing here.
Result<void> check_references(const TableInfo& table, const flatbuffers::Table& root,
                              std::span<const std::uint8_t> declared, const Interface& iface,
                              const Method& m) {
  std::uint64_t seen = 0;
  auto use = [&](const HandleField& f, std::uint32_t index) -> Result<void> {
    if (index >= declared.size()) {
      return bad(where(iface, m) + "field " + f.name + " refers to handle " + std::to_string(index) +
                 " but " + std::to_string(declared.size()) + " handles are declared");
    }
    auto bit = std::uint64_t{1} << index;
    if ((seen & bit) != 0) {
      return bad(where(iface, m) + "handle " + std::to_string(index) + " is referenced twice (again by " +
                 f.name + ")");
    }
    seen |= bit;
    auto declared_kind = static_cast<HandleKind>(declared[index]);
    if (declared_kind != f.kind) {
      return bad(where(iface, m) + "field " + f.name + " takes a " + kind_name(f.kind) + " but handle " +
                 std::to_string(index) + " is declared " + kind_name(declared_kind));
    }
    return {};
  };
  for (const HandleField& f : table.handle_fields) {
    if (f.is_vector) {
      const auto* v = root.GetPointer<const flatbuffers::Vector<std::uint32_t>*>(f.vtable_offset);
      if (v == nullptr) continue;
      for (std::uint32_t index : *v) {
        if (auto ok = use(f, index); !ok) return ok;
      }
    } else if (root.GetOptionalFieldOffset(f.vtable_offset) != 0) {
      if (auto ok = use(f, root.GetField<std::uint32_t>(f.vtable_offset, 0)); !ok) return ok;
    }
  }
  for (std::size_t i = 0; i < declared.size(); ++i) {
    if ((seen & (std::uint64_t{1} << i)) == 0) {
      return bad(where(iface, m) + "handle " + std::to_string(i) + " (" +
                 kind_name(static_cast<HandleKind>(declared[i])) +
                 ") is not referenced by any handle field");
    }
  }
  return {};
}

Result<void> check_error_envelope(const wire::Envelope& env) {
  if (env.payload() != nullptr || env.handles() != nullptr) {
    return bad("an error message carries a payload or handles");
  }
  if (!is_wire_code(static_cast<Errc>(env.error_code()))) {
    return bad("error code " + std::to_string(env.error_code()) + " is not a wire code");
  }
  if (env.error_text() != nullptr && env.error_text()->size() > kMaxErrorTextBytes) {
    return bad("error text of " + std::to_string(env.error_text()->size()) +
               " bytes (limit " + std::to_string(kMaxErrorTextBytes) + ")");
  }
  return {};
}

}  // namespace

Result<Message> validate(Packet packet, const Interface& port_iface, const ValidateOptions& options,
                         EnvelopeInfo* info_out) {
  EnvelopeInfo local_info;
  EnvelopeInfo& info = info_out != nullptr ? *info_out : local_info;
  const Limits& lim = options.limits;
  const std::size_t max_handles = std::min(lim.max_handles, kMaxHandlesPerMessage);

  // 1. Packet-level limits. The port enforces them too; a second check here
  // keeps the validator safe on packets that came from elsewhere.
  if (packet.bytes.size() > lim.max_packet_bytes) {
    return bad("packet of " + std::to_string(packet.bytes.size()) + " bytes (limit " +
               std::to_string(lim.max_packet_bytes) + ")");
  }
  if (packet.fds.size() > max_handles) {
    return bad(std::to_string(packet.fds.size()) + " fds attached (limit " +
               std::to_string(max_handles) + ")");
  }

  // 2. Envelope.
  const auto* data = reinterpret_cast<const std::uint8_t*>(packet.bytes.data());
  flatbuffers::Verifier env_verifier(data, packet.bytes.size(), /*max_depth=*/4,
                                     /*max_tables=*/1);
  if (packet.bytes.empty() || !wire::VerifyEnvelopeBuffer(env_verifier)) {
    return bad("not a capsa envelope (identifier or flatbuffer verification failed)");
  }
  const wire::Envelope& env = *wire::GetEnvelope(data);
  const auto raw_kind = static_cast<std::uint8_t>(env.kind());
  if (raw_kind < 1 || raw_kind > 4) {
    return bad("unknown message kind " + std::to_string(raw_kind));
  }
  const auto kind = static_cast<MessageKind>(raw_kind);
  if ((options.accept & (1u << raw_kind)) == 0) {
    return bad(std::string("a ") + std::string(message_kind_name(kind)) +
               " is not expected on this port");
  }
  const std::uint64_t call_id = env.call_id();
  info = EnvelopeInfo{true, kind, call_id, env.method(), env.object(), env.control()};
  if (kind == MessageKind::kEvent ? call_id != 0
                                  : (call_id == 0 && kind != MessageKind::kError)) {
    return bad("call id " + std::to_string(call_id) + " is not valid for a " +
               std::string(message_kind_name(kind)));
  }
  const std::size_t declared_count = env.handles() == nullptr ? 0 : env.handles()->size();
  if (declared_count > max_handles) {
    return bad(std::to_string(declared_count) + " handles declared (limit " +
               std::to_string(max_handles) + ")");
  }

  // 3. The target: the port's own capability, or an object on it.
  const Interface* target = &port_iface;
  Rights rights = options.rights;
  if (info.object != 0 || info.control) {
    if (info.object == 0) return bad("a control message names no object");
    if (options.objects == nullptr) {
      return bad("object " + std::to_string(info.object) +
                 " named on a port that has no associated objects");
    }
    CAPSA_ASSIGN_OR_RETURN(const ObjectTarget t, options.objects->resolve(info));
    target = t.iface;
    rights = t.rights;
  }
  const Interface& iface = *target;

  const Method* method = iface.method(env.method());
  Message msg;
  if (kind == MessageKind::kError) {
    CAPSA_TRY(check_error_envelope(env));
    if (!packet.fds.empty()) return bad("an error message carries fds");
    const auto* text = env.error_text();
    auto code = static_cast<Errc>(env.error_code());
    MessageAccess::fill(msg, std::move(packet), method, kind, info);
    // The text points into the packet's heap buffer, which moved with it.
    MessageAccess::set_error(msg, code,
                             text == nullptr ? std::string_view{} : text->string_view());
    return msg;
  }

  // Method known, and allowed.
  if (method == nullptr) {
    return bad(std::string(iface.name()) + " has no method with ordinal " +
               std::to_string(env.method()));
  }
  if (kind != MessageKind::kReply && (rights & right_of(method->ordinal)) == 0) {
    return make_error(Errc::kDenied, std::string(iface.name()) + "." + method->name +
                                         " is not in the rights of this capability");
  }

  // 4. Payload: the right type, then verified against that table.
  const TableInfo& table = kind == MessageKind::kReply ? method->reply : method->request;
  if (env.payload_type() != table.type_hash) {
    return bad(where(iface, *method) + "payload type does not match " + table.name);
  }
  const auto* payload = env.payload();
  if (payload == nullptr || payload->size() == 0) return bad(where(iface, *method) + "no payload");
  const std::size_t payload_offset = static_cast<std::size_t>(payload->data() - data);
  if (payload_offset % 8 != 0) {
    return bad(where(iface, *method) + "payload is not 8-byte aligned in the packet");
  }
  if (!flatbuffers::Verify(iface.schema(), *table.object, payload->data(), payload->size(),
                           lim.max_depth, lim.max_tables)) {
    return bad(where(iface, *method) + "payload does not verify as " + table.name +
               " (within depth " + std::to_string(lim.max_depth) + " and " +
               std::to_string(lim.max_tables) + " tables)");
  }

  // 5. Every declared handle referenced exactly once, by a field of its kind.
  std::span<const std::uint8_t> declared;
  if (env.handles() != nullptr) {
    declared = {reinterpret_cast<const std::uint8_t*>(env.handles()->data()), declared_count};
  }
  for (std::size_t i = 0; i < declared_count; ++i) {
    if (declared[i] > static_cast<std::uint8_t>(HandleKind::kBlob)) {
      return bad(where(iface, *method) + "handle " + std::to_string(i) +
                 " has unknown kind " + std::to_string(declared[i]));
    }
  }
  if (!table.handle_fields.empty() || declared_count != 0) {
    const flatbuffers::Table& root = *flatbuffers::GetAnyRoot(payload->data());
    CAPSA_TRY(check_references(table, root, declared, iface, *method));
  }

  // 6. An fd for each declared handle, of the declared kind.
  if (packet.fds.size() < declared_count) {
    return bad(where(iface, *method) + std::to_string(declared_count) + " handles declared but " +
               std::to_string(packet.fds.size()) + " fds attached");
  }
  for (std::size_t i = 0; i < declared_count; ++i) {
    auto k = static_cast<HandleKind>(declared[i]);
    if (auto ok = check_handle_kind(packet.fds[i], k); !ok) {
      return bad(where(iface, *method) + "handle " + std::to_string(i) + ": " + ok.error().message);
    }
    MessageAccess::set_kind(msg, i, k);
  }

  // 7. No surplus fds.
  if (packet.fds.size() > declared_count) {
    return bad(where(iface, *method) + std::to_string(packet.fds.size()) +
               " fds attached but " + std::to_string(declared_count) + " handles declared");
  }

  MessageAccess::fill(msg, std::move(packet), method, kind, info);
  MessageAccess::set_payload(msg, payload_offset, payload->size());
  return msg;
}

}  // namespace capsa
