// flood_worker MODE [N] — the hostile worker of the bounded-audit and
// worker-output suites: it floods the audit log, attacks its own stdout and
// stderr, and writes more output than its budget. It reports through its
// "log" grant as "key: value" lines; the tests check the supervisor's side
// (audit log, exit verdict, the operator's file), not this program's word.
//
//   violations S   socket(AF_INET) in a loop for S seconds (refused by the
//                  filter: one seccomp violation each)
//   denials N      N calls outside the "dir" grant's rights (denied each)
//   stdio-attack   ftruncate, pwrite at offset 0 and O_NONBLOCK on fd 1 and
//                  fd 2, then one line on each
//   output N       N bytes of 100-byte lines on stdout, then a line with
//                  escape sequences, a 10000-byte line and a stderr line
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

using namespace capsa;
using namespace capsa::worker;

namespace {

std::optional<LogSink> g_log;

void say(const std::string& line) {
  if (g_log) (void)g_log->write(LogSink::Level::kInfo, line);
}

std::string outcome(int rc) { return rc >= 0 ? "ok" : std::strerror(errno); }

int violations(long seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  long refused = 0;
  while (std::chrono::steady_clock::now() < end) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0) return say("violations: socket opened"), 1;
    ++refused;
  }
  say("violations: " + std::to_string(refused) + " refused, still running");
  return 0;
}

// The SDK checks rights locally; re-adopting the port with every method
// makes each call reach the supervisor, which must deny it.
int denials(Context& ctx, long n) {
  auto cap = ctx.get("dir", "fs.Directory");
  if (!cap) return say("get: failed"), 1;
  auto wide = ctx.adopt(cap->release(), "fs.Directory", "dir");
  if (!wide) return say("adopt: failed"), 1;
  auto dir = Directory::wrap(std::move(*wide));
  long denied = 0, other = 0;
  for (long i = 0; i < n; ++i) {
    auto r = dir->list("");
    if (!r && r.error().code == Errc::kDenied) {
      ++denied;
    } else {
      ++other;
    }
  }
  say("denials: denied=" + std::to_string(denied) + " other=" + std::to_string(other));
  return 0;
}

int stdio_attack() {
  for (int fd : {1, 2}) {
    const std::string name = "fd" + std::to_string(fd);
    const std::string t = outcome(::ftruncate(fd, 0));
    const std::string p = outcome(static_cast<int>(::pwrite(fd, "FORGED\n", 7, 0)));
    const int flags = ::fcntl(fd, F_GETFL);
    const std::string nb = outcome(flags < 0 ? -1 : ::fcntl(fd, F_SETFL, flags | O_NONBLOCK));
    const std::string line = "written on " + name + " after the attack\n";
    (void)!::write(fd, line.data(), line.size());
    say(name + ": ftruncate=" + t + " pwrite=" + p + " nonblock=" + nb);
  }
  return 0;
}

int output(long bytes) {
  std::string line(99, 'x');
  line += '\n';
  for (long done = 0; done + 100 <= bytes; done += 100) {
    const std::string head = "out " + std::to_string(10'000'000 + done / 100).substr(1) + " ";
    line.replace(0, head.size(), head);
    if (::write(1, line.data(), line.size()) != 100) return say("output: short write"), 1;
  }
  const char escapes[] = "title\x1b]0;pwned\x07 red\x1b[31m bell\a cr\r\n";
  (void)!::write(1, escapes, sizeof escapes - 1);
  const std::string long_line = std::string(10000, 'L') + "\n";
  (void)!::write(1, long_line.data(), long_line.size());
  (void)!::write(2, "err line\n", 9);
  say("output: done");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const long n = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 0;
  auto ctx = Context::from_fd();
  if (!ctx) return 3;
  auto log = LogSink::get(*ctx, "log");
  if (!log) return 4;
  g_log.emplace(std::move(*log));
  if (mode == "violations") return violations(n);
  if (mode == "denials") return denials(*ctx, n);
  if (mode == "stdio-attack") return stdio_attack();
  if (mode == "output") return output(n);
  say("unknown mode " + mode);
  return 2;
}
