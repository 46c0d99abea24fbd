// capsa worker SDK — what every plugin's main() starts with, and one way to
// say why it stopped.
//
//   constexpr capsa::worker::Plugin kPlugin{"counter"};
//
//   int main(int argc, char**) {
//     if (argc != 1) return kPlugin.usage("counter   (takes no arguments)");
//     auto start = kPlugin.start();  // the bootstrap port (fd 3) and the "log" grant
//     if (!start) return kExitFailed;  // the reason is already on stderr
//     auto& [ctx, log] = *start;
//     auto wc = ctx.get("wordcount", capsa::interfaces::kWordCount);
//     if (!wc) return kPlugin.fail("channel \"wordcount\"", wc.error());
//
// A failure is one line on stderr, "counter: channel "wordcount": not found:
// no grant named wordcount", which the supervisor hands to its logger: stderr
// is the one channel a plugin has before it holds a log grant. Header-only,
// so a plugin links nothing more than the SDK.
#pragma once

#include <cstdio>
#include <optional>
#include <string_view>
#include <utility>

#include "capabilities/error.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

namespace capsa::worker {

// Exit statuses of the example plugins (docs/EXAMPLES.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // a capability, a call or a read failed
inline constexpr int kExitUsage = 2;   // bad arguments

// The two capabilities every plugin uses first.
struct PluginStart {
  Context ctx;
  LogSink log;
};

class Plugin {
 public:
  explicit constexpr Plugin(std::string_view name) : name_(name) {}

  // "NAME: WHAT: ERROR" on stderr; returns kExitFailed.
  int fail(std::string_view what, const Error& e) const {
    std::fprintf(stderr, "%.*s: %.*s: %s\n", static_cast<int>(name_.size()), name_.data(),
                 static_cast<int>(what.size()), what.data(), e.to_string().c_str());
    return kExitFailed;
  }

  // "usage: SYNOPSIS" on stderr; returns kExitUsage.
  int usage(std::string_view synopsis) const {
    std::fprintf(stderr, "usage: %.*s\n", static_cast<int>(synopsis.size()), synopsis.data());
    return kExitUsage;
  }

  // The bootstrap port (fd 3) and the log.Sink granted as "log". On failure
  // the reason is on stderr (as fail() writes it) and the result is empty.
  std::optional<PluginStart> start() const {
    auto ctx = Context::from_fd();
    if (!ctx) {
      fail("bootstrap port (fd 3)", ctx.error());
      return std::nullopt;
    }
    auto log = LogSink::get(*ctx, "log");
    if (!log) {
      fail("grant \"log\"", log.error());
      return std::nullopt;
    }
    return PluginStart{std::move(*ctx), std::move(*log)};
  }

 private:
  std::string_view name_;
};

}  // namespace capsa::worker
