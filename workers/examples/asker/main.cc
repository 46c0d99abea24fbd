// asker — the calling half of examples/pair.json.
//
// Gets the "wordcount" channel end (demo.WordCount) from its bootstrap port,
// asks the counter to count three texts (two inline, one too large for a
// message, sent as a sealed blob made with capsa::make_blob), and logs each
// answer to its "log" grant. Exits 0 once every answer came back; closing
// its end of the channel on exit is what tells the counter to stop.
//
// What it can see of the hand-over, honestly: the port came from a
// bootstrap Get, and the calls go over that port. That the supervisor is
// not on the path is the supervisor's design (it created the channel and
// kept no end); the auditor can check it in the grant table, where the
// channel ends carry the socket inodes logged here and count no calls.
//
// Exit status: 0 all answers received; 1 a capability call failed (the
// reason is on stderr); 2 bad arguments.
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/handle.h"
#include "capabilities/interfaces/builtin.h"
#include "demo_word_count_generated.h"
#include "workers/examples/asker/texts.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/plugin.h"

namespace {

using capsa::Error;
using capsa::Result;
using namespace capsa::worker;

constexpr Plugin kPlugin{"asker"};

std::string describe(const demo::CountReply& r) {
  return std::to_string(r.words()) + " words, " + std::to_string(r.lines()) + " lines, " +
         std::to_string(r.bytes()) + " bytes";
}

// Count with the text inline. The request must fit one message (64 KiB
// with its envelope): use count_blob for anything larger.
Result<capsa::Message> count_inline(Capability& wc, std::string_view text) {
  auto& fbb = wc.payload_builder();
  fbb.Finish(demo::CreateCountRequest(fbb, fbb.CreateString(text.data(), text.size())));
  return wc.call("Count", wc.payload_bytes());
}

// Count with the text in a sealed memfd: the message carries a handle, not
// the bytes, and the seals mean the counter reads exactly what we sealed.
Result<capsa::Message> count_blob(Capability& wc, std::string_view text) {
  auto blob = capsa::make_blob(std::as_bytes(std::span(text.data(), text.size())), "asker-text");
  if (!blob) return std::unexpected(std::move(blob.error()));
  std::vector<capsa::Handle> handles;
  handles.push_back(capsa::Handle{capsa::HandleKind::kBlob, std::move(*blob)});
  auto& fbb = wc.payload_builder();
  fbb.Finish(demo::CreateCountRequest(fbb, 0, /*blob: handle index*/ 0u));
  return wc.call("Count", wc.payload_bytes(), std::move(handles));
}

}  // namespace

int main(int argc, char**) {
  if (argc != 1) return kPlugin.usage("asker   (takes no arguments)");
  auto start = kPlugin.start();
  if (!start) return kExitFailed;
  auto& [ctx, log] = *start;
  auto wc = ctx.get("wordcount", capsa::interfaces::kWordCount);
  if (!wc) return kPlugin.fail("channel \"wordcount\"", wc.error());

  if (auto r = log.write(LogSink::Level::kInfo,
                          "\"wordcount\" came from the bootstrap Get as a demo.WordCount port "
                          "(socket inode " + std::to_string(capsa::socket_inode(wc->fd())) +
                              "); the Count calls below go over that port, not through the "
                              "bootstrap port");
      !r) {
    return kPlugin.fail("log", r.error());
  }

  namespace texts = capsa::examples::asker;
  const std::string big = texts::blob_text();
  struct Ask {
    std::string_view text;
    bool as_blob;
  };
  const Ask asks[] = {{texts::kShortText, false}, {texts::kPoem, false}, {big, true}};
  int n = 0;
  for (const auto& ask : asks) {
    ++n;
    auto reply = ask.as_blob ? count_blob(*wc, ask.text) : count_inline(*wc, ask.text);
    if (!reply) return kPlugin.fail("Count #" + std::to_string(n), reply.error());
    std::string line = "answer " + std::to_string(n) + " (" +
                       (ask.as_blob ? "sealed blob" : "inline text") + ", " +
                       std::to_string(ask.text.size()) +
                       " bytes sent): " + describe(*reply->payload_as<demo::CountReply>());
    if (auto r = log.write(LogSink::Level::kInfo, line); !r) return kPlugin.fail("log", r.error());
  }
  if (auto r = log.write(LogSink::Level::kInfo,
                          "done: " + std::to_string(n) + " answers; closing the channel");
      !r) {
    return kPlugin.fail("log", r.error());
  }
  return kExitOk;  // the channel end closes with the process: the counter sees it and exits
}
