// Shared by the benchmarks that measure the supervisor with many live
// grants (sup_bench, growth_bench): the grants are held by a child process
// (an attached worker), so that neither side needs 2 x GRANTS fds.
//
//   GrantHolder h = fork_grant_holder("log", warm, grants);  // before any thread
//   ... create the supervisor, attach the worker with h.pid ...
//   h.give_bootstrap(std::move(boot_port));
//   h.wait_step();   // the child made `warm` grants (used once each)
//   h.go();          // ... and now `grants` more
//   h.wait_step();
//   h.finish();      // the child exits, its ports close; reaped
//
// The child gets each log.Sink grant with a bootstrap Get of `grant_name`,
// makes one Write on it (so first-use allocations are counted) and keeps
// the port. It _exits with a code 10..15 on any failure; wait_step() then
// returns false.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <vector>

#include "capabilities/client.h"
#include "capabilities/interfaces/builtin.h"
#include "capabilities/interfaces/log_sink.h"
#include "capsa_bootstrap_generated.h"

namespace capsa::bench {

class GrantHolder {
 public:
  pid_t pid = -1;

  // Sends the child its bootstrap port (the supervisor's attach() result).
  bool give_bootstrap(Port boot) {
    std::vector<Fd> give;
    give.push_back(boot.release_fd());
    const std::byte mark[1] = {std::byte{3}};
    return static_cast<bool>(to_child_.send(mark, std::move(give)));
  }
  // Waits for the child to finish its current step.
  bool wait_step() { return static_cast<bool>(to_child_.receive()); }
  // Lets the child take its next step.
  bool go() {
    const std::byte mark[1] = {std::byte{2}};
    return static_cast<bool>(to_child_.send(mark));
  }
  // Lets the child exit and reaps it; its status.
  int finish() {
    (void)go();
    int st = 0;
    ::waitpid(pid, &st, 0);
    return st;
  }

 private:
  friend GrantHolder fork_grant_holder(const std::string& grant_name, long warm, long grants);
  Port to_child_;
};

namespace detail {

[[noreturn]] inline void hold_grants(Port ctl, const std::string& grant_name, long warm, long grants) {
  auto boot_fd = ctl.receive();
  if (!boot_fd || boot_fd->fds.size() != 1) ::_exit(10);
  InterfaceRegistry registry;
  if (!interfaces::register_builtin(registry)) ::_exit(11);
  Client boot(Port(std::move(boot_fd->fds[0])), *registry.find("capsa.Bootstrap"));
  const Interface& sink = *registry.find("log.Sink");
  std::vector<Fd> held;
  held.reserve(static_cast<std::size_t>(warm + grants));
  auto get_and_use = [&] {
    auto& fbb = boot.payload_builder();
    fbb.Finish(capsa::CreateGetRequest(fbb, fbb.CreateString(grant_name)));
    auto reply = boot.call(0, boot.payload_bytes());
    if (!reply) ::_exit(12);
    Fd fd = reply->take_handle(*reply->payload_as<capsa::GetReply>()->port());
    Client c(Port(std::move(fd)), sink);
    interfaces::log_sink::build_write_request(c.payload_builder(),
                                              interfaces::log_sink::Level::kDebug, "x");
    if (!c.call(0, c.payload_bytes())) ::_exit(13);
    held.push_back(c.port().release_fd());
  };
  const std::byte mark[1] = {std::byte{1}};
  for (long i = 0; i < warm; ++i) get_and_use();
  if (!ctl.send(mark) || !ctl.receive()) ::_exit(14);
  for (long i = 0; i < grants; ++i) get_and_use();
  if (!ctl.send(mark) || !ctl.receive()) ::_exit(15);
  ::_exit(0);
}

}  // namespace detail

// Forks the holder; call before any thread exists in this process. pid -1
// when the channel or the fork failed.
inline GrantHolder fork_grant_holder(const std::string& grant_name, long warm, long grants) {
  GrantHolder h;
  auto ctl = make_channel();
  if (!ctl) return h;
  h.pid = ::fork();
  if (h.pid == 0) {
    ctl->first = Port();
    detail::hold_grants(std::move(ctl->second), grant_name, warm, grants);
  }
  h.to_child_ = std::move(ctl->first);
  return h;
}

}  // namespace capsa::bench
