// delegation_worker MODE [ARG...] — the worker of delegation_test.cc.
//
// A real sandboxed worker on mediated channels of capsa.test.Echo. It uses
// the worker SDK for its bootstrap and its "log" grant (one line per fact,
// "key: value", which the test reads), and raw ports (capsa::Client and
// capsa::Server over a registry that knows the test interface) for the
// channel traffic, as a hostile worker would: it attaches what it likes.
//
// Put's `note` tells the serving side what to do with the port it gets:
//   "echo"    call Echo on it and say how that went, then close it;
//   "keep"    keep it (for a later Echo "check"), echo on it first;
//   "back"    hand it back in the reply;
//   "log"     write a line through it as a log.Sink;
//   "forward" Put it on this worker's client channel, note "keep" or
//             "forward" as the next hop's ARG says;
//   "drop"    close it.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "capabilities/client.h"
#include "capabilities/error.h"
#include "capabilities/interfaces/builtin.h"
#include "capabilities/server.h"
#include "capsa_bootstrap_generated.h"
#include "echo_bfbs.h"
#include "echo_generated.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

using namespace capsa;
using namespace capsa::worker;

namespace {

std::optional<LogSink> g_log;
std::mutex g_log_mutex;  // a port's client is not thread-safe: one call at a time
InterfaceRegistry g_reg;
const Interface* g_echo = nullptr;

Result<void> write_log(const std::string& line) {
  std::lock_guard lock(g_log_mutex);
  return g_log->write(LogSink::Level::kInfo, line);
}
void say(const std::string& line) {
  if (g_log) (void)write_log(line);
}
std::string code(const Error& e) { return std::string(errc_name(e.code)); }
template <typename T>
std::string outcome(const Result<T>& r) {
  return r ? "ok" : code(r.error());
}

// A grant of an interface the SDK does not know, through a raw Get.
Result<Port> get_port(Context& ctx, std::string_view name) {
  auto& b = ctx.bootstrap();
  auto& fbb = b.payload_builder();
  fbb.Finish(capsa::CreateGetRequest(fbb, fbb.CreateString(name.data(), name.size())));
  CAPSA_ASSIGN_OR_RETURN(Message reply, b.call("Get", b.payload_bytes()));
  const auto* r = reply.payload_as<capsa::GetReply>();
  if (!r->port().has_value()) return make_error(Errc::kBadMessage, "no port");
  return Port(reply.take_handle(*r->port()));
}

Result<std::unique_ptr<Client>> echo_client(Context& ctx, std::string_view name) {
  CAPSA_ASSIGN_OR_RETURN(Port p, get_port(ctx, name));
  return std::make_unique<Client>(std::move(p), *g_echo);
}

Fd dup_fd(int fd) { return Fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

Result<std::string> echo(Client& c, std::string_view text) {
  auto& fbb = c.payload_builder();
  fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString(text.data(), text.size()), 0));
  CAPSA_ASSIGN_OR_RETURN(Message reply, c.call(0, c.payload_bytes()));
  const auto* r = reply.payload_as<capsa::test::EchoReply>();
  return r->text() != nullptr ? r->text()->str() : std::string();
}

// Echo through a port (consumed): the probe of "does this copy work".
Result<std::string> echo_on(Port p) {
  Client c(std::move(p), *g_echo);
  return echo(c, "probe");
}

// Put `fds` with the first as the `port` field (the others surplus).
Result<Message> put(Client& c, std::vector<Fd> fds, std::string_view note) {
  auto& fbb = c.payload_builder();
  auto n = fbb.CreateString(note.data(), note.size());
  fbb.Finish(capsa::test::CreatePutRequest(
      fbb, fds.empty() ? flatbuffers::nullopt : flatbuffers::Optional<std::uint32_t>(0),
      flatbuffers::nullopt, 0, n));
  std::vector<Handle> h;
  for (auto& fd : fds) h.push_back(Handle{HandleKind::kPort, std::move(fd)});
  return c.call(1, c.payload_bytes(), std::move(h));
}
Result<Message> put(Client& c, Fd fd, std::string_view note) {
  std::vector<Fd> fds;
  fds.push_back(std::move(fd));
  return put(c, std::move(fds), note);
}

