// capsa policy — a strict JSON-with-comments reader that keeps positions.
//
// Why our own reader (docs/POLICY.md, "Why not flatbuffers' JSON parser"):
// flatbuffers 2.0.8's parser stops at the first error and forgets where each
// value was, but a policy report must name file:line:column for every
// semantic error ("unknown API" on line 12) and list all of them. This reader
// keeps the line and column of every value and key; policy/schema_check.h
// then checks the tree against policy.fbs through flatbuffers reflection.
//
// Grammar: RFC 8259 JSON plus `//` and `/* */` comments. Strict otherwise:
// keys must be quoted strings, no trailing commas, no duplicate keys, no NaN,
// no control characters or "\u0000" inside strings (a path with an embedded
// NUL would be silently truncated by the kernel).
//
// Hostile input: the reader never crashes, recurses at most kMaxDepth levels
// and refuses inputs over kMaxInputBytes or with more than kMaxValues values,
// so memory stays bounded (~kMaxValues * sizeof(Value)). A syntax error stops
// the parse: after one, positions of later errors would be guesses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "policy/diagnostic.h"

namespace capsa::policy::json {

inline constexpr std::size_t kMaxInputBytes = 1 << 20;  // 1 MiB
inline constexpr std::size_t kMaxDepth = 32;
inline constexpr std::size_t kMaxValues = 100'000;

enum class Kind : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

std::string_view kind_name(Kind k) noexcept;  // "a string", "an object", ...

struct Member;

struct Value {
  Kind kind = Kind::kNull;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  bool boolean = false;
  // A string's decoded contents, or a number's literal text (converted by
  // whoever knows the target type, so range errors are precise).
  std::string text;
  std::vector<Value> items;     // kArray
  std::vector<Member> members;  // kObject, in file order
};

struct Member {
  std::string key;
  std::uint32_t line = 0;  // position of the key
  std::uint32_t column = 0;
  Value value;
};

// Parses `text`. Diagnostics name `file` and the position of the problem.
// A duplicate key stops the parse, unless `duplicates` is given: then each
// is appended there, its value is parsed and dropped (the first one stays),
// and the parse goes on, so the errors after it are found too. A duplicate
// key leaves every later position exact, unlike a syntax error.
std::expected<Value, Diagnostic> parse(std::string_view text, const std::string& file,
                                       Diagnostics* duplicates = nullptr);

// Reads a whole file of at most kMaxInputBytes. Errors say which path and why
// (missing, unreadable, too large, not a regular file).
std::expected<std::string, std::string> read_file(const std::string& path);

}  // namespace capsa::policy::json
