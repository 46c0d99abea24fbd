#include "supervisor/services/log_service.h"

#include <cstdint>
#include <optional>

#include "capabilities/interfaces/builtin.h"
#include "capabilities/interfaces/log_sink.h"

namespace capsa::supervisor::services {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Decodes one well-formed UTF-8 sequence (RFC 3629) at the start of `s`:
// its length and code point, or length 0 when the first bytes are not one.
struct Decoded {
  std::size_t length = 0;
  char32_t code_point = 0;
};

Decoded decode(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {  // 0xC0, 0xC1 only start overlong forms
    len = 2;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {  // above 0xF4 is past U+10FFFF
    len = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return {};
  }
  if (s.size() < len) return {};
  for (std::size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (!is_continuation(b)) return {};
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {};
  return {len, cp};
}

// Code points that change how a line is displayed or where it ends.
bool is_refused(char32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) ||        // C1 controls (CSI is U+009B)
         cp == 0x2028 || cp == 0x2029 ||      // line / paragraph separator
         (cp >= 0x202A && cp <= 0x202E) ||    // bidi embeddings and overrides
         (cp >= 0x2066 && cp <= 0x2069);      // bidi isolates
}

std::optional<LogLevel> level_of(std::uint8_t wire) {
  switch (wire) {
    case static_cast<std::uint8_t>(interfaces::log_sink::Level::kDebug): return LogLevel::kDebug;
    case static_cast<std::uint8_t>(interfaces::log_sink::Level::kInfo): return LogLevel::kInfo;
    case static_cast<std::uint8_t>(interfaces::log_sink::Level::kWarning): return LogLevel::kWarning;
    case static_cast<std::uint8_t>(interfaces::log_sink::Level::kError): return LogLevel::kError;
    default: return std::nullopt;
  }
}

// True when sanitize_log_text(text) would return `text` unchanged: printable
// ASCII and tab only. The common line is passed on without building a copy.
bool needs_no_sanitizing(std::string_view text) {
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c >= 0x7F) return false;
  }
  return true;
}

}  // namespace

std::string sanitize_log_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7F) {
        out += kReplacement;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    Decoded d = decode(text.substr(i));
    if (d.length == 0 || is_refused(d.code_point)) {
      // An ill-formed byte is replaced alone, so the next byte is looked
      // at afresh; a refused code point is replaced whole.
      out += kReplacement;
      i += d.length == 0 ? 1 : d.length;
      continue;
    }
    out.append(text.substr(i, d.length));
    i += d.length;
  }
  return out;
}

const MethodTable<LogService, 1>& LogService::methods() {
  static constexpr MethodTable<LogService, 1> kTable{interfaces::kLogSink,
                                                    {{{0, "Write", &LogService::write}}}};
  return kTable;
}

void LogService::write(Call call) {
  const auto req = interfaces::log_sink::read_write_request(call.request().payload().data());
  if (!req.has_text) return call.fail(Errc::kBadMessage, "log.Sink.Write: text is missing");
  if (req.text.size() > interfaces::kMaxLogTextBytes) {
    return call.fail(Errc::kBadMessage, "log.Sink.Write: text is " + std::to_string(req.text.size()) +
                                            " bytes; the limit is " +
                                            std::to_string(interfaces::kMaxLogTextBytes));
  }
  const auto level = level_of(req.level);
  if (!level) {
    return call.fail(Errc::kBadMessage, "log.Sink.Write: level " + std::to_string(req.level) +
                                            " is not Debug, Info, Warning or Error");
  }
  if (needs_no_sanitizing(req.text)) {
    call.host().worker_log(call.worker(), *level, req.text);
  } else {
    call.host().worker_log(call.worker(), *level, sanitize_log_text(req.text));
  }
  call.reply([](flatbuffers::FlatBufferBuilder& fbb) { interfaces::log_sink::build_write_reply(fbb); });
}

ServiceFactory log_service_factory() {
  ServiceFactory f;
  f.api = std::string(interfaces::kLogSink);
  f.prepare = [](const policy::Grant&) -> Result<std::shared_ptr<const void>> { return nullptr; };
  f.make = [](const policy::Grant&, const std::shared_ptr<const void>&,
              ServiceHost&) -> std::unique_ptr<ServiceObject> { return std::make_unique<LogService>(); };
  return f;
}

}  // namespace capsa::supervisor::services
