// hostile — an example plugin gone bad (examples/hostile.json).
//
// It tries five things it should not be able to do, in this order, and
// reports each attempt as one line on stdout (prefixed "hostile: ") and the
// same line on its "log" grant, before moving on:
//   a  read /etc/passwd             the sandbox has no /etc/passwd: ENOENT
//   b  socket(AF_INET, SOCK_STREAM) the seccomp filter: EPERM, and the
//                                   supervisor audits a seccomp violation
//   c  Get "secrets"                not granted: not found, audited
//   d  List on "texts"              outside the grant's rights (Stat only):
//                                   first through the SDK, which refuses
//                                   locally; then bypassing the SDK (adopt()
//                                   allows every method locally), so the
//                                   supervisor answers denied and audits it
//   e  a malformed message          raw bytes that are not an envelope, on a
//                                   log port: the policy's on_bad_message is
//                                   "kill", so this is its last act
// The lines are fixed text plus an error name, so tests can grep them; a
// step that unexpectedly works says ALLOWED. Nothing here is random: the
// same sandbox and policy give the same lines. (The only waits are the log
// retry below and the grace period of step e, which keep them so.)
//
// Exit status: killed at step e under examples/hostile.json; 0 if it
// survived every step (a gentler policy); 1 if it could not even get its
// bootstrap port or log.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <span>
#include <string>
#include <string_view>

#include "capabilities/interfaces/builtin.h"
#include "fs_directory_generated.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/plugin.h"

namespace {

using capsa::Errc;
using capsa::Error;
using namespace capsa::worker;

std::string errno_name(int err) {
  const char* name = ::strerrorname_np(err);
  return name != nullptr ? name : "errno " + std::to_string(err);
}

std::string refused(const Error& e) {
  return "refused (" + std::string(capsa::errc_name(e.code)) + ")";
}

// One line to stdout (flushed: the process may be killed right after) and
// the same line to the log. The log grant is rate-limited; an `overloaded`
// answer is waited out a bounded number of times so no line is lost.
class Reporter {
 public:
  explicit Reporter(LogSink log) : log_(std::move(log)) {}

  void line(const std::string& text) {
    std::printf("hostile: %s\n", text.c_str());
    std::fflush(stdout);
    for (int attempt = 0;; ++attempt) {
      auto r = log_.write(LogSink::Level::kWarning, text);
      if (r) return;
      if (r.error().code != Errc::kOverloaded || attempt == 50) {
        std::fprintf(stderr, "hostile: log: %s\n", r.error().to_string().c_str());
        return;
      }
      const timespec pause{0, 100'000'000};  // 100 ms
      ::nanosleep(&pause, nullptr);
    }
  }

 private:
  LogSink log_;
};

void read_passwd(Reporter& out) {
  const std::string what = "a read /etc/passwd: ";
  capsa::Fd fd(::open("/etc/passwd", O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return out.line(what + "refused (" + errno_name(errno) + ")");
  std::array<char, 4096> buf;
  ssize_t n = ::read(fd.get(), buf.data(), buf.size());
  if (n < 0) return out.line(what + "opened, read refused (" + errno_name(errno) + ")");
  out.line(what + "ALLOWED (read " + std::to_string(n) + " bytes)");
}

void open_socket(Reporter& out) {
  const std::string what = "b socket(AF_INET, SOCK_STREAM): ";
  capsa::Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return out.line(what + "refused (" + errno_name(errno) + ")");
  out.line(what + "ALLOWED");
}

void get_ungranted(Context& ctx, Reporter& out) {
  const std::string what = "c Get \"secrets\" (not granted): ";
  auto cap = ctx.get("secrets", capsa::interfaces::kDirectory);
  out.line(what + (cap ? std::string("ALLOWED") : refused(cap.error())));
}

void call_outside_rights(Context& ctx, Reporter& out) {
  const std::string what = "d List on \"texts\"";
  auto texts = ctx.get("texts", capsa::interfaces::kDirectory);
  if (!texts) return out.line(what + ": skipped: Get \"texts\" " + refused(texts.error()));

  // Through the SDK: it knows the grant's rights and refuses without
  // sending anything.
  auto& fbb = texts->payload_builder();
  fbb.Finish(fs::CreateListRequest(fbb, fbb.CreateString(".")));
  auto local = texts->call("List", texts->payload_bytes());
  out.line(what + " through the SDK: " +
           (local ? std::string("ALLOWED") : refused(local.error()) + ", nothing sent"));

  // Bypassing the SDK: adopt() wraps a port with every method allowed
  // locally, so the call reaches the supervisor, which enforces the rights.
  auto wide = ctx.adopt(texts->release(), capsa::interfaces::kDirectory, "texts");
  if (!wide) return out.line(what + " bypassing the SDK: skipped: adopt " + refused(wide.error()));
  auto& wfbb = wide->payload_builder();
  wfbb.Finish(fs::CreateListRequest(wfbb, wfbb.CreateString(".")));
  auto remote = wide->call("List", wide->payload_bytes());
  out.line(what + " bypassing the SDK: " +
           (remote ? std::string("ALLOWED") : refused(remote.error())));
}

void send_malformed(Context& ctx, Reporter& out) {
  const std::string what = "e malformed message on a log port: ";
  // A second port to the log grant, so the Reporter's stays usable if a
  // gentler policy only closes the abused port.
  auto victim = ctx.get("log", capsa::interfaces::kLogSink);
  if (!victim) return out.line(what + "skipped: Get \"log\" " + refused(victim.error()));
  capsa::Port port = victim->release();
  out.line(what + "sending (on_bad_message decides: under \"kill\" this is the last line)");
  constexpr std::string_view garbage = "this is not a capsa envelope";
  if (auto r = port.send(std::as_bytes(std::span(garbage.data(), garbage.size()))); !r) {
    return out.line(what + "survived: send " + refused(r.error()));
  }
  // Wait for the verdict: under "close_port" the port closes, under
  // "reply_error" an error comes back, under "kill" the supervisor closes
  // the port AND kills the sandbox. The close can reach us a moment before
  // the SIGKILL does, so a line printed at once would sometimes appear
  // under "kill" too. Hence the grace period: a plugin that is still alive
  // 2 s after the verdict was not killed for it. (A heuristic for a stable
  // transcript, not a proof: the proof is the audit log's bad_message and
  // worker_killed lines and the exit status.)
  auto answer = port.receive();
  const timespec grace{2, 0};
  ::nanosleep(&grace, nullptr);
  if (!answer) {
    return out.line(what + "survived: the port was " +
                    (answer.error().code == Errc::kClosed ? "closed" : refused(answer.error())));
  }
  out.line(what + "survived: an answer came back (" + std::to_string(answer->bytes.size()) +
           " bytes)");
}

}  // namespace

int main(int argc, char**) {
  constexpr Plugin kPlugin{"hostile"};
  if (argc != 1) return kPlugin.usage("hostile   (takes no arguments)");
  auto start = kPlugin.start();
  if (!start) return kExitFailed;
  auto& [ctx, log] = *start;
  Reporter out(std::move(log));
  read_passwd(out);
  open_socket(out);
  get_ungranted(ctx, out);
  call_outside_rights(ctx, out);
  send_malformed(ctx, out);
  return kExitOk;
}
