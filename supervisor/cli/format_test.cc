// The one text formatter of the command line: tables, durations, sizes,
// times, and what it does with bytes that could drive a terminal.
#include "supervisor/cli/format.h"

#include <gtest/gtest.h>

namespace capsa::cli {
namespace {

using namespace std::chrono_literals;

TEST(CliTable, ColumnsAreAsWideAsTheirWidestCellTwoSpacesApart) {
  Table t({"WORKER", "STATUS", "CALLS"});
  t.add({"wordcount", "exited 0", "12"});
  t.add({"w", "killed (signal 9)", "0"});
  EXPECT_EQ(t.render(),
            "WORKER     STATUS             CALLS\n"
            "wordcount  exited 0           12\n"
            "w          killed (signal 9)  0\n");
}

TEST(CliTable, AHeaderAloneIsOneLineAndTheLastColumnIsNotPadded) {
  EXPECT_EQ(Table({"ID", "KERNEL"}).render(), "ID  KERNEL\n");
  Table t({"A", "B"});
  t.add({"x", "a long last cell"});
  t.add({"y", ""});
  EXPECT_EQ(t.render(), "A  B\nx  a long last cell\ny  \n");
}

TEST(CliTable, CellsCannotDriveTheTerminal) {
  Table t({"NAME"});
  t.add({"w\x1b[31m\n\x7f\xc2\x9b" "caf\xc3\xa9"});
  EXPECT_EQ(t.render(), "NAME\nw\\x1b[31m\\x0a\\x7f\\x9bcaf\xc3\xa9\n");
}

TEST(CliFormat, PrintableEscapesC0DelAndC1AndKeepsTheRest) {
  EXPECT_EQ(printable(""), "");
  EXPECT_EQ(printable("plain /path ok"), "plain /path ok");
  EXPECT_EQ(printable(std::string("\0\x1f", 2)), "\\x00\\x1f");
  EXPECT_EQ(printable("\xc2\x80\xc2\x9f\xc2\xa0"), "\\x80\\x9f\xc2\xa0");  // U+00A0 is printable
  EXPECT_EQ(printable("\xc2"), "\xc2");  // a cut sequence is no C1 control
}

TEST(CliFormat, SecondsAndMebibytes) {
  EXPECT_EQ(seconds(0us), "0.00s");
  EXPECT_EQ(seconds(1'234'567us), "1.23s");
  EXPECT_EQ(seconds(59'999'999us), "60.00s");
  EXPECT_EQ(mebibytes(0), "0.0M");
  EXPECT_EQ(mebibytes(3 * 1024 * 1024 + 512 * 1024), "3.5M");
}

TEST(CliFormat, AgeShowsItsTwoLargestUnits) {
  EXPECT_EQ(age(-5s), "0s");
  EXPECT_EQ(age(999ms), "0s");
  EXPECT_EQ(age(59s), "59s");
  EXPECT_EQ(age(60s), "1m00s");
  EXPECT_EQ(age(5min + 2s), "5m02s");
  EXPECT_EQ(age(3h + 4min + 59s), "3h04m");
  EXPECT_EQ(age(24h), "1d00h");
  EXPECT_EQ(age(50h), "2d02h");
}

TEST(CliFormat, TimesAreTheAuditLogsRfc3339) {
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339(1'714'564'800'999'999'999), "2024-05-01T12:00:00.999Z");
}

TEST(CliFormat, CountOf) {
  EXPECT_EQ(count_of(0, "worker"), "0 workers");
  EXPECT_EQ(count_of(1, "live grant"), "1 live grant");
  EXPECT_EQ(count_of(2, "worker"), "2 workers");
}

}  // namespace
}  // namespace capsa::cli
