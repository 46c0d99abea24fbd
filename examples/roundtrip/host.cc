// The demo's host: starts one worker in the sandbox (bubblewrap + seccomp +
// limits), serves it demo.Echo with the right to call Echo only, and prints
// every call, refusal and seccomp violation as it happens, then the
// worker's exit status. One poll loop over the port, the seccomp
// notification fd and the worker's pidfd: a worker blocked in a denied
// syscall waits for this loop's answer.
#include <poll.h>

#include <cstdio>
#include <string>

#include "capabilities/interface_registry.h"
#include "capabilities/port.h"
#include "capabilities/server.h"
#include "echo_bfbs.h"
#include "echo_generated.h"
#include "sandbox/sandbox.h"

namespace {

void say(const std::string& line) { std::printf("[host]   %s\n", line.c_str()); std::fflush(stdout); }

int fail(const std::string& what, const capsa::Error& e) {
  std::fprintf(stderr, "capsa-demo-host: %s: %s\n", what.c_str(), e.to_string().c_str());
  return 1;
}

std::string args_of(const capsa::sandbox::Violation& v) {
  std::string out;
  for (int i = 0; i < 3; ++i) out += (i ? ", " : "") + std::to_string(v.args[i]);
  return out;
}

}  // namespace

int main() {
  capsa::InterfaceRegistry registry;
  if (auto ok = registry.load(capsa::schemas::echo_bfbs()); !ok) return fail("schema", ok.error());
  const capsa::Interface* echo = registry.find("demo.Echo");

  auto channel = capsa::make_channel();
  if (!channel) return fail("channel", channel.error());
  auto& [host_end, worker_end] = *channel;

  auto spec = capsa::sandbox::SpecBuilder()
                  .name("echo-worker")
                  .program(CAPSA_DEMO_WORKER)
                  .on_violation(capsa::sandbox::ViolationAction::kErrno)
                  // The sandbox has no default limits: a host states them.
                  // These match the policy defaults (docs/POLICY.md).
                  .limits({.address_space_bytes = 256ull << 20,
                           .cpu_seconds = 10,
                           .wall_seconds = 60,
                           .max_processes = 16,
                           .max_open_files = 64,
                           .max_file_size_bytes = 16ull << 20})
                  .build();
  if (!spec) return fail("sandbox spec", spec.error());
  auto worker = capsa::sandbox::spawn(*spec, worker_end.release_fd());
  if (!worker) return fail("spawn", worker.error());
  say("started worker \"echo-worker\" (pid " + std::to_string(worker->pid()) +
      ") in a sandbox; its only capability: demo.Echo on fd 3, rights {Echo}");

  capsa::ServerOptions options;
  options.rights = capsa::right_of(echo->method("Echo")->ordinal);
  options.on_bad_message = capsa::BadMessageAction::kClosePort;
  options.report = [](const capsa::Error& e, const capsa::EnvelopeInfo&) {
    say("refused: " + e.to_string() +
        (e.code == capsa::Errc::kBadMessage ? " -> port closed (the capability is gone)" : " -> error reply"));
  };
  capsa::Server server(std::move(host_end), *echo, options);
  (void)server.on("Echo", [](capsa::Message& request, capsa::Reply& reply) -> capsa::Result<void> {
    const auto* req = request.payload_as<demo::EchoRequest>();
    std::string text = req->text() ? req->text()->str() : "";
    say("call Echo(\"" + text + "\") -> validated, served");
    auto& fbb = reply.builder();
    fbb.Finish(demo::CreateEchoReply(fbb, fbb.CreateString("echo: " + text)));
    return {};
  });

  for (;;) {
    pollfd fds[3] = {{server.closed() ? -1 : server.port().fd().get(), POLLIN, 0},
                     {worker->notify_fd().get(), POLLIN, 0},
                     {worker->pidfd().get(), POLLIN, 0}};
    if (::poll(fds, 3, 30'000) <= 0) {
      say("worker silent for 30 s; killing it");
      (void)worker->kill();
      break;
    }
    if (fds[1].revents & POLLIN) {
      auto v = worker->handle_violation();
      if (v && *v) {
        say("seccomp violation: worker \"" + (*v)->worker + "\" called " + (*v)->syscall + "(" +
            args_of(**v) + ", ...) -> EPERM, reported");
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) (void)server.on_readable();
    if (fds[2].revents & POLLIN) break;
  }
  auto status = worker->wait();
  if (!status) return fail("wait", status.error());
  say("worker exited: " + status->to_string());
  return status->kind == capsa::sandbox::ExitKind::kExited && status->code == 0 ? 0 : 1;
}
