// The texts the asker sends to the counter (examples/pair.json). In a
// header so the plugins' test can compute what the answers must be.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace capsa::examples::asker {

// Small texts travel inline, in the request's `text` field.
inline constexpr std::string_view kShortText =
    "A capability is an unforgeable reference that carries its own authority.\n";

inline constexpr std::string_view kPoem =
    "The port was given, not found;\n"
    "the worker's reach ends where its ports end.\n"
    "Close the port, and the reach is gone.";

// A text larger than one 64 KiB message: it can only travel as a blob.
inline constexpr std::string_view kBlobLine =
    "the sandbox holds no ambient authority, only the ports it was given\n";
inline constexpr std::size_t kBlobLines = 3000;

inline std::string blob_text() {
  std::string text;
  text.reserve(kBlobLine.size() * kBlobLines);
  for (std::size_t i = 0; i < kBlobLines; ++i) text += kBlobLine;
  return text;
}

}  // namespace capsa::examples::asker
