// capsa — the one place the command line formats text for people: column
// tables, durations, byte sizes, times. `capsa run`'s summary and `capsa
// audit`'s tables both go through it, so they read alike.
//
// Everything a cell shows may come from a worker (its name is the
// operator's, but an exit text, a path in an error or a grant name in a
// report is not ours): Table::add makes every cell printable, so nothing a
// worker controls can drive the operator's terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace capsa::cli {

// A table whose columns are as wide as their widest cell, two spaces
// apart; the last column is not padded (no trailing blanks).
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  // A row of as many cells as the header; each cell is made printable().
  void add(std::vector<std::string> row);
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `s` with the C0 controls, DEL and the C1 controls (U+0080..U+009F, which
// some terminals obey) shown as \xNN.
std::string printable(std::string_view s);

// "0.25s": CPU and wall times, to the hundredth.
std::string seconds(std::chrono::microseconds t);
// "12.5M": memory, in mebibytes to a tenth.
std::string mebibytes(std::uint64_t bytes);
// "12s", "5m02s", "3h04m", "2d03h": an age, to its two largest units.
// Negative ages (clocks that moved) show as "0s".
std::string age(std::chrono::nanoseconds t);
// "2024-05-01T12:00:00.123Z": the audit log's time format (RFC 3339, UTC,
// milliseconds), for a time in nanoseconds since the Unix epoch.
std::string rfc3339(std::int64_t unix_ns);
// "1 worker", "3 workers".
std::string count_of(std::size_t n, std::string_view noun);

}  // namespace capsa::cli
