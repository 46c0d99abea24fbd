// Test helper: a strict parser of the Prometheus text exposition format
// 0.0.4, as much of it as capsa writes (metrics.h). Every line must be a
// HELP, a TYPE or a sample; names must be valid; label values may use only
// the format's escapes; every sample's family must have had its HELP and
// TYPE first; histograms must be complete (buckets ascending and
// cumulative, +Inf last and equal to _count, a _sum). Failures are gtest
// failures naming the line.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace capsa::supervisor::testing {

struct ParsedMetrics {
  // "name{a=\"x\",b=\"y\"}" (labels as written, unescaped values re-quoted
  // in sorted label order) -> value.
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> counter, gauge, histogram
  std::set<std::string> helps;
  std::size_t lines = 0;

  bool has(const std::string& key) const { return samples.count(key) != 0; }
  // The value, or -1 (failing the test) when missing.
  double at(const std::string& key) const {
    auto it = samples.find(key);
    EXPECT_NE(it, samples.end()) << "no sample " << key;
    return it == samples.end() ? -1 : it->second;
  }
};

namespace metrics_parse {

inline bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Parses `{a="x",b="y"}` starting at s[pos] == '{'; fills labels, returns
// the position after '}', or npos.
inline std::size_t labels(std::string_view s, std::size_t pos,
                          std::vector<std::pair<std::string, std::string>>& out) {
  ++pos;
  if (pos < s.size() && s[pos] == '}') return pos + 1;
  for (;;) {
    std::size_t eq = s.find('=', pos);
    if (eq == std::string_view::npos) return eq;
    std::string name(s.substr(pos, eq - pos));
    if (!valid_name(name) || name.starts_with("__")) return std::string_view::npos;
    pos = eq + 1;
    if (pos >= s.size() || s[pos] != '"') return std::string_view::npos;
    ++pos;
    std::string value;
    for (;;) {
      if (pos >= s.size()) return std::string_view::npos;
      char c = s[pos++];
      if (c == '"') break;
      if (c == '\n') return std::string_view::npos;
      if (c == '\\') {
        if (pos >= s.size()) return std::string_view::npos;
        char e = s[pos++];
        if (e == '\\') value += '\\';
        else if (e == '"') value += '"';
        else if (e == 'n') value += '\n';
        else return std::string_view::npos;
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x20) return std::string_view::npos;
      value += c;
    }
    for (const auto& l : out) {
      if (l.first == name) return std::string_view::npos;  // duplicate label
    }
    out.emplace_back(std::move(name), std::move(value));
    if (pos >= s.size()) return std::string_view::npos;
    if (s[pos] == '}') return pos + 1;
    if (s[pos] != ',') return std::string_view::npos;
    ++pos;
  }
}

inline std::string key(const std::string& name, std::vector<std::pair<std::string, std::string>> l) {
  std::sort(l.begin(), l.end());
  std::string k = name;
  if (l.empty()) return k;
  k += '{';
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (i > 0) k += ',';
    k += l[i].first + "=\"" + l[i].second + "\"";
  }
  return k + '}';
}

inline bool value(std::string_view v, double& out) {
  if (v == "+Inf") return out = std::numeric_limits<double>::infinity(), true;
  if (v.empty()) return false;
  std::string s(v);
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

}  // namespace metrics_parse

