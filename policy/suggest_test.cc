// "Did you mean": distances at and past the limit, folding, ties.
#include "policy/suggest.h"

#include <gtest/gtest.h>

namespace capsa::policy {
namespace {

TEST(EditDistance, CountsInsertDeleteSubstituteAndSwap) {
  EXPECT_EQ(edit_distance("memory", "memory", 2), 0u);
  EXPECT_EQ(edit_distance("memroy", "memory", 2), 1u);   // a swap of neighbours is one edit
  EXPECT_EQ(edit_distance("memry", "memory", 2), 1u);
  EXPECT_EQ(edit_distance("mmemory", "memory", 2), 1u);
  EXPECT_EQ(edit_distance("nemorx", "memory", 2), 2u);
  EXPECT_EQ(edit_distance("nemorxx", "memory", 2), 3u);  // past the limit: limit + 1
  EXPECT_EQ(edit_distance("", "abc", 5), 3u);
  EXPECT_EQ(edit_distance("a", "abcdef", 2), 3u);        // lengths alone are too far apart
}

TEST(DidYouMean, OffersTheSingleClosestNameWithinTwoEdits) {
  const std::vector<std::string> apis{"demo.WordCount", "fs.Directory", "fs.File", "log.Sink"};
  EXPECT_EQ(did_you_mean("log.sink", apis), " (did you mean \"log.Sink\"?)");
  EXPECT_EQ(did_you_mean("fs.Directry", apis), " (did you mean \"fs.Directory\"?)");
  EXPECT_EQ(did_you_mean("open_file", {"Open", "OpenFile", "List", "Stat"}),
            " (did you mean \"OpenFile\"?)");  // folded: case, '_' and '.' do not count
  EXPECT_EQ(did_you_mean("memroy", {"memory", "cpu_seconds"}), " (did you mean \"memory\"?)");
  EXPECT_EQ(did_you_mean("Delete", {"Open", "OpenFile", "List", "Stat"}), "");  // nothing close
  EXPECT_EQ(did_you_mean("ab", {"ax", "ay"}), "");  // a tie is not guessed between
  EXPECT_EQ(did_you_mean("log.Sink", apis), "");    // a known name needs no suggestion
  EXPECT_EQ(did_you_mean("", apis), "");
}

}  // namespace
}  // namespace capsa::policy
