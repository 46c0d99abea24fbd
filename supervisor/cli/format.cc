#include "supervisor/cli/format.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "supervisor/audit/audit_log.h"

namespace capsa::cli {

Table::Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

void Table::add(std::vector<std::string> row) {
  for (auto& cell : row) cell = printable(cell);
  rows_.push_back(std::move(row));
}

std::string Table::render() const {
  std::vector<std::size_t> width(rows_[0].size(), 0);
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  fmt::memory_buffer out;
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i + 1 < row.size() && i < width.size()) {
        fmt::format_to(std::back_inserter(out), "{:<{}}  ", row[i], width[i]);
      } else {
        fmt::format_to(std::back_inserter(out), "{}", row[i]);
      }
    }
    out.push_back('\n');
  }
  return fmt::to_string(out);
}

std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    auto next = i + 1 < s.size() ? static_cast<unsigned char>(s[i + 1]) : 0;
    if (c < 0x20 || c == 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", c);
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {  // UTF-8 of U+0080..U+009F
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", next);
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string seconds(std::chrono::microseconds t) {
  return fmt::format("{:.2f}s", static_cast<double>(t.count()) / 1e6);
}

std::string mebibytes(std::uint64_t bytes) {
  return fmt::format("{:.1f}M", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

std::string age(std::chrono::nanoseconds t) {
  std::int64_t s = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(t).count());
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string rfc3339(std::int64_t unix_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(unix_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(unix_ns % 1'000'000'000);
  return supervisor::rfc3339_utc_ms(ts);
}

std::string count_of(std::size_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

}  // namespace capsa::cli
