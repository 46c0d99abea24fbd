// capsa policy — "did you mean": the closest known name to a misspelt one.
//
//   did_you_mean("log.sink", {"fs.Directory", "log.Sink"})  -> "(did you mean \"log.Sink\"?)"
//   did_you_mean("open_file", {"List", "OpenFile"})         -> "(did you mean \"OpenFile\"?)"
//
// Two spellings are compared twice: as written, and folded (lower case,
// without '_', '-' and '.'), so "open_file" finds "OpenFile" and "memroy"
// finds "memory". A candidate is offered only within kMaxSuggestDistance
// edits (Damerau: a swap of two neighbours is one edit), and only when it
// is the single closest one: two equally close names are not guessed between.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace capsa::policy {

inline constexpr std::size_t kMaxSuggestDistance = 2;

// Optimal-string-alignment distance (insert, delete, substitute, swap of
// neighbours), stopping early past `limit` (returns limit + 1 then).
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit);

// The closest candidate within kMaxSuggestDistance, or "" (none, a tie, or
// `word` itself is a candidate).
std::string closest_name(std::string_view word, const std::vector<std::string>& candidates);

// " (did you mean \"X\"?)" for closest_name(), or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace capsa::policy
