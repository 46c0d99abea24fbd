// The word rule of count.h, edge by edge, and the sample texts' expected
// report (examples/texts/expected_top10.out) recomputed from the texts.
#include "workers/examples/wordcount/count.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace capsa::examples {
namespace {

using Words = std::vector<std::string>;

TEST(WordRule, LettersAreLowercasedAndEverythingElseSeparates) {
  EXPECT_EQ(words_of("The Sandbox, THE port;the\tend.\n"),
            (Words{"the", "sandbox", "the", "port", "the", "end"}));
  EXPECT_EQ(words_of("well-known e-mail"), (Words{"well", "known", "e", "mail"}));
}

TEST(WordRule, ApostropheJoinsOnlyBetweenLetters) {
  EXPECT_EQ(words_of("don't o'clock rock'n'roll"), (Words{"don't", "o'clock", "rock'n'roll"}));
  EXPECT_EQ(words_of("'tis the dogs' bone"), (Words{"tis", "the", "dogs", "bone"}));
  EXPECT_EQ(words_of("a''b"), (Words{"a", "b"}));          // two in a row split
  EXPECT_EQ(words_of("end'"), (Words{"end"}));             // at the end of the text
  EXPECT_EQ(words_of("'"), Words{});
  EXPECT_EQ(words_of("x ' y"), (Words{"x", "y"}));
  EXPECT_EQ(words_of("it's 90's"), (Words{"it's", "s"}));  // a digit before: no letter
}

TEST(WordRule, TypographicApostropheCountsAsApostrophe) {
  // U+2019 in UTF-8 is E2 80 99; the word stores a plain '.
  EXPECT_EQ(words_of("don\xE2\x80\x99t"), (Words{"don't"}));
  EXPECT_EQ(words_of("dogs\xE2\x80\x99 \xE2\x80\x99tis"), (Words{"dogs", "tis"}));
  // A truncated sequence at the end of the text is two separator bytes.
  EXPECT_EQ(words_of("don\xE2\x80"), (Words{"don"}));
  EXPECT_EQ(words_of("don\xE2\x80t"), (Words{"don", "t"}));
  // U+2018 (E2 80 98), the opening quote, is not an apostrophe.
  EXPECT_EQ(words_of("don\xE2\x80\x98t"), (Words{"don", "t"}));
}

TEST(WordRule, DigitsSeparate) {
  EXPECT_EQ(words_of("route66 is 4 u2"), (Words{"route", "is", "u"}));
  EXPECT_EQ(words_of("2024 1,000 3.14"), Words{});
}

TEST(WordRule, NonAsciiBytesSeparate) {
  // "cafe" with an e-acute (C3 A9) and "naive" with an i-diaeresis (C3 AF).
  EXPECT_EQ(words_of("caf\xC3\xA9 na\xC3\xAFve"), (Words{"caf", "na", "ve"}));
  // Invalid UTF-8 is just bytes: no crash, no word.
  EXPECT_EQ(words_of("\xFF\xFE\x80 ok \xC0"), (Words{"ok"}));
  // A NUL byte in the middle is a separator too (texts are not C strings).
  EXPECT_EQ(words_of(std::string_view("a\0b", 3)), (Words{"a", "b"}));
}

TEST(WordRule, EmptyAndBlankTextsHaveNoWords) {
  EXPECT_EQ(words_of(""), Words{});
  EXPECT_EQ(words_of(" \n\t\r\n "), Words{});
  WordFrequencies f;
  f.add_text("");
  EXPECT_EQ(f.words(), 0u);
  EXPECT_EQ(f.distinct(), 0u);
  EXPECT_TRUE(f.top(10).empty());
}

TEST(WordFrequencies, AWordNeverSpansTwoTexts) {
  WordFrequencies f;
  f.add_text("sand");
  f.add_text("box");
  EXPECT_EQ(f.words(), 2u);
  EXPECT_EQ(f.top(10), (std::vector<WordCount>{{"box", 1}, {"sand", 1}}));
}

TEST(WordFrequencies, TopIsByCountThenAlphabetical) {
  WordFrequencies f;
  f.add_text("b a c b a d b e");
  f.add_text("D d");
  // b 3, d 3 (ties: b first), a 2, then c and e with 1 each (c first).
  EXPECT_EQ(f.top(4), (std::vector<WordCount>{{"b", 3}, {"d", 3}, {"a", 2}, {"c", 1}}));
  EXPECT_EQ(f.top(100).size(), 5u);  // fewer distinct words than asked
  EXPECT_EQ(f.words(), 10u);
  EXPECT_EQ(f.distinct(), 5u);
}

TEST(WordFrequencies, TiesUseByteOrderApostropheFirst) {
  WordFrequencies f;
  f.add_text("it's its it it's its it");
  EXPECT_EQ(f.top(3), (std::vector<WordCount>{{"it", 2}, {"it's", 2}, {"its", 2}}));
}

TEST(WordFrequencies, ReportLines) {
  WordFrequencies f;
  f.add_text("the cat and the hat");
  EXPECT_EQ(report_lines(f, 1, 2),
            (std::vector<std::string>{"top 1: the 2", "top 2: and 1",
                                      "summary: files 1, words 5, distinct 4"}));
  EXPECT_EQ(report_lines(WordFrequencies{}, 0),
            (std::vector<std::string>{"summary: files 0, words 0, distinct 0"}));
}

TEST(TextStats, WordsLinesBytes) {
  EXPECT_EQ(text_stats(""), (TextStats{0, 0, 0}));
  EXPECT_EQ(text_stats("\n"), (TextStats{0, 1, 1}));
  EXPECT_EQ(text_stats("one two"), (TextStats{2, 1, 7}));          // unterminated line
  EXPECT_EQ(text_stats("one two\n"), (TextStats{2, 1, 8}));
  EXPECT_EQ(text_stats("a\n\nb's 42\nc"), (TextStats{3, 4, 11}));
}

// The sample texts, read the way the wordcount plugin reads them: regular
// *.txt files of examples/texts/, in name order.
TEST(SampleTexts, ExpectedReportIsWhatTheCounterComputes) {
  const std::filesystem::path dir = CAPSA_EXAMPLE_TEXTS_DIR;
  std::vector<std::filesystem::path> texts;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") texts.push_back(e.path());
  }
  std::sort(texts.begin(), texts.end());
  ASSERT_GE(texts.size(), 2u) << "sample texts missing in " << dir;
  WordFrequencies f;
  for (const auto& p : texts) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    f.add_text(ss.str());
  }
  std::string computed;
  for (const auto& line : report_lines(f, texts.size())) computed += line + "\n";

  std::ifstream in(dir / "expected_top10.out", std::ios::binary);
  ASSERT_TRUE(in) << "missing " << (dir / "expected_top10.out");
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), computed)
      << "regenerate with: wordcount-report examples/texts/*.txt "
         "> examples/texts/expected_top10.out";
}

}  // namespace
}  // namespace capsa::examples
