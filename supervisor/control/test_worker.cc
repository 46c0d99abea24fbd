// control_test_worker — a real sandboxed worker for the control socket's
// tests (control_sandbox_test.cc). It takes its "log" and "dir" grants,
// says "ready", then waits until the supervisor closes the "dir" port (a
// revocation through the control socket), says what the SDK saw, and
// exits 0. It never decides anything the test asserts on its own: the
// test reads the grant table, the audit report and the audit log.
#include <poll.h>

#include <string>

#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

using namespace capsa;
using namespace capsa::worker;

int main() {
  auto ctx = Context::from_fd();
  if (!ctx) return 10;
  auto log = LogSink::get(*ctx, "log");
  if (!log) return 11;
  auto dir = Directory::get(*ctx, "dir");
  if (!dir) return 12;
  if (!log->write(LogSink::Level::kInfo, "ready")) return 13;
  // The port becomes readable (end of stream) when the supervisor closes
  // its end. Bounded so a test that never revokes still ends.
  pollfd p{dir->capability().fd().get(), POLLIN, 0};
  int n = ::poll(&p, 1, 60'000);
  std::string state(capability_state_name(dir->capability().state()));
  (void)log->write(LogSink::Level::kInfo, n == 1 ? "dir: " + state : "dir: never closed");
  return n == 1 ? 0 : 14;
}
