// wordcount — the example plugin of examples/wordcount.json.
//
//   wordcount --texts NAME
//
// Counts the words (rule in count.h) of every regular *.txt file in the
// fs.Directory granted as NAME, and writes the 10 most frequent words and a
// summary line to the log.Sink granted as "log":
//   top 1: the 123
//   ...
//   summary: files 3, words 1234, distinct 456
// It reaches nothing but what its bootstrap port (fd 3) gives it: the
// listing and every file come from the supervisor's fs.Directory service,
// scoped to the grant's root; the sandbox has no view of the host's files.
//
// Exit status: 0 done; 1 a capability call or a read failed (the reason is
// on stderr); 2 bad arguments.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <string_view>

#include "capabilities/sys.h"
#include "workers/examples/wordcount/count.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/plugin.h"

namespace {

using capsa::Error;
using capsa::Errc;
using capsa::Fd;
using capsa::Result;
using namespace capsa::worker;

// The largest text counted. A bigger file is skipped (with a warning in the
// log) rather than read: the plugin's memory is bounded by its policy
// (128 MiB of address space) and the whole text is held while counted.
constexpr std::size_t kMaxTextBytes = 16u << 20;

constexpr Plugin kPlugin{"wordcount"};

// Reads `fd` to its end. The file is the host's and may grow while we read
// it: past kMaxTextBytes we stop and fail instead of trusting the size the
// listing reported.
Result<std::string> read_text(const Fd& fd, std::string_view name) {
  std::string text;
  std::array<char, 64 * 1024> buf;
  for (;;) {
    auto n = capsa::sys("read", name, [&] { return ::read(fd.get(), buf.data(), buf.size()); });
    if (!n) return std::unexpected(std::move(n.error()));
    if (*n == 0) return text;
    auto got = static_cast<std::size_t>(*n);
    if (text.size() + got > kMaxTextBytes) {
      return capsa::make_error(Errc::kFailed, std::string(name) + " grew past " +
                                                  std::to_string(kMaxTextBytes) + " bytes");
    }
    text.append(buf.data(), got);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::string_view(argv[1]) != "--texts") {
    return kPlugin.usage("wordcount --texts GRANT   (GRANT: an fs.Directory grant)");
  }
  const std::string texts_grant = argv[2];

  auto start = kPlugin.start();
  if (!start) return kExitFailed;
  auto& [ctx, log] = *start;
  auto texts = Directory::get(ctx, texts_grant);
  if (!texts) return kPlugin.fail("grant \"" + texts_grant + "\"", texts.error());

  // "." is the grant's root.
  auto listing = texts->list(".");
  if (!listing) return kPlugin.fail("List of \"" + texts_grant + "\"", listing.error());

  capsa::examples::WordFrequencies freq;
  std::size_t files = 0;
  for (const auto& entry : listing->entries) {
    if (entry.type != EntryType::kRegular || !entry.name.ends_with(".txt")) continue;
    if (entry.size > kMaxTextBytes) {
      if (auto r = log.write(LogSink::Level::kWarning,
                              "skipped " + entry.name + ": " + std::to_string(entry.size) +
                                  " bytes, over the " + std::to_string(kMaxTextBytes) +
                                  "-byte limit");
          !r) {
        return kPlugin.fail("log", r.error());
      }
      continue;
    }
    // OpenFile hands over a read-only fd: the reads below do not go
    // through the supervisor (fast, but not revocable once handed over).
    auto fd = texts->open_file(entry.name);
    if (!fd) return kPlugin.fail("OpenFile " + entry.name, fd.error());
    auto text = read_text(*fd, entry.name);
    if (!text) return kPlugin.fail("read " + entry.name, text.error());
    freq.add_text(*text);
    ++files;
  }
  if (listing->truncated) {
    // No paging in fs.Directory.List yet: say so rather than report a
    // partial count as if it were whole.
    if (auto r = log.write(LogSink::Level::kWarning,
                            "the listing was truncated: files after the first " +
                                std::to_string(listing->entries.size()) + " entries not counted");
        !r) {
      return kPlugin.fail("log", r.error());
    }
  }

  for (const auto& line : capsa::examples::report_lines(freq, files)) {
    if (auto r = log.write(LogSink::Level::kInfo, line); !r) return kPlugin.fail("log", r.error());
  }
  return kExitOk;
}
