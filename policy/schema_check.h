// capsa policy — checking a JSON policy tree against policy.fbs.
//
// The schema is the documentation, and also the checker: the binary schema
// compiled from policy.fbs is embedded in the library and walked with
// flatbuffers reflection, so the set of fields the loader accepts cannot
// drift from the schema. Each object is matched to its table, each key to a
// field (else "unknown field ... allowed: ..."), each value to the field's
// type: string, bool, unsigned integer (or "64M" with capsa_size), enum name,
// table, or vector of those. Every mismatch is reported, none stops the walk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/diagnostic.h"
#include "policy/jsonc.h"

namespace capsa::policy {

// Appends one diagnostic per mismatch between `root` and the Policy table.
void check_against_schema(const json::Value& root, const std::string& file, Diagnostics& out);

// A JSON value as an unsigned 64-bit integer: a number without sign, fraction
// or exponent, or (if `allow_size`) a "64M"-style string. nullopt otherwise.
std::optional<std::uint64_t> to_unsigned(const json::Value& v, bool allow_size);

// Why to_unsigned() refused `v`, saying what was found and what is allowed:
// "must be an integer >= 0, found a string (\"5\"); write 5 without quotes".
std::string not_unsigned(const json::Value& v, bool allow_size);

// The value of `name` in the policy.fbs enum `enum_name` (BadMessageAction,
// ViolationFloodAction, OutputMode, ChannelMode), for the loader, which
// casts it to the model's enum (model.h): policy/model.cc static_asserts
// that each pair of enums agrees value by value.
std::optional<std::uint8_t> schema_enum_value(std::string_view enum_name, std::string_view name);

}  // namespace capsa::policy
