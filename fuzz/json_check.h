// capsa fuzzing — "this must be valid JSON", the property three targets
// assert. nlohmann::json refuses invalid UTF-8, control characters in
// strings and trailing bytes, so a writer that lets a hostile byte through
// unescaped fails here.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

namespace capsa::fuzz {

// The parsed value; aborts (a libFuzzer finding) with `what` and the text
// when `text` is not one JSON value.
inline nlohmann::json parse_or_abort(std::string_view text, const char* what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "%s is not valid JSON (%s):\n%.*s\n", what, e.what(),
                 static_cast<int>(text.size()), text.data());
    std::abort();
  }
}

[[noreturn]] inline void fail(const char* target, const char* what) {
  std::fprintf(stderr, "%s: %s\n", target, what);
  std::abort();
}

}  // namespace capsa::fuzz
