// capsa hostile worker — entry point, report channel and the well-behaved
// modes the suite uses as its control group.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {

void report(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0) return;
  auto len = static_cast<std::size_t>(n) < sizeof(buf) ? static_cast<std::size_t>(n)
                                                        : sizeof(buf) - 1;
  if (::send(kPortFd, buf, len, MSG_NOSIGNAL) < 0) {
    buf[len] = '\n';
    (void)!::write(STDOUT_FILENO, buf, len + 1);
  }
}

const char* outcome(long rc, int err) {
  if (rc >= 0) return "ok";
  const char* name = ::strerrorname_np(err);
  return name != nullptr ? name : "E?";
}

namespace {

// The well-behaved worker: says hello, answers one ping with pong, exits 0.
int hello(const char*) {
  report("hello ready");
  char buf[64];
  ssize_t n = ::recv(kPortFd, buf, sizeof(buf), 0);
  if (n != 4 || std::memcmp(buf, "ping", 4) != 0) return 2;
  report("pong");
  return 0;
}

// Reports and exits with the code given as argument: lets the suite check
// that exit statuses are passed through exactly.
int exit_with(const char* arg) {
  report("exit_with ready");
  return arg != nullptr ? std::atoi(arg) : 0;
}

const AttackEntry kBasic[] = {
    {"hello", hello},
    {"exit_with", exit_with},
    {nullptr, nullptr},
};

const AttackEntry* const kTables[] = {kBasic,          kFsAttacks,      kNetAttacks,
                                      kKernelAttacks,  kProcessAttacks, kLimitAttacks,
                                      kViewAttacks,    kMemoryAttacks};

}  // namespace
}  // namespace hostile

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: hostile_worker <attack> [arg]\n");
    return 64;
  }
  const char* arg = argc > 2 ? argv[2] : nullptr;
  for (const hostile::AttackEntry* table : hostile::kTables) {
    for (const hostile::AttackEntry* e = table; e->name != nullptr; ++e) {
      if (std::strcmp(e->name, argv[1]) == 0) return e->run(arg);
    }
  }
  std::fprintf(stderr, "hostile_worker: unknown attack %s\n", argv[1]);
  return 64;
}
