// channel_bench [CALLS] [CHANNELS] — worker-to-worker channels.
//
//  1. Call round trip, capsa.test.Echo Echo("ping") answered by the server
//     side: through a mediated channel (client -> supervisor: validated,
//     rights, rates, calls in flight -> server; the answer validated against
//     the method's reply on its way back), through a direct channel (a
//     socketpair the supervisor made, nothing between), and, as the
//     baseline, a raw SOCK_SEQPACKET ping-pong of the same request and
//     reply bytes. Five rounds, interleaved; the median ratio to the raw
//     round trip is reported. Targets: mediated <= 2.5x raw; direct ~1x.
//  2. Memory per mediated channel: CHANNELS channels made with
//     Bootstrap.NewChannel (both ends held); the supervisor's live heap
//     (mallinfo2) before and after, divided by CHANNELS. Target: <= 4 KiB.
//
// The workers are attach()ed threads of this process, not sandboxes: the
// path measured is the supervisor's, and each side is a plain capsa::Client
// or capsa::Server as a worker's would be. Everything runs pinned to one
// CPU (bench/channels/run.sh): each round trip then costs at least two
// context switches for raw and direct, and four for mediated (client ->
// supervisor -> server -> supervisor -> client).
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "bench/channels/bench_supervisor.h"
#include "capabilities/server.h"
#include "echo_generated.h"

using namespace capsa;
using namespace capsa::bench;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kRounds = 5;

void fill_echo(flatbuffers::FlatBufferBuilder& fbb) {
  fbb.Finish(capsa::test::CreateEchoRequest(fbb, fbb.CreateString("ping"), 1));
}

// Serves Echo on `port` until the client goes.
std::thread serve(Port port, const Interface& iface) {
  return std::thread([p = std::move(port), &iface]() mutable {
    Server s(std::move(p), iface);
    (void)s.on("Echo", [](Message& m, Reply& r) {
      const auto* q = m.payload_as<capsa::test::EchoRequest>();
      r.builder().Finish(capsa::test::CreateEchoReply(r.builder(), r.builder().CreateString("pong"),
                                                      q->value()));
      return Result<void>();
    });
    (void)s.run();
  });
}

double ns_per_call(Client& c, long calls) {
  auto t0 = Clock::now();
  for (long i = 0; i < calls; ++i) {
    fill_echo(c.payload_builder());
    must(c.call(0, c.payload_bytes()), "call");
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(calls);
}

// The same request and reply bytes, echoed by a thread, no validation.
double raw_ns(std::size_t req_bytes, std::size_t reply_bytes, long calls) {
  auto pair = must(make_channel(), "socketpair");
  std::thread peer([&] {
    std::vector<std::byte> reply(reply_bytes);
    for (long i = 0; i < calls; ++i) {
      if (!pair.second.receive() || !pair.second.send(reply)) return;
    }
  });
  std::vector<std::byte> req(req_bytes);
  auto t0 = Clock::now();
  for (long i = 0; i < calls; ++i) {
    if (!pair.first.send(req) || !pair.first.receive()) die("raw ping-pong");
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  peer.join();
  return ns / static_cast<double>(calls);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void round_trips(long calls) {
  Bench b(100);
  Client mediated(Bench::get(*b.boot_a, "mediated"), b.echo());
  Client direct(Bench::get(*b.boot_a, "direct"), b.echo());
  std::thread s1 = serve(Bench::get(*b.boot_b, "mediated"), b.echo());
  std::thread s2 = serve(Bench::get(*b.boot_b, "direct"), b.echo());
  // The sizes a worker's Echo call and its reply have on the wire.
  Encoder enc;
  fill_echo(enc.payload_builder());
  const std::size_t req = enc.encode(Header{MessageKind::kCall, 1, 0, 0, Errc::kFailed, {}},
                                     enc.payload_bytes(), {}).size();
  auto& rb = enc.payload_builder();
  rb.Finish(capsa::test::CreateEchoReply(rb, rb.CreateString("pong"), 1));
  const std::size_t rep = enc.encode(Header{MessageKind::kReply, 1, 0, 0, Errc::kFailed, {}},
                                     enc.payload_bytes(), {}).size();
  (void)ns_per_call(mediated, calls / 10);  // warm
  (void)ns_per_call(direct, calls / 10);
  std::vector<double> rm, rd;
  for (int r = 0; r < kRounds; ++r) {
    const double raw = raw_ns(req, rep, calls);
    const double m = ns_per_call(mediated, calls);
    const double d = ns_per_call(direct, calls);
    std::printf("round %d: raw %.0f ns  mediated %.0f ns (%.2fx)  direct %.0f ns (%.2fx)\n", r + 1,
                raw, m, m / raw, d, d / raw);
    rm.push_back(m / raw);
    rd.push_back(d / raw);
  }
  std::printf("round trip, median of %d: mediated %.2fx raw (target <= 2.5x), direct %.2fx raw\n",
              kRounds, median(rm), median(rd));
  mediated.port() = Port();
  // The supervisor keeps a duplicate of each direct end (to revoke it by
  // shutdown): closing ours is no end-of-stream for the server, a shutdown is.
  ::shutdown(direct.port().fd().get(), SHUT_RDWR);
  direct.port() = Port();
  s1.join();
  s2.join();
}

void memory_per_channel(long channels) {
  // Both ends of every channel stay open here, and their peers in the
  // supervisor: raise the fd limit to what that needs.
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(4 * channels + 1000));
  ::setrlimit(RLIMIT_NOFILE, &rl);
  Bench b(channels);
  std::vector<Port> held;
  held.reserve(static_cast<std::size_t>(2 * channels + 20));
  auto one = [&] {
    auto& fbb = b.boot_a->payload_builder();
    fbb.Finish(capsa::CreateNewChannelRequest(fbb, fbb.CreateString("capsa.test.Echo")));
    Message reply = must(b.boot_a->call(3, b.boot_a->payload_bytes()), "NewChannel");
    const auto* r = reply.payload_as<capsa::NewChannelReply>();
    held.emplace_back(reply.take_handle(*r->client()));
    held.emplace_back(reply.take_handle(*r->server()));
  };
  for (int i = 0; i < 10; ++i) one();  // warm: first-use allocations
  const std::size_t before = b.heap();
  for (long i = 0; i < channels; ++i) one();
  const std::size_t after = b.heap();
  std::printf("memory: %ld mediated channels, supervisor heap +%zu bytes = %.0f bytes per channel "
              "(target <= 4096)\n",
              channels, after - before,
              static_cast<double>(after - before) / static_cast<double>(channels));
}

}  // namespace

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 100000;
  const long channels = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 1000;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (calls < 10 || channels < 1) die("usage: channel_bench [CALLS>=10] [CHANNELS>=1]");
  round_trips(calls);
  memory_per_channel(channels);
  return 0;
}
