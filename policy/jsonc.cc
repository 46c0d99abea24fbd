#include "policy/jsonc.h"

#include "capabilities/sys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <cstring>
#include <unordered_map>
#include <system_error>
#include <utility>

namespace capsa::policy::json {
namespace {

class Parser {
 public:
  Parser(std::string_view text, const std::string& file, Diagnostics* duplicates)
      : text_(text), file_(file), duplicates_(duplicates) {}

  std::expected<Value, Diagnostic> run() {
    skip_space();
    if (failed_) return std::unexpected(std::move(error_));
    Value root;
    parse_value(root, 0);
    if (!failed_) {
      skip_space();
      if (!failed_ && pos_ < text_.size()) fail("unexpected text after the top-level value");
    }
    if (failed_) return std::unexpected(std::move(error_));
    return root;
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }

  // Records the first error only; callers unwind by checking failed_.
  void fail(std::string message) { fail_at(line_, column_, std::move(message)); }
  void fail_at(std::uint32_t line, std::uint32_t column, std::string message) {
    if (failed_) return;
    failed_ = true;
    error_ = Diagnostic{SourceLoc{file_, line, column}, std::move(message)};
  }

  void skip_space() {
    while (!at_end() && !failed_) {
      char c = peek();
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        advance();
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
        while (!at_end() && peek() != '\n') advance();
      } else if (c == '/' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '*') {
        std::uint32_t l = line_, col = column_;
        advance();
        advance();
        for (;;) {
          if (at_end()) return fail_at(l, col, "unterminated /* comment");
          if (peek() == '*' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '/') {
            advance();
            advance();
            break;
          }
          advance();
        }
      } else {
        return;
      }
    }
  }

  void parse_value(Value& out, std::size_t depth) {
    if (++values_ > kMaxValues) {
      return fail("too many values (limit " + std::to_string(kMaxValues) + ")");
    }
    out.line = line_;
    out.column = column_;
    if (at_end()) return fail("expected a value, found the end of the file");
    char c = peek();
    if (c == '{' || c == '[') {
      // Depth is bounded so that hostile nesting cannot exhaust the stack.
      if (depth >= kMaxDepth) {
        return fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
      }
      if (c == '{') return parse_object(out, depth + 1);
      return parse_array(out, depth + 1);
    }
    if (c == '"') {
      out.kind = Kind::kString;
      return parse_string(out.text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(out);
    if (literal("true")) {
      out.kind = Kind::kBool;
      out.boolean = true;
      return;
    }
    if (literal("false")) {
      out.kind = Kind::kBool;
      return;
    }
    if (literal("null")) {
      out.kind = Kind::kNull;
      return;
    }
    fail("expected a value (object, array, string, number, true, false or null)");
  }

  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    for (std::size_t i = 0; i < word.size(); ++i) advance();
    return true;
  }

  void parse_object(Value& out, std::size_t depth) {
    out.kind = Kind::kObject;
    std::unordered_map<std::string, std::uint32_t> first_line;  // key -> line
    advance();  // {
    skip_space();
    if (failed_) return;
    if (peek() == '}') return advance();
    for (;;) {
      skip_space();
      if (failed_) return;
      if (peek() != '"') {
        return fail(peek() == '}' ? "trailing comma before '}' is not allowed"
                                  : "expected a quoted key");
      }
      Member m;
      m.line = line_;
      m.column = column_;
      parse_string(m.key);
      if (failed_) return;
      // A hash per object: a linear scan is quadratic in the members of one
      // object, and kMaxValues allows 100,000 of them.
      bool duplicate = false;
      if (auto [it, fresh] = first_line.try_emplace(m.key, m.line); !fresh) {
        std::string message =
            "duplicate key \"" + m.key + "\" (first at line " + std::to_string(it->second) + ")";
        if (duplicates_ == nullptr) return fail_at(m.line, m.column, std::move(message));
        duplicates_->push_back({SourceLoc{file_, m.line, m.column}, std::move(message)});
        duplicate = true;
      }
      skip_space();
      if (failed_) return;
      if (peek() != ':') return fail("expected ':' after the key");
      advance();
      skip_space();
      if (failed_) return;
      parse_value(m.value, depth);
      if (failed_) return;
      if (!duplicate) out.members.push_back(std::move(m));
      skip_space();
      if (failed_) return;
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == '}') return advance();
      return fail("expected ',' or '}' in an object");
    }
  }

  void parse_array(Value& out, std::size_t depth) {
    out.kind = Kind::kArray;
    advance();  // [
    skip_space();
    if (failed_) return;
    if (peek() == ']') return advance();
    for (;;) {
      skip_space();
      if (failed_) return;
      if (peek() == ']') return fail("trailing comma before ']' is not allowed");
      Value item;
      parse_value(item, depth);
      if (failed_) return;
      out.items.push_back(std::move(item));
      skip_space();
      if (failed_) return;
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() == ']') return advance();
      return fail("expected ',' or ']' in an array");
    }
  }

  void parse_number(Value& out) {
    out.kind = Kind::kNumber;
    std::size_t start = pos_;
    auto digits = [&] {
      std::size_t n = 0;
      while (!at_end() && peek() >= '0' && peek() <= '9') {
        advance();
        ++n;
      }
      return n;
    };
    if (peek() == '-') advance();
    if (peek() == '0') {
      advance();
      if (peek() >= '0' && peek() <= '9') return fail("numbers must not have leading zeros");
    } else if (digits() == 0) {
      return fail("expected digits in a number");
    }
    if (peek() == '.') {
      advance();
      if (digits() == 0) return fail("expected digits after '.' in a number");
    }
    if (peek() == 'e' || peek() == 'E') {
      advance();
      if (peek() == '+' || peek() == '-') advance();
      if (digits() == 0) return fail("expected digits in a number's exponent");
    }
    out.text.assign(text_.substr(start, pos_ - start));
  }

