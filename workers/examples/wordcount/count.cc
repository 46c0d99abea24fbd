#include "workers/examples/wordcount/count.h"

#include <algorithm>

namespace capsa::examples {
namespace {

bool is_letter(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Length of the apostrophe at `pos` (1 for ', 3 for U+2019 in UTF-8), or 0.
std::size_t apostrophe_at(std::string_view text, std::size_t pos) noexcept {
  if (text[pos] == '\'') return 1;
  if (text.substr(pos, 3) == "\xE2\x80\x99") return 3;
  return 0;
}

}  // namespace

bool WordScanner::next(std::string& word) {
  word.clear();
  while (pos_ < text_.size() && !is_letter(text_[pos_])) ++pos_;
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (is_letter(c)) {
      word.push_back(lower(c));
      ++pos_;
      continue;
    }
    // Inside a word (it has a letter already): an apostrophe joins only
    // when a letter follows it.
    std::size_t len = apostrophe_at(text_, pos_);
    if (len == 0 || pos_ + len >= text_.size() || !is_letter(text_[pos_ + len])) break;
    word.push_back('\'');
    pos_ += len;
  }
  return !word.empty();
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> out;
  WordScanner scan(text);
  std::string w;
  while (scan.next(w)) out.push_back(w);
  return out;
}

void WordFrequencies::add_text(std::string_view text) {
  WordScanner scan(text);
  std::string w;
  while (scan.next(w)) {
    ++counts_[w];
    ++words_;
  }
}

std::vector<WordCount> WordFrequencies::top(std::size_t n) const {
  std::vector<WordCount> all;
  all.reserve(counts_.size());
  for (const auto& [word, count] : counts_) all.push_back({word, count});
  auto first = [](const WordCount& a, const WordCount& b) {
    return a.count != b.count ? a.count > b.count : a.word < b.word;
  };
  n = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(), first);
  all.resize(n);
  return all;
}

std::vector<std::string> report_lines(const WordFrequencies& freq, std::size_t files,
                                      std::size_t n) {
  std::vector<std::string> lines;
  std::size_t rank = 0;
  for (const auto& [word, count] : freq.top(n)) {
    lines.push_back("top " + std::to_string(++rank) + ": " + word + " " + std::to_string(count));
  }
  lines.push_back("summary: files " + std::to_string(files) + ", words " +
                  std::to_string(freq.words()) + ", distinct " + std::to_string(freq.distinct()));
  return lines;
}

TextStats text_stats(std::string_view text) {
  TextStats s;
  s.bytes = text.size();
  s.lines = static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n'));
  if (!text.empty() && text.back() != '\n') ++s.lines;
  WordScanner scan(text);
  std::string w;
  while (scan.next(w)) ++s.words;
  return s;
}

}  // namespace capsa::examples
