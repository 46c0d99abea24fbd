// capsa — log.Sink payloads without log_sink_generated.h.
//
// Why: the API is named `log.Sink` (policy/builtin_apis.cc), so flatc puts
// its C++ types in `namespace log`, which cannot coexist with ::log(double)
// from <cmath> (and flatbuffers.h includes <cmath>): the generated header
// does not compile in any real translation unit. These helpers build and
// read the two tables by field id instead. workers/sdk tests send them
// through the validator both ways (a wrong field id would fail there).
#pragma once

#include <cstdint>
#include <string_view>

#include <flatbuffers/flatbuffers.h>

namespace capsa::interfaces::log_sink {

// Values of log.Level in log_sink.fbs.
enum class Level : std::uint8_t { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// vtable offsets of WriteRequest's fields: id 0 (level), id 1 (text).
inline constexpr flatbuffers::voffset_t kLevelField = 4;
inline constexpr flatbuffers::voffset_t kTextField = 6;

// Finishes `fbb` with a log.WriteRequest.
inline void build_write_request(flatbuffers::FlatBufferBuilder& fbb, Level level,
                                std::string_view text) {
  auto s = fbb.CreateString(text.data(), text.size());
  auto start = fbb.StartTable();
  fbb.AddOffset(kTextField, s);
  fbb.AddElement<std::uint8_t>(kLevelField, static_cast<std::uint8_t>(level), 1);
  fbb.Finish(flatbuffers::Offset<flatbuffers::Table>(fbb.EndTable(start)));
}

// Finishes `fbb` with an (empty) log.WriteReply.
inline void build_write_reply(flatbuffers::FlatBufferBuilder& fbb) {
  fbb.Finish(flatbuffers::Offset<flatbuffers::Table>(fbb.EndTable(fbb.StartTable())));
}

struct WriteRequest {
  std::uint8_t level = 1;  // not range-checked: the schema's enum is not enforced on the wire
  bool has_text = false;
  std::string_view text;
};

// Reads a payload the validator already verified against log.WriteRequest.
inline WriteRequest read_write_request(const std::uint8_t* payload) {
  const auto* t = flatbuffers::GetRoot<flatbuffers::Table>(payload);
  WriteRequest r;
  r.level = t->GetField<std::uint8_t>(kLevelField, 1);
  if (const auto* s = t->GetPointer<const flatbuffers::String*>(kTextField)) {
    r.has_text = true;
    r.text = std::string_view(s->c_str(), s->size());
  }
  return r;
}

}  // namespace capsa::interfaces::log_sink
