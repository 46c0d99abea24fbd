// A minimal supervisor for lifetime_test: sandbox_test_supervisor MODE
// WORKER MARKER. Spawns WORKER in mode "echo" with CAPSA_MARKER=MARKER in
// its environment (inherited by its descendants, so the test can find them
// all in /proc), from a thread that exits right after the spawn. Then:
//   MODE "hold": prints "ready" and waits forever (the test SIGKILLs us);
//   MODE "thread": checks the worker still answers after the spawning
//   thread is gone, prints "alive" or "dead", exits.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include "sandbox/sandbox.h"
#include "sandbox/testdata/test_limits.h"

using namespace capsa;
using namespace capsa::sandbox;

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  std::string mode = argv[1];
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return 3;
  Fd ours(sv[0]);
  std::optional<Worker> worker;
  pid_t spawner_tid = 0;
  std::thread t([&] {
    spawner_tid = ::gettid();
    auto spec = SpecBuilder().name("lifetime").program(argv[2])
                    .args({"worker", "echo"}).env("CAPSA_MARKER", argv[3])
                    .limits(capsa::testing::sandbox_test_limits()).build();
    if (!spec) return;
    auto w = spawn(*spec, Fd(sv[1]));
    if (!w) {
      std::fprintf(stderr, "%s\n", w.error().to_string().c_str());
      return;
    }
    worker.emplace(std::move(*w));
  });
  t.join();
  if (!worker) return 4;
  // The thread is gone from /proc only after the kernel has done its exit
  // work, including any parent-death signal it would send.
  std::string task = "/proc/self/task/" + std::to_string(spawner_tid);
  struct stat st {};
  while (::stat(task.c_str(), &st) == 0) ::usleep(1000);
  char buf[16];
  bool alive = ::send(ours.get(), "ping", 4, MSG_NOSIGNAL) == 4 &&
               ::recv(ours.get(), buf, sizeof buf, 0) == 4;
  if (mode == "thread") {
    std::printf("%s\n", alive ? "alive" : "dead");
    return 0;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
