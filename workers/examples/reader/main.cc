// reader — the example plugin of examples/reader.json: shows revocation.
//
//   reader --texts NAME --file FILE
//
// Opens FILE of the fs.Directory granted as NAME as an fs.File capability
// (Directory.Open: a port the supervisor keeps serving, so it can be
// revoked; OpenFile's plain fd could not be), then reads it one line at a
// time, slowly, logging each line to the log.Sink granted as "log". When the
// operator revokes the file (or the directory it came from) the next read
// fails with `revoked`; the reader logs that and stops. A reader that
// reaches the end of the file starts again from the top, so the demo
// decides when it ends, not the file's length.
//
// Exit status: 0 stopped by a revocation; 1 another failure; 2 bad arguments.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include "workers/sdk/builtins.h"
#include "workers/sdk/plugin.h"

using namespace capsa;
using namespace capsa::worker;

namespace {

// A pace a person can follow in the demo, and the longest it runs anyway.
constexpr auto kPause = std::chrono::milliseconds(300);
constexpr int kMaxLines = 200;

constexpr Plugin kPlugin{"reader"};

}  // namespace

int main(int argc, char** argv) {
  std::string texts, file;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--texts") texts = argv[i + 1];
    if (flag == "--file") file = argv[i + 1];
  }
  if (texts.empty() || file.empty()) {
    return kPlugin.usage("reader --texts NAME --file FILE");
  }
  auto start = kPlugin.start();
  if (!start) return kExitFailed;
  auto& [ctx, log] = *start;
  auto dir = Directory::get(ctx, texts);
  if (!dir) return kPlugin.fail(texts, dir.error());
  auto f = dir->open(ctx, file);
  if (!f) return kPlugin.fail(file, f.error());
  (void)log.write(LogSink::Level::kInfo, "reading " + file + " through an fs.File capability");

  std::string pending;  // bytes read but not yet logged (no newline yet)
  std::int64_t offset = 0;
  for (int lines = 0; lines < kMaxLines;) {
    auto chunk = f->read(256, offset);
    if (!chunk) {
      if (chunk.error().code == Errc::kRevoked) {
        (void)log.write(LogSink::Level::kWarning,
                         "the file capability was revoked (" + chunk.error().message +
                             "); stopping");
        return kExitOk;
      }
      return kPlugin.fail("read", chunk.error());
    }
    if (chunk->empty()) {  // end of file: from the top again
      offset = 0;
      continue;
    }
    offset += static_cast<std::int64_t>(chunk->size());
    pending.append(reinterpret_cast<const char*>(chunk->data()), chunk->size());
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.empty()) continue;
      (void)log.write(LogSink::Level::kInfo, "line: " + line.substr(0, 100));
      ++lines;
      std::this_thread::sleep_for(kPause);
    }
  }
  (void)log.write(LogSink::Level::kInfo, "read " + std::to_string(kMaxLines) +
                                              " lines without being revoked; stopping");
  return kExitFailed;
}