// The serving side of a channel. Kept ports are probed by Echo "check",
// whose reply value is how many of them still answered.
struct Serving {
  Context* ctx = nullptr;
  std::string forward_on;    // client channel for "forward"
  std::string forward_note;  // the note the next hop gets
  std::vector<Port> kept;
  std::unique_ptr<Client> next;
  long puts = 0;
};

Result<void> on_put(Serving& s, Message& req, Reply& reply) {
  ++s.puts;
  const auto* r = req.payload_as<capsa::test::PutRequest>();
  const std::string note = r->note() != nullptr ? r->note()->str() : "";
  std::optional<std::uint32_t> back;
  if (r->port().has_value()) {
    Port p(req.take_handle(*r->port()));
    if (note == "echo") {
      say("got port: echo " + outcome(echo_on(std::move(p))));
    } else if (note == "keep") {
      Port probe(dup_fd(p.fd().get()));
      say("kept: echo " + outcome(echo_on(std::move(probe))));
      s.kept.push_back(std::move(p));
    } else if (note == "hold") {
      s.kept.push_back(std::move(p));
    } else if (note == "back") {
      back = reply.add_handle(Handle{HandleKind::kPort, p.release_fd()});
    } else if (note == "log") {
      auto cap = s.ctx->adopt(std::move(p), "log.Sink", "from a");
      auto sink = cap ? LogSink::wrap(std::move(*cap)) : std::unexpected(cap.error());
      auto w = sink ? sink->write(LogSink::Level::kInfo, "written by b through a's sink")
                    : Result<void>(std::unexpected(sink.error()));
      say("log through it: " + outcome(w));
    } else if (note == "forward") {
      if (!s.next) {
        auto c = echo_client(*s.ctx, s.forward_on);
        if (!c) return say("forward get: " + code(c.error())), std::unexpected(c.error());
        s.next = std::move(*c);
      }
      say("forward: " + outcome(put(*s.next, p.release_fd(), s.forward_note)));
    }
  }
  auto& fbb = reply.builder();
  fbb.Finish(capsa::test::CreatePutReply(
      fbb, 1, back ? flatbuffers::Optional<std::uint32_t>(*back) : flatbuffers::nullopt));
  return {};
}

Result<void> on_echo(Serving& s, Message& req, Reply& reply) {
  const auto* r = req.payload_as<capsa::test::EchoRequest>();
  const std::string text = r->text() != nullptr ? r->text()->str() : "";
  std::uint64_t value = r->value();
  if (text == "check") {
    value = 0;
    for (auto& p : s.kept) value += echo_on(std::move(p)) ? 1u : 0u;
    s.kept.clear();
  }
  auto& fbb = reply.builder();
  fbb.Finish(capsa::test::CreateEchoReply(fbb, fbb.CreateString(text), value));
  return {};
}

int serve(Serving& s, std::string_view channel, Port port) {
  Server server(std::move(port), *g_echo);
  (void)server.on("Put", [&](Message& m, Reply& r) { return on_put(s, m, r); });
  (void)server.on("Echo", [&](Message& m, Reply& r) { return on_echo(s, m, r); });
  auto ran = server.run();
  say("served " + std::string(channel) + ": puts=" + std::to_string(s.puts) + " " + outcome(ran));
  if (!s.kept.empty()) {
    long alive = 0;
    for (auto& p : s.kept) alive += echo_on(std::move(p)) ? 1 : 0;
    say("kept after: alive=" + std::to_string(alive) + " of " + std::to_string(s.kept.size()));
  }
  return 0;
}

// Serves Echo on the server end `channel` until its clients are gone.
// The bootstrap's client is not thread-safe: a thread gets its port first.
int serve(Serving& s, std::string_view channel) {
  auto port = get_port(*s.ctx, channel);
  if (!port) return say("get " + std::string(channel) + ": " + code(port.error())), 1;
  return serve(s, channel, std::move(*port));
}

