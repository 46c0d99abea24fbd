// it_worker MODE [ARG] — the worker of the supervisor integration suite.
//
// A real sandboxed worker that uses the worker SDK (as a plugin would) and
// reports what it saw through its "log" grant, one line per fact, as
// "key: value". Some modes are hostile: they flood the audit log
// (violations, denials), attack their own stdout and stderr
// (stdio-attack), write past their output budget (output), or fill
// memfds (memfd). The test
// reads those lines from the supervisor's log output and the audit log; it
// never trusts this program's exit alone.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "capabilities/error.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

using namespace capsa;
using namespace capsa::worker;

namespace {

std::optional<LogSink> g_log;

void say(const std::string& line) {
  if (g_log) (void)g_log->write(LogSink::Level::kInfo, line);
}

std::string code(const Error& e) { return std::string(errc_name(e.code)); }

template <typename T>
std::string outcome(const Result<T>& r) {
  return r ? "ok" : code(r.error());
}

int ungranted(Context& ctx) {
  auto cap = ctx.get("secrets", "fs.Directory");
  say("secrets: " + outcome(cap));
  return 0;
}

// The SDK refuses a method outside the rights locally; a hostile worker
// does not use the SDK's check. Re-adopting the port allows every method
// locally, so the call reaches the supervisor, which must deny it.
int outside_rights(Context& ctx) {
  auto cap = ctx.get("dir", "fs.Directory");
  if (!cap) return say("get: " + code(cap.error())), 1;
  auto wide = ctx.adopt(cap->release(), "fs.Directory", "dir");
  if (!wide) return say("adopt: " + code(wide.error())), 1;
  auto dir = Directory::wrap(std::move(*wide));
  auto listed = dir->list("");
  say("List: " + outcome(listed));
  return 0;
}

// Makes the call `attempt` every 2 ms until it fails, and says how:
// "<what>: <code>". False if it never failed within about 40 s.
template <typename F>
bool until_refused(const std::string& what, F attempt) {
  for (int i = 0; i < 20000; ++i) {
    auto r = attempt();
    if (!r) {
      say(what + ": " + code(r.error()));
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  say(what + ": never revoked");
  return false;
}

int wait_revoke(Context& ctx) {
  auto dir = Directory::get(ctx, "dir");
  if (!dir) return say("get: " + code(dir.error())), 1;
  say("ready");
  if (!until_refused("dir", [&] { return dir->list(""); })) return 1;
  auto again = Directory::get(ctx, "dir");
  say("get again: " + outcome(again));
  return 0;
}

int file_revoke(Context& ctx) {
  auto dir = Directory::get(ctx, "dir");
  if (!dir) return say("get: " + code(dir.error())), 1;
  auto file = dir->open(ctx, "a.txt");
  if (!file) return say("open: " + code(file.error())), 1;
  say("ready");
  return until_refused("file", [&] { return file->read(1, 0); }) ? 0 : 1;
}

int crash(Context& ctx) {
  auto dir = Directory::get(ctx, "dir");
  if (!dir) return say("get: " + code(dir.error())), 1;
  auto file = dir->open(ctx, "a.txt");
  say(std::string("ready: ") + (file ? "ok" : code(file.error())));
  std::abort();
}

int cycles(Context& ctx, long n) {
  auto dir = Directory::get(ctx, "dir");
  if (!dir) return say("get: " + code(dir.error())), 1;
  for (long i = 1; i <= n; ++i) {
    auto file = dir->open(ctx, "a.txt");
    if (!file) return say("cycle " + std::to_string(i) + ": " + code(file.error())), 1;
    // Closed at the end of the iteration: the grant is released.
    if (i == n / 10) say("checkpoint: first");
  }
  say("checkpoint: last");
  return 0;
}

int junk(Context&) {
  // Not an envelope: the policy says kill.
  auto port = g_log->capability().release();
  const char bytes[] = "\x01\x02garbage";
  (void)port.send(std::as_bytes(std::span(bytes)));
  ::pause();
  return 0;
}

int flood(Context&) {
  // As fast as the port allows; the grant's rate turns most away.
  long ok = 0, overloaded = 0, other = 0;
  for (int i = 0; i < 3000; ++i) {
    auto r = g_log->write(LogSink::Level::kDebug, "flood");
    if (r) {
      ++ok;
    } else if (r.error().code == Errc::kOverloaded) {
      ++overloaded;
    } else {
      ++other;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  say("flood: ok=" + std::to_string(ok) + " overloaded=" + std::to_string(overloaded) +
      " other=" + std::to_string(other));
  return 0;
}

int calls(Context& ctx, long n) {
  auto dir = Directory::get(ctx, "dir");
  if (!dir) return say("get: " + code(dir.error())), 1;
  long ok = 0, failed = 0;
  for (long i = 0; i < n; ++i) {
    if (dir->list("")) {
      ++ok;
    } else {
      ++failed;
    }
  }
  say("calls: ok=" + std::to_string(ok) + " failed=" + std::to_string(failed));
  return 0;
}

int escape(Context& ctx) {
  auto dir = Directory::get(ctx, "dir");
  if (!dir) return say("get: " + code(dir.error())), 1;
  const char* paths[] = {"../etc/passwd", "/etc/passwd", "link-out/passwd", "sub/../../a.txt",
                         "link-file"};
  for (const char* p : paths) say(std::string("open ") + p + ": " + outcome(dir->open_file(p)));
  say("list ..: " + outcome(dir->list("..")));
  say("open a.txt: " + outcome(dir->open_file("a.txt")));
  return 0;
}

int syscall_violation(Context&) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  say(std::string("socket: ") + (fd >= 0 ? "opened" : std::strerror(errno)));
  return 0;
}

std::string errno_outcome(int rc) { return rc >= 0 ? "ok" : std::strerror(errno); }

// socket(AF_INET) in a loop for `seconds` (refused by the filter: one
// seccomp violation each).
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
// `n` calls outside the "dir" grant's rights (each denied).
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

// The flood stops; 4 s later (past the supervisor's next once-a-second
// audit tick) one refusal of another kind.
int denials_then_quiet(Context& ctx, long n) {
  if (denials(ctx, n) != 0) return 1;
  std::this_thread::sleep_for(std::chrono::seconds(4));
  return ungranted(ctx);
}

// ftruncate, pwrite at offset 0 and O_NONBLOCK on fd 1 and fd 2, then one
// line on each: what a worker sharing the operator's log file could do.
int stdio_attack() {
  for (int fd : {1, 2}) {
    const std::string name = "fd" + std::to_string(fd);
    const std::string t = errno_outcome(::ftruncate(fd, 0));
    const std::string p = errno_outcome(static_cast<int>(::pwrite(fd, "FORGED\n", 7, 0)));
    const int flags = ::fcntl(fd, F_GETFL);
    const std::string nb = errno_outcome(flags < 0 ? -1 : ::fcntl(fd, F_SETFL, flags | O_NONBLOCK));
    const std::string line = "written on " + name + " after the attack\n";
    (void)!::write(fd, line.data(), line.size());
    say(name + ": ftruncate=" + t + " pwrite=" + p + " nonblock=" + nb);
  }
  return 0;
}

// `bytes` of 100-byte lines on stdout, then a line with escape sequences,
// a 10000-byte line and a line on stderr.
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

// Fills memfds with write(), 1 MiB at a time, up to `mib` in all (16 MiB
// per memfd: the policy's file-size limit, then the next one), keeping
// every one open. Only a memory cgroup counts these pages.
int memfd_fill(long mib) {
  ::signal(SIGXFSZ, SIG_IGN);  // EFBIG at the file-size limit: next memfd
  static char chunk[1 << 20];
  std::memset(chunk, 0x5a, sizeof chunk);
  say("memfd: filling");
  long done = 0;
  int fd = -1;
  while (done < mib) {
    if (fd < 0 && (fd = static_cast<int>(::memfd_create("fill", 0))) < 0) {
      return say("memfd: memfd_create " + std::string(std::strerror(errno))), 0;
    }
    const ssize_t w = ::write(fd, chunk, sizeof chunk);
    if (w == static_cast<ssize_t>(sizeof chunk)) {
      ++done;
    } else if (w < 0 && errno == EFBIG) {
      fd = -1;
    } else {
      return say("memfd: write " + std::string(std::strerror(errno))), 0;
    }
  }
  say("memfd: unbounded mib=" + std::to_string(done));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const long n = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 0;
  auto ctx = Context::from_fd();
  if (!ctx) {
    std::fprintf(stderr, "it_worker: %s\n", ctx.error().to_string().c_str());
    return 3;
  }
  auto log = LogSink::get(*ctx, "log");
  if (!log) {
    std::fprintf(stderr, "it_worker: log: %s\n", log.error().to_string().c_str());
    return 4;
  }
  g_log.emplace(std::move(*log));
  if (mode == "hello") return say("hello from the sandbox"), 0;
  if (mode == "ungranted") return ungranted(*ctx);
  if (mode == "outside-rights") return outside_rights(*ctx);
  if (mode == "wait-revoke") return wait_revoke(*ctx);
  if (mode == "file-revoke") return file_revoke(*ctx);
  if (mode == "crash") return crash(*ctx);
  if (mode == "cycles") return cycles(*ctx, n);
  if (mode == "junk") return junk(*ctx);
  if (mode == "flood") return flood(*ctx);
  if (mode == "calls") return calls(*ctx, n);
  if (mode == "escape") return escape(*ctx);
  if (mode == "syscall") return syscall_violation(*ctx);
  if (mode == "violations") return violations(n);
  if (mode == "denials") return denials(*ctx, n);
  if (mode == "denials-then-quiet") return denials_then_quiet(*ctx, n);
  if (mode == "stdio-attack") return stdio_attack();
  if (mode == "output") return output(n);
  if (mode == "memfd") return memfd_fill(n);
  say("unknown mode " + mode);
  return 2;
}
