// counter — the serving half of examples/pair.json.
//
// Gets the "wordcount" channel end from its bootstrap port and serves
// demo.WordCount on it: each Count answers the words, lines and bytes of a
// text (rules in workers/examples/wordcount/count.h), sent inline or as a
// sealed blob. Logs one line per request to its "log" grant and exits when
// the asker closes the channel.
//
// What it can see of the hand-over, honestly: the port came from a
// bootstrap Get, and requests arrive on that port. The supervisor created
// the channel and gave each worker one end; it keeps no end of its own, so
// it does not see (nor validate) the traffic: this server validates every
// request itself (capsa::Server, against demo_word_count.fbs).
//
// Exit status: 0 the asker closed the channel; 1 a capability failed or the
// channel broke (bad message); 2 bad arguments.
#include <cstdio>
#include <string>
#include <string_view>

#include "capabilities/handle.h"
#include "capabilities/interfaces/builtin.h"
#include "demo_word_count_generated.h"
#include "workers/examples/wordcount/count.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/plugin.h"

namespace {

using capsa::Errc;
using capsa::Error;
using capsa::Result;
using namespace capsa::worker;

// The largest blob counted. The policy gives the counter 64 MiB of address
// space; a bigger blob is answered `bad message` without being mapped.
constexpr std::size_t kMaxBlobBytes = 16u << 20;

constexpr Plugin kPlugin{"counter"};

// Logs a line; a refused log write is reported on stderr and does not stop
// the service (the asker is still owed its answers).
void say(LogSink& log, std::string_view line) {
  if (auto r = log.write(LogSink::Level::kInfo, line); !r) kPlugin.fail("log", r.error());
}

std::string describe(const capsa::examples::TextStats& s) {
  return std::to_string(s.words) + " words, " + std::to_string(s.lines) + " lines, " +
         std::to_string(s.bytes) + " bytes";
}

}  // namespace

int main(int argc, char**) {
  if (argc != 1) return kPlugin.usage("counter   (takes no arguments)");
  auto start = kPlugin.start();
  if (!start) return kExitFailed;
  auto& [ctx, log] = *start;
  auto channel = ctx.get("wordcount", capsa::interfaces::kWordCount);
  if (!channel) return kPlugin.fail("channel \"wordcount\"", channel.error());

  // A channel end is handed out like any capability, but this side serves
  // it: take the raw port out of the client-side wrapper.
  capsa::Port port = channel->release();
  say(log, "serving demo.WordCount on the \"wordcount\" port from the bootstrap Get "
            "(socket inode " + std::to_string(port.inode()) +
                "); requests arrive on that port, not through the bootstrap port");

  capsa::ServerOptions options;  // a bad request closes the port (Mojo's rule)
  options.report = [&](const Error& e, const capsa::EnvelopeInfo&) {
    say(log, "refused a request: " + e.to_string());
  };
  auto server = ctx.serve(std::move(port), capsa::interfaces::kWordCount, std::move(options));
  if (!server) return kPlugin.fail("serve demo.WordCount", server.error());

  std::uint64_t served = 0;
  auto handler = [&](capsa::Message& request, capsa::Reply& reply) -> Result<void> {
    const auto* req = request.payload_as<demo::CountRequest>();
    const bool has_text = req->text() != nullptr;
    const bool has_blob = req->blob().has_value();
    if (has_text == has_blob) {
      return capsa::make_error(Errc::kBadMessage, "Count needs exactly one of text or blob");
    }
    capsa::examples::TextStats stats;
    std::string how;
    if (has_text) {
      stats = capsa::examples::text_stats(req->text()->string_view());
      how = "inline text";
    } else {
      // The validator checked it is a sealed memfd: nobody, the sender
      // included, can change it while we count.
      capsa::Fd blob = request.take_handle(*req->blob());
      auto view = capsa::BlobView::map(blob, kMaxBlobBytes);
      if (!view) return std::unexpected(std::move(view.error()));
      auto bytes = view->bytes();
      stats = capsa::examples::text_stats(
          std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      how = "sealed blob";
    }
    say(log, "served Count #" + std::to_string(++served) + " (" + how + "): " + describe(stats));
    auto& fbb = reply.builder();
    fbb.Finish(demo::CreateCountReply(fbb, stats.words, stats.lines, stats.bytes));
    return {};
  };
  if (auto r = (*server)->on("Count", handler); !r) return kPlugin.fail("serve demo.WordCount", r.error());

  // Serves until the asker closes its end (ok) or the port breaks.
  if (auto r = (*server)->run(); !r) return kPlugin.fail("the \"wordcount\" channel", r.error());
  say(log, "the asker closed the channel after " + std::to_string(served) +
                " requests; exiting");
  return kExitOk;
}
