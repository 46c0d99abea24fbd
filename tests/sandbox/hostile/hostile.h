// capsa hostile worker — shared declarations.
//
// `hostile_worker <attack> [arg]` performs exactly one attack against the
// sandbox it runs in, with raw syscalls, and reports what the kernel answered
// as one text packet on fd 3 (the bootstrap port):
//
//   "<attack> <key>=<value> <key>=<value> ..."
//
// where a value is `ok`, a number, or an errno name (`EPERM`). The test
// compares that line with the exact verdict it expects, so it can tell "the
// kernel said no" (an errno in the report) from "the sandbox never let it try"
// (a seccomp violation, the process killed, no report at all).
//
// This program is the attacker: it uses raw fds and raw syscalls on purpose
// (no capsa library), and it never tries to be tidy beyond what keeps the
// attack bounded. Every attack that could hurt the host if the sandbox failed
// (fork bomb, memory bomb, filling /tmp, CPU spin) stops itself at a cap far
// above any limit the tests configure, and says "unbounded" when it does, so a
// broken sandbox fails the test instead of taking the machine down.
#pragma once

#include <cstddef>

namespace hostile {

// The bootstrap port the sandbox leaves open for every worker.
inline constexpr int kPortFd = 3;

// Sends one report packet on fd 3 (falls back to stdout when fd 3 is not a
// socket, which makes the program usable by hand). printf-style.
[[gnu::format(printf, 1, 2)]] void report(const char* fmt, ...);

// "ok" for rc >= 0, else the errno name of `err` ("EPERM").
const char* outcome(long rc, int err);

// Runs one attack; returns the process exit code. `arg` may be null.
using Attack = int (*)(const char* arg);

struct AttackEntry {
  const char* name;
  Attack run;
};

// Attack tables, one per file, each terminated by {nullptr, nullptr}.
extern const AttackEntry kFsAttacks[];
extern const AttackEntry kNetAttacks[];
extern const AttackEntry kKernelAttacks[];
extern const AttackEntry kProcessAttacks[];
extern const AttackEntry kLimitAttacks[];
extern const AttackEntry kViewAttacks[];
extern const AttackEntry kMemoryAttacks[];

}  // namespace hostile