// Waits (2 ms steps, at most ~40 s) until an Echo on a copy of `p` fails.
void until_refused(const std::string& what, const Port& p) {
  for (int i = 0; i < 20000; ++i) {
    auto r = echo_on(Port(dup_fd(p.fd().get())));
    if (!r) return say(what + ": " + code(r.error()));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  say(what + ": never refused");
}

// Attenuate a copy of `p` (all rights): a new grant, child of p's.
Result<Port> fresh_copy(Context& ctx, const Port& p) {
  auto& b = ctx.bootstrap();
  auto& fbb = b.payload_builder();
  std::vector<flatbuffers::Offset<flatbuffers::String>> names{fbb.CreateString("Echo"),
                                                              fbb.CreateString("Put")};
  fbb.Finish(capsa::CreateAttenuateRequest(fbb, 0, fbb.CreateVector(names)));
  std::vector<Handle> h;
  h.push_back(Handle{HandleKind::kPort, dup_fd(p.fd().get())});
  CAPSA_ASSIGN_OR_RETURN(Message reply, b.call("Attenuate", b.payload_bytes(), std::move(h)));
  const auto* r = reply.payload_as<capsa::AttenuateReply>();
  if (!r->port().has_value()) return make_error(Errc::kBadMessage, "no port");
  return Port(reply.take_handle(*r->port()));
}

// Everything a mediated channel must refuse, then what it must carry.
int refusals(Context& ctx) {
  auto pipe = echo_client(ctx, "pipe");
  auto fixed = get_port(ctx, "fixed");
  auto mobile = get_port(ctx, "mobile");
  if (!pipe || !fixed || !mobile) return say("setup: failed"), 1;
  Client& c = **pipe;
  say("fixed: " + outcome(put(c, dup_fd(fixed->fd().get()), "echo")));
  say("bootstrap: " + outcome(put(c, dup_fd(kBootstrapFd), "echo")));
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return say("socketpair: failed"), 1;
  Fd mine(sv[0]);
  say("socketpair: " + outcome(put(c, Fd(sv[1]), "echo")));
  // 16 distinct ports (Port::send refuses one socket attached twice), one
  // declared: the 15 others are surplus.
  std::vector<Fd> many;
  many.push_back(dup_fd(mobile->fd().get()));
  for (int i = 1; i < 16; ++i) {
    auto copy = fresh_copy(ctx, *mobile);
    if (!copy) return say("attenuate: " + code(copy.error())), 1;
    many.push_back(copy->release_fd());
  }
  say("sixteen: " + outcome(put(c, std::move(many), "echo")));
  say("mobile: " + outcome(put(c, dup_fd(mobile->fd().get()), "echo")));
  say("bootstrap after: " + outcome(ctx.list()));
  say("fixed after: " + outcome(echo_on(std::move(*fixed))));
  return 0;
}

int loop(Context& ctx, long n) {
  auto pipe = echo_client(ctx, "pipe");
  auto mobile = get_port(ctx, "mobile");
  if (!pipe || !mobile) return say("setup: failed"), 1;
  long ok = 0;
  for (long i = 0; i < n; ++i) ok += put(**pipe, dup_fd(mobile->fd().get()), "drop") ? 1 : 0;
  say("loop: ok=" + std::to_string(ok) + " of " + std::to_string(n));
  return 0;
}

int pass_back(Context& ctx) {
  auto pipe = echo_client(ctx, "pipe");
  auto mobile = get_port(ctx, "mobile");
  if (!pipe || !mobile) return say("setup: failed"), 1;
  auto reply = put(**pipe, dup_fd(mobile->fd().get()), "back");
  if (!reply) return say("put: " + code(reply.error())), 1;
  const auto* r = reply->payload_as<capsa::test::PutReply>();
  if (!r->back().has_value()) return say("no port back"), 1;
  Port back(reply->take_handle(*r->back()));
  say("back: echo " + outcome(echo_on(Port(dup_fd(back.fd().get())))));
  say("ready");
  until_refused("back", back);
  say("mobile: " + outcome(echo_on(std::move(*mobile))));
  return 0;
}

// a in the chain a -> b -> c -> a: serves "ca" on a thread, sends its
// mobile port along "ab", and waits for the copy that comes back round.
int chain(Context& ctx) {
  auto pipe = echo_client(ctx, "ab");
  auto mobile = get_port(ctx, "mobile");
  auto ca = get_port(ctx, "ca");
  if (!pipe || !mobile || !ca) return say("setup: failed"), 1;
  Serving s;
  s.ctx = &ctx;
  Server server(std::move(*ca), *g_echo);
  (void)server.on("Put", [&](Message& m, Reply& r) { return on_put(s, m, r); });
  (void)server.on("Echo", [&](Message& m, Reply& r) { return on_echo(s, m, r); });
  // One call comes round: serve it, then leave the rest to the end.
  std::thread t([&] { (void)server.on_readable(); });
  say("sent: " + outcome(put(**pipe, dup_fd(mobile->fd().get()), "forward")));
  t.join();
  if (s.kept.size() != 1) return say("nothing came round"), 1;
  say("ready");
  until_refused("returned", s.kept[0]);
  say("mobile: " + outcome(echo_on(std::move(*mobile))));
  return 0;
}

// Puts the port and exits at once, the call unanswered. An Echo first, so
// b has taken its end: a call made before that would end with the channel
// when a exits, never delivered (the channel has no server yet).
int in_flight(Context& ctx) {
  auto pipe = echo_client(ctx, "pipe");
  auto mobile = get_port(ctx, "mobile");
  if (!pipe || !mobile) return say("setup: failed"), 1;
  Client& c = **pipe;
  say("served: " + outcome(echo(c, "first")));
  auto& fbb = c.payload_builder();
  fbb.Finish(capsa::test::CreatePutRequest(fbb, 0, flatbuffers::nullopt, 0, fbb.CreateString("hold")));
  std::vector<Handle> h;
  h.push_back(Handle{HandleKind::kPort, dup_fd(mobile->fd().get())});
  auto sent = c.submit(1, c.payload_bytes(), std::move(h), [](Result<Message>) {});
  say("sent: " + outcome(sent));
  std::_Exit(0);
}

// n rounds of: a fresh copy; "race" logged (the test revokes the copy when
// it reads the line) while the copy is Put to b; then every copy, a's and
// whatever b got, must be dead.
int race(Context& ctx, long n) {
  auto pipe = echo_client(ctx, "pipe");
  auto mobile = get_port(ctx, "mobile");
  if (!pipe || !mobile) return say("setup: failed"), 1;
  long delivered = 0, refused = 0, alive_here = 0, alive_there = 0, failures = 0;
  for (long i = 0; i < n; ++i) {
    auto copy = fresh_copy(ctx, *mobile);
    if (!copy) return say("attenuate: " + code(copy.error())), 1;
    Result<void> logged;
    std::thread t([&] { logged = write_log("race"); });
    auto sent = put(**pipe, dup_fd(copy->fd().get()), "hold");
    t.join();
    if (!logged) return say("log: " + code(logged.error())), 1;
    (sent ? delivered : refused) += 1;
    alive_here += echo_on(std::move(*copy)) ? 1 : 0;
    auto check = (*pipe)->call(0, [&] {
      auto& fbb = (*pipe)->payload_builder();
      fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString("check"), 0));
      return (*pipe)->payload_bytes();
    }());
    if (!check) {
      ++failures;
      continue;
    }
    alive_there += static_cast<long>(check->payload_as<capsa::test::EchoReply>()->value());
  }
  say("race: delivered=" + std::to_string(delivered) + " refused=" + std::to_string(refused) +
      " alive_here=" + std::to_string(alive_here) + " alive_there=" + std::to_string(alive_there) +
      " check_failures=" + std::to_string(failures));
  return 0;
}