  // Reads 4 hex digits of a \u escape; -1 on error (already reported).
  long hex4() {
    long v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = peek();
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (at_end() || d < 0) {
        fail("expected 4 hex digits in a \\u escape");
        return -1;
      }
      v = v * 16 + d;
      advance();
    }
    return v;
  }

  static void put_utf8(std::string& s, unsigned long cp) {
    auto byte = [&](unsigned long b) { s.push_back(static_cast<char>(static_cast<unsigned char>(b))); };
    if (cp < 0x80) {
      byte(cp);
    } else if (cp < 0x800) {
      byte(0xC0 | (cp >> 6));
      byte(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      byte(0xE0 | (cp >> 12));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    } else {
      byte(0xF0 | (cp >> 18));
      byte(0x80 | ((cp >> 12) & 0x3F));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    }
  }

  void parse_string(std::string& out) {
    std::uint32_t l = line_, col = column_;
    advance();  // opening quote
    for (;;) {
      if (at_end()) return fail_at(l, col, "unterminated string");
      char c = peek();
      if (c == '"') return advance();
      if (static_cast<unsigned char>(c) < 0x20) {
        return fail("control character in a string (write it as an escape)");
      }
      if (c != '\\') {
        out.push_back(c);
        advance();
        continue;
      }
      advance();
      if (at_end()) return fail_at(l, col, "unterminated string");
      char e = peek();
      advance();
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          long cp = hex4();
          if (cp < 0) return;
          if (cp == 0) return fail("\\u0000 is not allowed in a string (it would truncate a path)");
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("unpaired low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (!literal("\\u")) return fail("unpaired high surrogate in a \\u escape");
            long lo = hex4();
            if (lo < 0) return;
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("invalid low surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, static_cast<unsigned long>(cp));
          break;
        }
        default:
          return fail("unknown escape in a string; allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX");
      }
    }
  }

  std::string_view text_;
  const std::string& file_;
  Diagnostics* duplicates_;  // null: a duplicate key is a syntax error
  std::size_t pos_ = 0;
  std::uint32_t line_ = 1;
  std::uint32_t column_ = 1;
  std::size_t values_ = 0;
  bool failed_ = false;
  Diagnostic error_;
};

}  // namespace

std::string_view kind_name(Kind k) noexcept {
  switch (k) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "a boolean";
    case Kind::kNumber: return "a number";
    case Kind::kString: return "a string";
    case Kind::kArray: return "an array";
    case Kind::kObject: return "an object";
  }
  return "?";
}

namespace {

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // U+D800..U+DFFF, surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

// A policy is UTF-8 text. Anything else is refused before parsing, at the
// first bad byte (line and column counted in bytes, as the parser counts):
// names and paths from it end up in the audit log, `capsa check --json` and
// the terminal, which must not be handed bytes that are not text.
std::optional<Diagnostic> check_utf8(std::string_view text, const std::string& file) {
  std::uint32_t line = 1, column = 1;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i);
    if (n == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[i]));
      return Diagnostic{SourceLoc{file, line, column},
                        std::string("invalid UTF-8 (byte ") + hex +
                            "): a policy must be UTF-8 text"};
    }
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      column += static_cast<std::uint32_t>(n);
    }
    i += n;
  }
  return std::nullopt;
}

}  // namespace

std::expected<Value, Diagnostic> parse(std::string_view text, const std::string& file,
                                       Diagnostics* duplicates) {
  if (text.size() > kMaxInputBytes) {
    return std::unexpected(Diagnostic{SourceLoc{file, 1, 1},
                                      "file is larger than " + std::to_string(kMaxInputBytes) +
                                          " bytes"});
  }
  if (auto bad = check_utf8(text, file)) return std::unexpected(std::move(*bad));
  return Parser(text, file, duplicates).run();
}

std::expected<std::string, std::string> read_file(const std::string& path) {
  // Opened once, non-blocking, and checked on that fd: a path swapped for a
  // FIFO or a device between a check and an open could otherwise block
  // `capsa check` forever. Only regular files are read.
  auto fd = sys_fd("open", path, [&] { return ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY); });
  if (!fd) return std::unexpected(path + ": " + std::strerror(fd.error().sys_errno));
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return std::unexpected(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return std::unexpected(path + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxInputBytes) {
    return std::unexpected(path + ": larger than " + std::to_string(kMaxInputBytes) + " bytes");
  }
  // Sized from fstat, plus one byte to notice a file that grew meanwhile.
  std::string data(static_cast<std::size_t>(st.st_size) + 1, '\0');
  std::size_t done = 0;
  while (done < data.size()) {
    auto n = sys("read", path, [&] { return ::read(fd->get(), data.data() + done, data.size() - done); });
    if (!n) return std::unexpected(path + ": read error: " + std::strerror(n.error().sys_errno));
    if (*n == 0) break;
    done += static_cast<std::size_t>(*n);
  }
  if (done > kMaxInputBytes) {
    return std::unexpected(path + ": larger than " + std::to_string(kMaxInputBytes) + " bytes");
  }
  data.resize(done);
  return data;
}

}  // namespace capsa::policy::json
