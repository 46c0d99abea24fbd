// Word counting for the example plugins (wordcount, counter): pure
// functions over bytes, no I/O, so they are unit-tested on their own
// (count_test.cc) and the plugins only move bytes in and lines out.
//
// The word rule (also in docs/EXAMPLES.md). A text is a sequence of bytes:
//   - a letter is an ASCII byte A-Z or a-z; words are stored lowercased;
//   - an apostrophe is the byte ' (U+0027) or the UTF-8 sequence E2 80 99
//     (U+2019, the typographic apostrophe), stored as ';
//   - a word is a maximal run  letter+ (apostrophe letter+)* : an apostrophe
//     belongs to a word only with a letter right before AND right after it
//     ("don't", "o'clock"; but "'tis" -> "tis", "dogs'" -> "dogs");
//   - every other byte separates words: whitespace, digits, punctuation,
//     hyphens ("well-known" -> "well", "known"), and every other byte of
//     0x80 and above, so a non-ASCII letter splits a word ("cafe" spelled
//     with an e-acute gives "caf"). Limit: this is an ASCII rule on
//     purpose; real Unicode word breaking (UAX #29) needs tables this
//     example does not carry.
// A word never spans two texts: each add_text() starts afresh.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace capsa::examples {

// Reads the words of one text in order, by the rule above.
class WordScanner {
 public:
  explicit WordScanner(std::string_view text) noexcept : text_(text) {}
  // Stores the next word (lowercased, apostrophes as ') in `word` and
  // returns true; false once the text has no more words.
  bool next(std::string& word);

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// Every word of `text`, in order (for tests and small texts).
std::vector<std::string> words_of(std::string_view text);

struct WordCount {
  std::string word;
  std::uint64_t count = 0;
  friend bool operator==(const WordCount&, const WordCount&) = default;
};

// Word frequencies over any number of texts.
class WordFrequencies {
 public:
  void add_text(std::string_view text);
  std::uint64_t words() const noexcept { return words_; }
  std::size_t distinct() const noexcept { return counts_.size(); }
  // The `n` most frequent words (fewer if there are fewer distinct words):
  // by count, highest first; ties by word, in byte order ("'" sorts before
  // letters), so the result never depends on hash order.
  std::vector<WordCount> top(std::size_t n) const;

 private:
  std::unordered_map<std::string, std::uint64_t> counts_;
  std::uint64_t words_ = 0;
};

// What the wordcount plugin logs, one string per line:
//   "top 1: the 123" ... up to "top N: ...", then
//   "summary: files F, words W, distinct D".
// examples/texts/expected_top10.out holds these lines for the sample texts.
std::vector<std::string> report_lines(const WordFrequencies& freq, std::size_t files,
                                      std::size_t n = 10);

// What demo.WordCount.Count answers for one text.
//   words: by the rule above;
//   lines: newline bytes, plus one when the text does not end with a
//          newline (a last unterminated line counts; "" has 0 lines);
//   bytes: the text's size.
struct TextStats {
  std::uint64_t words = 0;
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const TextStats&, const TextStats&) = default;
};
TextStats text_stats(std::string_view text);

}  // namespace capsa::examples
