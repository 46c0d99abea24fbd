// The sandboxed side of sup_bench: N log.Sink Write calls through the whole
// stack (SDK, port, supervisor validation, rights, rate, reply), timed
// inside the worker, reported as one last log line "elapsed_ns=X n=N".
#include <time.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

using namespace capsa::worker;

namespace {

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 100000;
  auto ctx = Context::from_fd();
  if (!ctx) return 3;
  auto log = LogSink::get(*ctx, "log");
  if (!log) return 4;
  for (int i = 0; i < 2000; ++i) {  // warm-up: page faults, caches
    if (!log->write(LogSink::Level::kDebug, "ping")) return 5;
  }
  const std::uint64_t t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    if (!log->write(LogSink::Level::kDebug, "ping")) return 6;
  }
  const std::uint64_t t1 = now_ns();
  (void)log->write(LogSink::Level::kInfo,
                   "elapsed_ns=" + std::to_string(t1 - t0) + " n=" + std::to_string(n));
  return 0;
}
