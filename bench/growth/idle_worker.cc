// The sandboxed side of growth_bench: an idle worker. It takes its one
// grant, says "ready" through it, and then waits on its bootstrap port
// until the supervisor goes (end of stream) or kills it.
#include <unistd.h>

#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

using namespace capsa::worker;

int main() {
  auto ctx = Context::from_fd();
  if (!ctx) return 3;
  auto log = LogSink::get(*ctx, "log");
  if (!log) return 4;
  if (!log->write(LogSink::Level::kInfo, "ready")) return 5;
  char byte;
  while (::read(kBootstrapFd, &byte, 1) > 0) {
  }
  return 0;
}
