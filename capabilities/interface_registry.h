// capsa — the interface registry: what the validator knows about each API.
//
// An interface is a flatbuffers `rpc_service` in a .fbs file, compiled to a
// binary schema (.bfbs) at build time and embedded in the program
// (cmake/CapsaFlatbuffers.cmake). The registry loads those embedded schemas
// and checks them once, at start-up, so that the validator can trust them on
// every message. Adding an API means adding a .fbs file and an
// implementation; nothing here is written per API.
//
// Schema conventions (docs/PROTOCOL.md, "Interfaces"):
//   attribute "capsa_method";   // on every rpc method: its ordinal, "0".."63"
//   attribute "capsa_handle";   // on a handle field: "port", "file" or "blob"
//   rpc_service Directory {
//     Open(OpenRequest): OpenReply (capsa_method: "0");
//   }
//   table OpenReply { file: uint32 = null (capsa_handle: "file"); }
//
// Why an explicit ordinal: flatc 2.0.8 stores a service's calls sorted by
// name in the .bfbs, so declaration order is lost, and a name-derived order
// would renumber methods whenever one is added. An explicit ordinal is stable
// and is what travels on the wire.
//
// Load-time rules (each violation is an error, never a silently ignored
// field): the .bfbs passes reflection::VerifySchemaBuffer; every method has a
// unique ordinal below kMaxMethodsPerInterface; a handle field is an optional
// `uint32 = null` (so index 0 is not dropped as a default) or a `[uint32]`;
// its kind is one of the three names; a table with handle fields is used only
// as a method's request or reply, never nested in another table (the
// validator looks for handles at the root of the payload only, so a nested
// one could not be accounted for).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/handle.h"

namespace reflection {
struct Schema;
struct Object;
}  // namespace reflection

namespace capsa {

// A rights mask has one bit per method ordinal, so an interface has at most
// 64 methods (ordinals 0..63).
inline constexpr std::size_t kMaxMethodsPerInterface = 64;
using Rights = std::uint64_t;
inline constexpr Rights kAllRights = ~Rights{0};
constexpr Rights right_of(std::uint32_t ordinal) noexcept {
  return ordinal < kMaxMethodsPerInterface ? Rights{1} << ordinal : Rights{0};
}

// 32-bit FNV-1a of a fully qualified table name: the envelope's payload_type.
constexpr std::uint32_t payload_type_hash(std::string_view name) noexcept {
  std::uint32_t h = 2166136261u;
  for (char c : name) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

struct HandleField {
  std::string name;
  std::uint16_t vtable_offset = 0;  // where the field lives in its table
  HandleKind kind = HandleKind::kPort;
  bool is_vector = false;  // [uint32]: each element is a handle index
};

struct TableInfo {
  const reflection::Object* object = nullptr;  // points into the registry's copy of the .bfbs
  std::string name;                            // fully qualified: "capsa.test.EchoRequest"
  std::uint32_t type_hash = 0;                 // payload_type_hash(name)
  std::vector<HandleField> handle_fields;
};

struct Method {
  std::string name;
  std::uint32_t ordinal = 0;
  TableInfo request;
  TableInfo reply;
};

class Interface {
 public:
  // Fully qualified service name, e.g. "capsa.test.Echo".
  std::string_view name() const noexcept { return name_; }
  // nullptr when no method has this ordinal.
  const Method* method(std::uint32_t ordinal) const noexcept {
    if (ordinal >= kMaxMethodsPerInterface) return nullptr;
    auto i = by_ordinal_[ordinal];
    return i < 0 ? nullptr : &methods_[static_cast<std::size_t>(i)];
  }
  const Method* method(std::string_view name) const noexcept;
  // Sorted by ordinal.
  std::span<const Method> methods() const noexcept { return methods_; }
  // The bits of the methods that exist.
  Rights defined_rights() const noexcept { return defined_; }
  const reflection::Schema& schema() const noexcept { return *schema_; }

 private:
  friend struct InterfaceLoader;  // interface_registry.cc builds and checks one
  std::string name_;
  std::vector<Method> methods_;
  std::array<std::int16_t, kMaxMethodsPerInterface> by_ordinal_{};
  Rights defined_ = 0;
  const reflection::Schema* schema_ = nullptr;
};

// Owns loaded schemas and their interfaces. Not a singleton: build one at
// start-up and pass it (or its interfaces) to whoever validates. Interfaces
// keep their address for the registry's lifetime.
class InterfaceRegistry {
 public:
  InterfaceRegistry() = default;
  InterfaceRegistry(const InterfaceRegistry&) = delete;
  InterfaceRegistry& operator=(const InterfaceRegistry&) = delete;
  InterfaceRegistry(InterfaceRegistry&&) noexcept = default;
  InterfaceRegistry& operator=(InterfaceRegistry&&) noexcept = default;
  ~InterfaceRegistry();

  // Copies `bfbs` and loads every rpc_service in it. kInvalidArgument naming
  // the service, method or field at fault; on error nothing is added.
  Result<void> load(std::span<const std::uint8_t> bfbs);

  // nullptr when not loaded.
  const Interface* find(std::string_view name) const noexcept;
  std::size_t size() const noexcept { return interfaces_.size(); }
  // Every loaded interface, in load order.
  std::vector<const Interface*> all() const {
    std::vector<const Interface*> out;
    out.reserve(interfaces_.size());
    for (const auto& i : interfaces_) out.push_back(i.get());
    return out;
  }

 private:
  std::vector<std::unique_ptr<std::vector<std::uint8_t>>> buffers_;
  std::vector<std::unique_ptr<Interface>> interfaces_;
};

}  // namespace capsa
