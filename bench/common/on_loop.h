// Shared by the in-process supervisor benchmarks (channel_bench,
// revoke_bench, objects_bench): run something on the supervisor's loop
// thread from the benchmark's thread, and read the heap there.
#pragma once

#include <malloc.h>

#include <cstddef>
#include <future>

#include "supervisor/reactor/reactor.h"

namespace capsa::bench {

// Runs `f` on `reactor`'s loop thread and returns its result (the loop
// must be running on another thread).
template <typename F>
auto on_loop(supervisor::Reactor& reactor, F f) -> decltype(f()) {
  std::promise<decltype(f())> p;
  reactor.post([&] { p.set_value(f()); });
  return p.get_future().get();
}

// The process's live heap (mallinfo2 uordblks: every arena), read on the
// loop thread between calls, so no call of the supervisor is half done.
inline std::size_t loop_heap(supervisor::Reactor& reactor) {
  return on_loop(reactor, [] { return mallinfo2().uordblks; });
}

}  // namespace capsa::bench
