// mini_supervisor — the smallest supervisor: starts one sandboxed worker and
// services it until killed. The survival test SIGKILLs this process and then
// checks that nothing of the sandbox outlives it.
//
//   mini_supervisor <process|thread|exit> <hostile_worker path> <marker>
//
// Starts `hostile_worker grandchild <marker>` (a worker that double-forks a
// setsid grandchild carrying the marker) and waits for the grandchild's
// "sleeper ready". In `thread` mode the spawn happens on a thread that then
// exits; once the kernel has fully released that thread we check that the
// sandbox was not signalled by its exit (bubblewrap's parent-death signal is
// tied to the thread that forked it). Then prints one line on stdout:
//   "ready <bwrap pid> alive"      the sandbox is running and not dying
//   "ready <bwrap pid> dying"      it has SIGKILL pending or is gone
//   "error <text>"                 anything else (exit 1)
// then "copies <dir>" (its program cache, program_copy.h), and services
// seccomp notifications forever; in `exit` mode it returns from main
// instead: a normal exit, after which nothing of it may remain.
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "capabilities/port.h"
#include "sandbox/program_copy.h"
#include "sandbox/sandbox.h"
#include "sandbox/spec.h"
#include "sandbox/testdata/test_limits.h"

namespace {

using capsa::Port;
using capsa::sandbox::Worker;

struct Started {
  Worker worker;
  Port port;
};

int fail(const std::string& text) {
  std::printf("error %s\n", text.c_str());
  std::fflush(stdout);
  return 1;
}

capsa::Result<Started> start(const std::string& program, const std::string& marker) {
  auto spec = capsa::sandbox::SpecBuilder()
                  .name("grandchild")
                  .program(program)
                  .args({program, "grandchild", marker})
                  .limits(capsa::testing::sandbox_test_limits())
                  .build();
  if (!spec) return std::unexpected(spec.error());
  auto channel = capsa::make_channel();
  if (!channel) return std::unexpected(channel.error());
  auto worker = capsa::sandbox::spawn(*spec, channel->second.release_fd());
  if (!worker) return std::unexpected(worker.error());
  return Started{std::move(*worker), std::move(channel->first)};
}

// Answers violations until `port` has a packet; false if the sandbox exits.
bool wait_for_packet(Started& s, std::string& text) {
  for (;;) {
    pollfd fds[3] = {{s.worker.pidfd().get(), POLLIN, 0},
                     {s.worker.notify_fd().get(), POLLIN, 0},
                     {s.port.fd().get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) continue;
    if (fds[1].revents != 0) (void)s.worker.handle_violation();
    if (fds[2].revents & POLLIN) {
      auto packet = s.port.receive();
      if (!packet) return false;
      text.assign(reinterpret_cast<const char*>(packet->bytes.data()), packet->bytes.size());
      return true;
    }
    if (fds[0].revents != 0 || fds[2].revents != 0) return false;
  }
}

// True when /proc/<pid>/status shows the process dead, a zombie, or with
// SIGKILL (bit 9) pending for the thread or the group.
bool dying(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return true;
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("State:", 0) == 0 && line.find('Z') != std::string::npos) return true;
    if (line.rfind("SigPnd:", 0) == 0 || line.rfind("ShdPnd:", 0) == 0) {
      unsigned long long mask = std::stoull(line.substr(line.find(':') + 1), nullptr, 16);
      if ((mask & (1ull << (9 - 1))) != 0) return true;
    }
  }
  return false;
}

// The thread's task disappears from /proc once exit_notify() (which sends
// parent-death signals) has run. Bounded: 1000000 checks of a few µs each.
bool thread_released(pid_t tid) {
  std::string path = "/proc/self/task/" + std::to_string(tid);
  for (int i = 0; i < 1000000; ++i) {
    if (::access(path.c_str(), F_OK) != 0) return true;
    std::this_thread::yield();
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return fail("usage: mini_supervisor <process|thread> <program> <marker>");
  std::string mode = argv[1];
  std::optional<capsa::Result<Started>> started;
  pid_t spawner_tid = 0;
  if (mode == "thread") {
    std::thread t([&] {
      spawner_tid = static_cast<pid_t>(::syscall(SYS_gettid));
      started = start(argv[2], argv[3]);
    });
    t.join();
  } else {
    started = start(argv[2], argv[3]);
  }
  if (!started) return fail("spawn did not run");
  if (!*started) return fail("spawn: " + started->error().to_string());
  Started& s = **started;
  std::string text;
  // The worker's own packets come first; wait for the grandchild's.
  while (text != "sleeper ready") {
    if (!wait_for_packet(s, text)) return fail("sandbox ended before the grandchild was ready");
  }
  if (mode == "thread" && !thread_released(spawner_tid)) return fail("spawning thread lingers");
  std::printf("ready %d %s\n", s.worker.pid(), dying(s.worker.pid()) ? "dying" : "alive");
  std::printf("copies %s\n", capsa::sandbox::detail::program_copies_dir().c_str());
  std::fflush(stdout);
  if (mode == "exit") return 0;
  for (;;) {
    pollfd fds[2] = {{s.worker.pidfd().get(), POLLIN, 0}, {s.worker.notify_fd().get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) (void)s.worker.handle_violation();
    if (fds[0].revents != 0) return fail("sandbox exited");
  }
}
