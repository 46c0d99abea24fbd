#include "capabilities/interface_registry.h"

#include <flatbuffers/reflection.h>
#include <flatbuffers/reflection_generated.h>

#include <algorithm>
#include <charconv>

namespace capsa {
namespace {

using KeyValues = flatbuffers::Vector<flatbuffers::Offset<reflection::KeyValue>>;

const reflection::KeyValue* find_attribute(const KeyValues* attrs, std::string_view key) {
  if (attrs == nullptr) return nullptr;
  for (const reflection::KeyValue* kv : *attrs) {
    if (kv->key() != nullptr && kv->key()->string_view() == key) return kv;
  }
  return nullptr;
}

std::string_view value_of(const reflection::KeyValue* kv) {
  return kv->value() == nullptr ? std::string_view{} : kv->value()->string_view();
}

std::unexpected<Error> load_error(std::string message) {
  return make_error(Errc::kInvalidArgument, "schema: " + std::move(message));
}

Result<HandleKind> parse_kind(std::string_view s) {
  if (s == "port") return HandleKind::kPort;
  if (s == "file") return HandleKind::kFile;
  if (s == "blob") return HandleKind::kBlob;
  return load_error("capsa_handle must be \"port\", \"file\" or \"blob\", not \"" +
                    std::string(s) + "\"");
}

// The handle fields of one table, with the load-time rules applied.
Result<std::vector<HandleField>> handle_fields_of(const reflection::Object& obj) {
  std::vector<HandleField> out;
  for (const reflection::Field* f : *obj.fields()) {
    const reflection::KeyValue* kv = find_attribute(f->attributes(), "capsa_handle");
    if (kv == nullptr) continue;
    std::string where = obj.name()->str() + "." + f->name()->str();
    auto kind = parse_kind(value_of(kv));
    if (!kind) return load_error(where + ": " + kind.error().message);
    HandleField h{f->name()->str(), f->offset(), *kind, false};
    auto base = f->type()->base_type();
    if (base == reflection::Vector && f->type()->element() == reflection::UInt) {
      h.is_vector = true;
    } else if (base == reflection::UInt) {
      // A non-optional uint32 with value 0 is not written by the builder
      // (defaults are omitted), so handle index 0 would silently vanish.
      if (!f->optional()) {
        return load_error(where + ": a handle field must be declared `uint32 = null`");
      }
    } else {
      return load_error(where + ": capsa_handle is only allowed on uint32 or [uint32] fields");
    }
    out.push_back(std::move(h));
  }
  return out;
}

Result<TableInfo> table_info(const reflection::Object* obj) {
  if (obj == nullptr) return load_error("rpc method without a request or reply table");
  if (obj->is_struct()) return load_error(obj->name()->str() + " is a struct, not a table");
  TableInfo t;
  t.object = obj;
  t.name = obj->name()->str();
  t.type_hash = payload_type_hash(t.name);
  CAPSA_ASSIGN_OR_RETURN(t.handle_fields, handle_fields_of(*obj));
  return t;
}

// Refuses a table with handle fields that appears inside another table: the
// validator accounts for handles at the payload's root only.
Result<void> check_no_nested_handles(const reflection::Schema& schema) {
  const auto* objects = schema.objects();
  for (const reflection::Object* obj : *objects) {
    for (const reflection::Field* f : *obj->fields()) {
      auto base = f->type()->base_type();
      bool refers = base == reflection::Obj ||
                    (base == reflection::Vector && f->type()->element() == reflection::Obj);
      if (!refers) continue;
      auto index = f->type()->index();
      if (index < 0 || static_cast<flatbuffers::uoffset_t>(index) >= objects->size()) {
        return load_error(obj->name()->str() + "." + f->name()->str() + ": bad type index");
      }
      const reflection::Object* inner = objects->Get(static_cast<flatbuffers::uoffset_t>(index));
      for (const reflection::Field* g : *inner->fields()) {
        if (find_attribute(g->attributes(), "capsa_handle") != nullptr) {
          return load_error(obj->name()->str() + "." + f->name()->str() + " nests " +
                            inner->name()->str() +
                            ", which has handle fields; handles are only allowed in a "
                            "method's request or reply table itself");
        }
      }
    }
  }
  return {};
}

Result<std::uint32_t> parse_ordinal(const reflection::RPCCall& call, std::string_view where) {
  const reflection::KeyValue* kv = find_attribute(call.attributes(), "capsa_method");
  if (kv == nullptr) {
    return load_error(std::string(where) + ": missing (capsa_method: \"N\") ordinal");
  }
  std::string_view s = value_of(kv);
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty() ||
      n >= kMaxMethodsPerInterface) {
    return load_error(std::string(where) + ": capsa_method must be a number from 0 to " +
                      std::to_string(kMaxMethodsPerInterface - 1) + ", not \"" +
                      std::string(s) + "\"");
  }
  return n;
}

}  // namespace

