// capsa — the schema-driven validator: the one gate every received packet
// passes before any code looks at it.
//
// validate() applies, in this order (docs/PROTOCOL.md), all of:
//   1. packet size <= limits.max_packet_bytes, fds <= limits.max_handles
//      (the port already refused truncated packets: MSG_TRUNC/MSG_CTRUNC);
//   2. envelope: identifier "CPS1", flatbuffers verify, a known kind that
//      this receiver accepts, call id rules, error code and text rules;
//   3. target and method: a message naming an associated object is checked
//      against that object's interface and rights (options.objects; an
//      unknown object is kNotFound); the method is known in the interface
//      (else kBadMessage) and, for calls and events, in the rights mask
//      (else kDenied: a well-formed request the capability does not allow);
//   4. payload: payload_type equals the method's request/reply table hash,
//      8-byte aligned, verified against that table by reflection with
//      limits.max_depth and limits.max_tables;
//   5. handles: every handle field's index is in range, names a declared
//      handle of the field's kind, and each declared handle is referenced
//      exactly once;
//   6. an fd is attached for each declared handle, and each fd's kernel
//      object is what its kind promises (check_handle_kind);
//   7. no surplus fds.
// Any failure returns kBadMessage (kDenied for rights) with a message saying
// what was wrong, and every received fd is closed (the packet is consumed).
//
// Cost on the common path (no handles): no syscalls and no allocation: the
// envelope and payload are read in place in the packet's buffer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "capabilities/error.h"
#include "capabilities/interface_registry.h"
#include "capabilities/message.h"
#include "capabilities/port.h"

namespace capsa {

// Named limits against hostile peers. Defaults are documented in
// docs/PROTOCOL.md; each is tested at the limit and one past it.
struct Limits {
  std::size_t max_packet_bytes = kDefaultMaxPacketBytes;
  std::size_t max_handles = kMaxHandlesPerMessage;  // at most kMaxHandlesPerMessage
  // Nesting depth of tables and vectors in a payload (the root is depth 1).
  std::uint32_t max_depth = 16;
  // Tables in one payload, the root included. Bounds verification work.
  std::uint32_t max_tables = 1024;
};

// Which kinds a receiver accepts: a server side accepts calls and events,
// a client side replies and errors.
enum Accept : unsigned {
  kAcceptCall = 1u << 1,
  kAcceptReply = 1u << 2,
  kAcceptError = 1u << 3,
  kAcceptEvent = 1u << 4,
};
inline constexpr unsigned kServerAccepts = kAcceptCall | kAcceptEvent;
inline constexpr unsigned kClientAccepts = kAcceptReply | kAcceptError;

// Filled as far as validation got: once the envelope verified, a server can
// address its error reply to the right call (and object).
struct EnvelopeInfo {
  bool envelope_ok = false;
  MessageKind kind = MessageKind::kCall;
  std::uint64_t call_id = 0;
  std::uint32_t method = 0;
  std::uint64_t object = 0;
  bool control = false;
};

// What a message naming an associated object (docs/PROTOCOL.md section 8)
// is checked against instead of the port's own interface and rights.
struct ObjectTarget {
  const Interface* iface = nullptr;
  Rights rights = 0;
};

// Looks up the object a message names. Only the receiver knows which
// objects exist on its port (a serving side: those it issued; a calling
// side: those its outstanding calls named), so validate() asks it.
class ObjectResolver {
 public:
  virtual ~ObjectResolver() = default;
  // Called once the envelope verified, with info.object != 0. An error is
  // the message's verdict: kNotFound (no such object on this port; a
  // serving side answers it and keeps the port) or kBadMessage.
  virtual Result<ObjectTarget> resolve(const EnvelopeInfo& info) const = 0;
};

struct ValidateOptions {
  unsigned accept = kServerAccepts;
  Rights rights = kAllRights;  // checked for calls and events only
  Limits limits;
  // nullptr: this port has no associated objects, and a message naming one
  // is a bad message.
  const ObjectResolver* objects = nullptr;
};

Result<Message> validate(Packet packet, const Interface& iface, const ValidateOptions& options,
                         EnvelopeInfo* info = nullptr);

}  // namespace capsa
