// Shared by the channel benchmarks: a supervisor with two attached
// workers, "a" (client) and "b" (server), on the mediated channel
// "mediated" and the direct channel "direct" of capsa.test.Echo; "a" also
// holds a log.Sink grant "log" and may make Echo channels with NewChannel.
// The workers are threads or children of the benchmark, not sandboxes:
// what is measured is the supervisor's path.
#pragma once

#include <malloc.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "bench/common/must.h"
#include "bench/common/on_loop.h"
#include "capabilities/client.h"
#include "capsa_bootstrap_generated.h"
#include "echo_bfbs.h"
#include "policy/builder.h"
#include "supervisor/supervisor.h"

namespace capsa::bench {

using namespace capsa::supervisor;

inline std::string temp_audit_path() {
  char tmpl[] = "/tmp/channel_bench_audit_XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) die("mkstemp");
  ::close(fd);
  return tmpl;
}

// One supervisor: workers "a" (client) and "b" (server) on channel
// "mediated" and "direct", and NewChannel of Echo for "a".
struct Bench {
  std::string audit = temp_audit_path();
  std::unique_ptr<Supervisor> sup;
  std::unique_ptr<Client> boot_a, boot_b;
  std::thread loop;

  explicit Bench(long channels) {
    SupervisorOptions o;
    o.audit_log_path = audit;
    o.log_output = [](std::string_view, LogLevel, std::string_view) {};
    o.ended_grants_kept = 0;
    o.extra_schemas.push_back(schemas::echo_bfbs());
    policy::PolicyBuilder b(Supervisor::api_catalog(o));
    for (const char* n : {"a", "b"}) {
      auto& w = b.worker(n).program("/bin/true");
      w.grant("log", "log.Sink").all_rights();
      w.limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
      w.limit(policy::LimitKind::kOpenFiles, static_cast<std::uint64_t>(2 * channels + 100));
      w.new_channel("capsa.test.Echo");
    }
    b.channel("mediated").interface("capsa.test.Echo").client("a").server("b");
    b.channel("direct").interface("capsa.test.Echo").client("a").server("b").mode(
        policy::ChannelMode::kDirect);
    auto p = b.try_build();
    if (!p) die(policy::format_diagnostics(p.error()));
    sup = must(Supervisor::create(std::move(*p), std::move(o)), "create");
    const Interface& boot = *sup->registry().find("capsa.Bootstrap");
    boot_a = std::make_unique<Client>(must(sup->attach("a"), "attach a"), boot);
    boot_b = std::make_unique<Client>(must(sup->attach("b"), "attach b"), boot);
    loop = std::thread([this] { (void)sup->reactor().run(); });
  }
  ~Bench() {
    boot_a.reset();
    boot_b.reset();
    sup->reactor().stop();
    loop.join();
    sup.reset();
    ::unlink(audit.c_str());
  }
  const Interface& echo() const { return *sup->registry().find("capsa.test.Echo"); }

  static Port get(Client& boot, const char* name) {
    auto& fbb = boot.payload_builder();
    fbb.Finish(capsa::CreateGetRequest(fbb, fbb.CreateString(name)));
    Message reply = must(boot.call(0, boot.payload_bytes()), name);
    return Port(reply.take_handle(*reply.payload_as<capsa::GetReply>()->port()));
  }
  // Runs `f` on the loop thread and returns its result.
  template <typename F>
  auto on_loop(F f) -> decltype(f()) {
    return capsa::bench::on_loop(sup->reactor(), std::move(f));
  }
  // Supervisor-side heap, read on the loop thread between calls.
  std::size_t heap() { return capsa::bench::loop_heap(sup->reactor()); }
};


}  // namespace capsa::bench