// Parses `text` into `m` (ASSERT-style failures stop at the line at fault:
// check ::testing::Test::HasFatalFailure() after).
inline void parse_metrics(const std::string& text, ParsedMetrics& m) {
  namespace mp = metrics_parse;
  EXPECT_TRUE(!text.empty() && text.back() == '\n') << "the text must end with a newline";
  // Histogram series: family + labels without le -> (le, cumulative count) in order.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    ++m.lines;
    SCOPED_TRACE("line " + std::to_string(m.lines) + ": " + line);
    ASSERT_FALSE(line.empty());
    if (line.starts_with("# HELP ")) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      EXPECT_TRUE(mp::valid_name(name));
      EXPECT_GT(rest.size(), name.size() + 1) << "empty HELP";
      EXPECT_TRUE(m.helps.insert(name).second) << "second HELP";
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::istringstream f(line.substr(7));
      std::string name, type, extra;
      f >> name >> type;
      EXPECT_FALSE(f >> extra);
      EXPECT_TRUE(mp::valid_name(name));
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << type;
      EXPECT_TRUE(m.helps.count(name)) << "TYPE before HELP";
      EXPECT_TRUE(m.types.emplace(name, type).second) << "second TYPE";
      continue;
    }
    ASSERT_NE(line[0], '#') << "a comment capsa does not write";
    std::size_t end_name = line.find_first_of("{ ");
    ASSERT_NE(end_name, std::string::npos);
    std::string name = line.substr(0, end_name);
    ASSERT_TRUE(mp::valid_name(name));
    std::vector<std::pair<std::string, std::string>> l;
    std::size_t pos = end_name;
    if (line[pos] == '{') {
      pos = mp::labels(line, pos, l);
      ASSERT_NE(pos, std::string::npos) << "bad labels";
    }
    ASSERT_LT(pos, line.size());
    ASSERT_EQ(line[pos], ' ');
    std::string v = line.substr(pos + 1);
    ASSERT_EQ(v.find(' '), std::string::npos) << "a timestamp or junk after the value";
    double d = 0;
    ASSERT_TRUE(mp::value(v, d)) << v;
    // Its family: the name itself, or a histogram's name before its suffix.
    std::string family = name;
    std::string suffix;
    for (const char* s : {"_bucket", "_sum", "_count"}) {
      if (name.ends_with(s) && m.types.count(name.substr(0, name.size() - std::strlen(s))) &&
          m.types.at(name.substr(0, name.size() - std::strlen(s))) == "histogram") {
        family = name.substr(0, name.size() - std::strlen(s));
        suffix = s;
      }
    }
    ASSERT_TRUE(m.types.count(family)) << "sample before its TYPE";
    const std::string& type = m.types.at(family);
    if (type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << "a counter's name ends in _total";
    }
    if (type == "histogram") {
      ASSERT_FALSE(suffix.empty()) << "a histogram sample without _bucket/_sum/_count";
      std::vector<std::pair<std::string, std::string>> no_le;
      double le = 0;
      bool has_le = false;
      for (const auto& p : l) {
        if (p.first == "le") {
          ASSERT_TRUE(mp::value(p.second, le)) << p.second;
          has_le = true;
        } else {
          no_le.push_back(p);
        }
      }
      const std::string series = mp::key(family, no_le);
      EXPECT_EQ(has_le, suffix == "_bucket");
      if (suffix == "_bucket") {
        auto& b = buckets[series];
        if (!b.empty()) {
          EXPECT_GT(le, b.back().first) << "buckets not ascending";
          EXPECT_GE(d, b.back().second) << "buckets not cumulative";
        }
        b.emplace_back(le, d);
      }
      if (suffix == "_count") {
        auto& b = buckets[series];
        ASSERT_FALSE(b.empty()) << "_count before the buckets";
        EXPECT_TRUE(std::isinf(b.back().first)) << "the last bucket is not +Inf";
        EXPECT_EQ(b.back().second, d) << "+Inf bucket != _count";
      }
    }
    EXPECT_GE(d, 0);
    EXPECT_TRUE(m.samples.emplace(mp::key(name, l), d).second) << "duplicate sample";
  }
  // Every histogram series has its _sum and _count.
  for (const auto& [series, b] : buckets) {
    std::string family = series.substr(0, series.find('{'));
    std::string labels = series.substr(family.size());
    EXPECT_TRUE(m.samples.count(family + "_sum" + labels)) << series;
    EXPECT_TRUE(m.samples.count(family + "_count" + labels)) << series;
  }
}

}  // namespace capsa::supervisor::testing
