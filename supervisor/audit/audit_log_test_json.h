// Test helper for audit_log_test.cc: a small strict JSON parser (RFC 8259),
// so the tests check that every audit line is valid JSON in-process and can
// read the decoded fields back. Stricter than the RFC where it helps: text
// must be valid UTF-8, escaped surrogates must pair, object keys are unique.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace capsa::supervisor::testjson {

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = Kind::kNull;
  bool boolean = false;
  std::string text;  // the number's literal, or the decoded string
  std::vector<Value> items;
  std::map<std::string, Value> members;

  const Value* get(const std::string& key) const {
    auto it = members.find(key);
    return it == members.end() ? nullptr : &it->second;
  }
};

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::optional<Value> document() {
    ws();
    auto v = value(0);
    ws();
    if (!v || i_ != s_.size()) return std::nullopt;
    return v;
  }

 private:
  bool eof() const { return i_ >= s_.size(); }
  unsigned char peek() const { return eof() ? 0 : static_cast<unsigned char>(s_[i_]); }
  void ws() {
    while (!eof() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++i_;
  }
  bool lit(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  std::optional<Value> value(int depth) {
    if (depth > 64) return std::nullopt;
    Value v;
    unsigned char c = peek();
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      auto str = string();
      if (!str) return std::nullopt;
      v.kind = Value::Kind::kString;
      v.text = std::move(*str);
      return v;
    }
    if (lit("true")) { v.kind = Value::Kind::kBool; v.boolean = true; return v; }
    if (lit("false")) { v.kind = Value::Kind::kBool; return v; }
    if (lit("null")) return v;
    return number();
  }

  std::optional<Value> number() {
    std::size_t start = i_;
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++i_;
    } else {
      return std::nullopt;
    }
    if (peek() == '.') {
      ++i_;
      if (!(peek() >= '0' && peek() <= '9')) return std::nullopt;
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!(peek() >= '0' && peek() <= '9')) return std::nullopt;
      while (peek() >= '0' && peek() <= '9') ++i_;
    }
    Value v;
    v.kind = Value::Kind::kNumber;
    v.text = std::string(s_.substr(start, i_ - start));
    return v;
  }

  std::optional<unsigned> hex4() {
    if (s_.size() - i_ < 4) return std::nullopt;
    unsigned code = 0;
    for (int k = 0; k < 4; ++k) {
      unsigned char h = peek();
      ++i_;
      code <<= 4;
      if (h >= '0' && h <= '9') code |= h - '0';
      else if (h >= 'a' && h <= 'f') code |= h - 'a' + 10u;
      else if (h >= 'A' && h <= 'F') code |= h - 'A' + 10u;
      else return std::nullopt;
    }
    return code;
  }

  static void put_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // Length of a valid UTF-8 sequence at i_ (RFC 3629), 0 if invalid.
  std::size_t utf8_len() const {
    auto at = [&](std::size_t k) -> unsigned { return k < s_.size() ? static_cast<unsigned char>(s_[k]) : 0u; };
    auto cont = [&](std::size_t k) { return (at(k) & 0xc0) == 0x80; };
    unsigned c = at(i_);
    if (c >= 0xc2 && c <= 0xdf) return cont(i_ + 1) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
      if (!cont(i_ + 1) || !cont(i_ + 2)) return 0;
      if ((c == 0xe0 && at(i_ + 1) < 0xa0) || (c == 0xed && at(i_ + 1) >= 0xa0)) return 0;
      return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
      if (!cont(i_ + 1) || !cont(i_ + 2) || !cont(i_ + 3)) return 0;
      if ((c == 0xf0 && at(i_ + 1) < 0x90) || (c == 0xf4 && at(i_ + 1) >= 0x90)) return 0;
      return 4;
    }
    return 0;
  }

  std::optional<std::string> string() {
    ++i_;  // opening quote
    std::string out;
    for (;;) {
      if (eof()) return std::nullopt;
      unsigned char c = peek();
      if (c == '"') { ++i_; return out; }
      if (c < 0x20) return std::nullopt;  // raw control character
      if (c == '\\') {
        ++i_;
        unsigned char e = peek();
        ++i_;
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            auto cp = hex4();
            if (!cp) return std::nullopt;
            if (*cp >= 0xdc00 && *cp <= 0xdfff) return std::nullopt;  // lone low surrogate
            if (*cp >= 0xd800 && *cp <= 0xdbff) {
              if (!lit("\\u")) return std::nullopt;
              auto low = hex4();
              if (!low || *low < 0xdc00 || *low > 0xdfff) return std::nullopt;
              *cp = 0x10000 + ((*cp - 0xd800) << 10) + (*low - 0xdc00);
            }
            put_utf8(out, *cp);
            break;
          }
          default: return std::nullopt;
        }
        continue;
      }
      if (c < 0x80) { out += static_cast<char>(c); ++i_; continue; }
      std::size_t n = utf8_len();
      if (n == 0) return std::nullopt;
      out.append(s_.substr(i_, n));
      i_ += n;
    }
  }

  std::optional<Value> array(int depth) {
    ++i_;
    Value v;
    v.kind = Value::Kind::kArray;
    ws();
    if (peek() == ']') { ++i_; return v; }
    for (;;) {
      ws();
      auto item = value(depth + 1);
      if (!item) return std::nullopt;
      v.items.push_back(std::move(*item));
      ws();
      if (peek() == ']') { ++i_; return v; }
      if (peek() != ',') return std::nullopt;
      ++i_;
    }
  }

  std::optional<Value> object(int depth) {
    ++i_;
    Value v;
    v.kind = Value::Kind::kObject;
    ws();
    if (peek() == '}') { ++i_; return v; }
    for (;;) {
      ws();
      if (peek() != '"') return std::nullopt;
      auto key = string();
      if (!key) return std::nullopt;
      ws();
      if (peek() != ':') return std::nullopt;
      ++i_;
      ws();
      auto member = value(depth + 1);
      if (!member) return std::nullopt;
      if (!v.members.emplace(std::move(*key), std::move(*member)).second) return std::nullopt;
      ws();
      if (peek() == '}') { ++i_; return v; }
      if (peek() != ',') return std::nullopt;
      ++i_;
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

inline std::optional<Value> parse(std::string_view s) { return Parser(s).document(); }

}  // namespace capsa::supervisor::testjson
