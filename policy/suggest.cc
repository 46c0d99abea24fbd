#include "policy/suggest.h"

#include <algorithm>

namespace capsa::policy {
namespace {

std::string folded(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '_' || c == '-' || c == '.') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return out;
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit) {
  const std::size_t n = a.size(), m = b.size();
  if ((n > m ? n - m : m - n) > limit) return limit + 1;
  // Three rows of the classic table: the one before the previous is needed
  // for a swap of neighbours.
  std::vector<std::size_t> before(m + 1), prev(m + 1), cur(m + 1);
  for (std::size_t j = 0; j <= m; ++j) prev[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    std::size_t row_min = cur[0];
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], before[j - 2] + 1);
      }
      row_min = std::min(row_min, cur[j]);
    }
    if (row_min > limit) return limit + 1;
    std::swap(before, prev);
    std::swap(prev, cur);
  }
  return std::min(prev[m], limit + 1);
}

std::string closest_name(std::string_view word, const std::vector<std::string>& candidates) {
  if (word.empty()) return {};
  const std::string fw = folded(word);
  std::size_t best = kMaxSuggestDistance + 1;
  const std::string* found = nullptr;
  bool tie = false;
  for (const std::string& c : candidates) {
    if (c == word) return {};
    std::size_t d = std::min(edit_distance(word, c, kMaxSuggestDistance),
                             edit_distance(fw, folded(c), kMaxSuggestDistance));
    if (d < best) {
      best = d;
      found = &c;
      tie = false;
    } else if (d == best && found != nullptr && *found != c) {
      tie = true;
    }
  }
  return found == nullptr || tie ? std::string() : *found;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string c = closest_name(word, candidates);
  return c.empty() ? std::string() : " (did you mean \"" + c + "\"?)";
}

}  // namespace capsa::policy
