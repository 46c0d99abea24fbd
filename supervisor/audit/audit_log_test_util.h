// Test support for the audit log's tests: a temporary directory, the log
// read back, and a strict JSON check of each line (nlohmann-json).
#pragma once

#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"

namespace capsa::supervisor::audit_testing {

using Value = nlohmann::json;

using capsa::testing::TempDir;

inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Strict JSON (RFC 8259): nlohmann checks the grammar, that text is valid
// UTF-8 and that escaped surrogates pair; the callback adds that object
// keys are unique (nlohmann would keep the last one silently).
inline std::optional<Value> parse_strict(std::string_view text) {
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  auto unique_keys = [&](int, Value::parse_event_t event, Value& parsed) {
    if (event == Value::parse_event_t::object_start) keys.emplace_back();
    if (event == Value::parse_event_t::object_end) keys.pop_back();
    if (event == Value::parse_event_t::key && !keys.back().insert(parsed.get<std::string>()).second) {
      duplicate = true;
    }
    return true;
  };
  Value v = Value::parse(text, unique_keys, /*allow_exceptions=*/false);
  if (v.is_discarded() || duplicate) return std::nullopt;
  return v;
}

inline Value parse_line(const std::string& line) {
  auto v = parse_strict(line);
  EXPECT_TRUE(v.has_value()) << "not valid JSON: " << line;
  if (!v) return {};
  EXPECT_TRUE(v->is_object()) << line;
  return *v;
}

// A field as text: a string decoded, anything else as its JSON literal.
inline std::string field(const Value& v, const std::string& key) {
  if (!v.contains(key)) return "<missing>";
  const Value& f = v.at(key);
  return f.is_string() ? f.get<std::string>() : f.dump();
}

}  // namespace capsa::supervisor::audit_testing