int neighbour(Context& ctx, long n) {
  auto c = echo_client(ctx, "echo");
  if (!c) return say("get: " + code(c.error())), 1;
  long ok = 0;
  for (long i = 0; i < n; ++i) ok += echo(**c, "n") ? 1 : 0;
  say("calls: ok=" + std::to_string(ok) + " failed=" + std::to_string(n - ok));
  return 0;
}

// One direction flooded: calls as fast as the port takes them, many in
// flight, on "ab"; meanwhile this worker answers b's calls on "ba".
int flood(Context& ctx, long n) {
  auto pipe = echo_client(ctx, "ab");
  auto ba = get_port(ctx, "ba");
  if (!pipe || !ba) return say("setup: failed"), 1;
  Serving s;
  s.ctx = &ctx;
  Server server(std::move(*ba), *g_echo);
  (void)server.on("Echo", [&](Message& m, Reply& r) { return on_echo(s, m, r); });
  std::thread t([&] { (void)server.run(); });
  long ok = 0, overloaded = 0, other = 0;
  Client& c = **pipe;
  auto done = [&](Result<Message> r) {
    ++(r ? ok : r.error().code == Errc::kOverloaded ? overloaded : other);
  };
  for (long i = 0; i < n; ++i) {
    auto& fbb = c.payload_builder();
    fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString("flood"), 0));
    while (!c.submit(0, c.payload_bytes(), {}, done)) {
      if (!c.on_readable()) break;  // too many in flight: take an answer
    }
  }
  while (c.in_flight() > 0 && c.on_readable()) {
  }
  // The rate covers every message of this worker, its log lines too: let
  // the window pass so the result line is not itself refused.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  say("flood: ok=" + std::to_string(ok) + " overloaded=" + std::to_string(overloaded) +
      " other=" + std::to_string(other));
  pipe->reset();  // b's server side ends, then b ends its calls on "ba"
  t.join();
  return 0;
}

