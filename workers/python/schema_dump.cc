// capsa-schema-dump: writes the built-in interfaces and the envelope as one
// JSON file, at build time, for SDKs in languages that have no flatbuffers
// reflection of their own (workers/python reads it; docs/PYTHON.md).
//
// Why a dump and not a hand-written table: the ordinals, the payload type
// hashes, the handle fields and the field layouts then come from the same
// .bfbs the C++ validator loads, checked by the same InterfaceRegistry
// rules, so the two SDKs cannot drift apart. Python's flatbuffers package
// has no verifier; with this file the Python SDK walks a payload against its
// table before it reads it, as validator.cc does.
//
// Usage: capsa-schema-dump OUT.json
#include <cstdio>
#include <fstream>
#include <span>
#include <string>

#include <flatbuffers/reflection.h>
#include <nlohmann/json.hpp>

#include "capabilities/interface_registry.h"
#include "capabilities/interfaces/builtin.h"
#include "capsa_bootstrap_bfbs.h"
#include "capsa_object_bfbs.h"
#include "demo_word_count_bfbs.h"
#include "envelope_bfbs.h"
#include "fs_directory_bfbs.h"
#include "fs_file_bfbs.h"
#include "log_sink_bfbs.h"

namespace {

using nlohmann::json;

// The scalar and reference types a field can have. Unions and structs are
// refused: no built-in schema uses them, and a verifier that silently
// skipped them would pass what it never looked at.
const char* type_name(reflection::BaseType t) {
  switch (t) {
    case reflection::Bool: return "bool";
    case reflection::Byte: return "byte";
    case reflection::UByte: return "ubyte";
    case reflection::Short: return "short";
    case reflection::UShort: return "ushort";
    case reflection::Int: return "int";
    case reflection::UInt: return "uint";
    case reflection::Long: return "long";
    case reflection::ULong: return "ulong";
    case reflection::Float: return "float";
    case reflection::Double: return "double";
    case reflection::String: return "string";
    case reflection::Vector: return "vector";
    case reflection::Obj: return "table";
    default: return nullptr;
  }
}

bool dump_tables(std::span<const std::uint8_t> bfbs, json& tables) {
  const reflection::Schema* schema = reflection::GetSchema(bfbs.data());
  for (const reflection::Object* o : *schema->objects()) {
    if (o->is_struct()) {
      std::fprintf(stderr, "capsa-schema-dump: %s is a struct: not supported\n", o->name()->c_str());
      return false;
    }
    json fields = json::array();
    for (const reflection::Field* f : *o->fields()) {
      const reflection::Type* t = f->type();
      const char* base = type_name(t->base_type());
      const bool vec = t->base_type() == reflection::Vector;
      const char* element = vec ? type_name(t->element()) : nullptr;
      if (base == nullptr || (vec && (element == nullptr || std::string(element) == "vector"))) {
        std::fprintf(stderr, "capsa-schema-dump: %s.%s: unsupported field type\n",
                     o->name()->c_str(), f->name()->c_str());
        return false;
      }
      json field = {{"name", f->name()->str()}, {"offset", f->offset()}, {"type", base}};
      if (vec) field["element"] = element;
      const bool refers = t->base_type() == reflection::Obj ||
                          (vec && t->element() == reflection::Obj);
      if (refers) field["table"] = schema->objects()->Get(static_cast<unsigned>(t->index()))->name()->str();
      fields.push_back(std::move(field));
    }
    tables[o->name()->str()] = json{{"fields", std::move(fields)}};
  }
  return true;
}

json dump_table_info(const capsa::TableInfo& t) {
  json handles = json::array();
  for (const auto& h : t.handle_fields) {
    handles.push_back({{"name", h.name},
                       {"offset", h.vtable_offset},
                       {"kind", std::string(capsa::handle_kind_name(h.kind))},
                       {"vector", h.is_vector}});
  }
  return {{"table", t.name}, {"type_hash", t.type_hash}, {"handles", std::move(handles)}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: capsa-schema-dump OUT.json\n");
    return 2;
  }
  capsa::InterfaceRegistry registry;
  if (auto r = capsa::interfaces::register_builtin(registry); !r) {
    std::fprintf(stderr, "capsa-schema-dump: %s\n", r.error().to_string().c_str());
    return 1;
  }
  json tables = json::object();
  for (auto bfbs : {capsa::schemas::envelope_bfbs(), capsa::schemas::capsa_bootstrap_bfbs(),
                    capsa::schemas::capsa_object_bfbs(), capsa::schemas::fs_directory_bfbs(), capsa::schemas::fs_file_bfbs(),
                    capsa::schemas::log_sink_bfbs(), capsa::schemas::demo_word_count_bfbs()}) {
    if (!dump_tables(bfbs, tables)) return 1;
  }
  json interfaces = json::object();
  for (const capsa::Interface* i : registry.all()) {
    json methods = json::array();
    for (const capsa::Method& m : i->methods()) {
      methods.push_back({{"name", m.name},
                         {"ordinal", m.ordinal},
                         {"request", dump_table_info(m.request)},
                         {"reply", dump_table_info(m.reply)}});
    }
    interfaces[std::string(i->name())] = json{{"methods", std::move(methods)}};
  }
  std::ofstream out(argv[1]);
  out << json{{"tables", tables}, {"interfaces", interfaces}}.dump(1) << "\n";
  if (!out) {
    std::fprintf(stderr, "capsa-schema-dump: cannot write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