struct InterfaceLoader {
  static Result<std::unique_ptr<Interface>> load(const reflection::Service& svc,
                                                 const reflection::Schema& schema);
};

Result<std::unique_ptr<Interface>> InterfaceLoader::load(const reflection::Service& svc,
                                                         const reflection::Schema& schema) {
  std::string name = svc.name()->str();
  std::vector<Method> methods;
  if (svc.calls() != nullptr) {
    for (const reflection::RPCCall* call : *svc.calls()) {
      std::string where = name + "." + call->name()->str();
      CAPSA_ASSIGN_OR_RETURN(const auto ordinal, parse_ordinal(*call, where));
      auto req = table_info(call->request());
      if (!req) return load_error(where + ": " + req.error().message);
      auto rep = table_info(call->response());
      if (!rep) return load_error(where + ": " + rep.error().message);
      methods.push_back(Method{call->name()->str(), ordinal, std::move(*req), std::move(*rep)});
    }
  }
  if (methods.empty()) return load_error(name + " has no methods");
  std::sort(methods.begin(), methods.end(),
            [](const Method& a, const Method& b) { return a.ordinal < b.ordinal; });
  auto iface = std::make_unique<Interface>();
  iface->name_ = std::move(name);
  iface->schema_ = &schema;
  iface->by_ordinal_.fill(-1);
  for (std::size_t i = 0; i < methods.size(); ++i) {
    auto ord = methods[i].ordinal;
    if (iface->by_ordinal_[ord] >= 0) {
      return load_error(iface->name_ + ": methods " +
                        methods[static_cast<std::size_t>(iface->by_ordinal_[ord])].name +
                        " and " + methods[i].name + " share ordinal " + std::to_string(ord));
    }
    iface->by_ordinal_[ord] = static_cast<std::int16_t>(i);
    iface->defined_ |= right_of(ord);
  }
  iface->methods_ = std::move(methods);
  return iface;
}

const Method* Interface::method(std::string_view name) const noexcept {
  for (const Method& m : methods_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

InterfaceRegistry::~InterfaceRegistry() = default;

Result<void> InterfaceRegistry::load(std::span<const std::uint8_t> bfbs) {
  // Our own copy: the schema must outlive every Interface pointing into it,
  // and operator new gives the alignment flatbuffers reads need.
  auto buf = std::make_unique<std::vector<std::uint8_t>>(bfbs.begin(), bfbs.end());
  flatbuffers::Verifier verifier(buf->data(), buf->size());
  // VerifySchemaBuffer checks the "BFBS" identifier within bounds (the bare
  // SchemaBufferHasIdentifier would read past a buffer shorter than 8 bytes).
  if (buf->empty() || !reflection::VerifySchemaBuffer(verifier)) {
    return load_error("not a valid binary schema (.bfbs)");
  }
  const reflection::Schema* schema = reflection::GetSchema(buf->data());
  if (schema->services() == nullptr || schema->services()->size() == 0) {
    return load_error("the binary schema defines no rpc_service");
  }
  CAPSA_TRY(check_no_nested_handles(*schema));
  std::vector<std::unique_ptr<Interface>> loaded;
  for (const reflection::Service* svc : *schema->services()) {
    CAPSA_ASSIGN_OR_RETURN(auto iface, InterfaceLoader::load(*svc, *schema));
    if (find(iface->name()) != nullptr) {
      return load_error("interface " + std::string(iface->name()) + " is already loaded");
    }
    loaded.push_back(std::move(iface));
  }
  buffers_.push_back(std::move(buf));
  for (auto& i : loaded) interfaces_.push_back(std::move(i));
  return {};
}

const Interface* InterfaceRegistry::find(std::string_view name) const noexcept {
  for (const auto& i : interfaces_) {
    if (i->name() == name) return i.get();
  }
  return nullptr;
}

}  // namespace capsa