// b of the flood: serves "ab" on a thread, calls a on "ba" n times.
int flooded(Context& ctx, long n) {
  Serving s;
  s.ctx = &ctx;
  auto ab = get_port(ctx, "ab");
  auto c = echo_client(ctx, "ba");
  if (!ab || !c) return say("setup: failed"), 1;
  std::thread t([&] { serve(s, "ab", std::move(*ab)); });
  long ok = 0;
  for (long i = 0; i < n; ++i) ok += echo(**c, "reverse") ? 1 : 0;
  say("reverse: ok=" + std::to_string(ok) + " failed=" + std::to_string(n - ok));
  c->reset();
  t.join();
  return 0;
}

int hand_log(Context& ctx) {
  auto pipe = echo_client(ctx, "pipe");
  auto speaker = get_port(ctx, "speaker");
  if (!pipe || !speaker) return say("setup: failed"), 1;
  say("handed: " + outcome(put(**pipe, speaker->release_fd(), "log")));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const std::string arg = argc > 2 ? argv[2] : "";
  const long n = std::strtol(arg.c_str(), nullptr, 10);
  if (!interfaces::register_builtin(g_reg) || !g_reg.load(schemas::echo_bfbs())) return 5;
  g_echo = g_reg.find("capsa.test.Echo");
  auto ctx = Context::from_fd();
  if (!ctx) return std::fprintf(stderr, "delegation_worker: %s\n", ctx.error().to_string().c_str()), 3;
  auto log = LogSink::get(*ctx, "log");
  if (!log) return std::fprintf(stderr, "delegation_worker: log: %s\n", log.error().to_string().c_str()), 4;
  g_log.emplace(std::move(*log));
  if (mode == "serve") {
    // serve CHANNEL [FORWARD_ON FORWARD_NOTE]
    Serving s;
    s.ctx = &*ctx;
    if (argc > 4) s.forward_on = argv[3], s.forward_note = argv[4];
    return serve(s, arg);
  }
  if (mode == "refusals") return refusals(*ctx);
  if (mode == "loop") return loop(*ctx, n);
  if (mode == "pass-back") return pass_back(*ctx);
  if (mode == "chain") return chain(*ctx);
  if (mode == "in-flight") return in_flight(*ctx);
  if (mode == "race") return race(*ctx, n);
  if (mode == "neighbour") return neighbour(*ctx, n);
  if (mode == "flood") return flood(*ctx, n);
  if (mode == "flooded") return flooded(*ctx, n);
  if (mode == "hand-log") return hand_log(*ctx);
  say("unknown mode " + mode);
  return 2;
}
