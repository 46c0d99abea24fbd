// capsa sandbox suite — the harness: run one hostile worker to the end and
// collect everything the sandbox said about it.
//
// A run services the worker the way a supervisor must: it answers seccomp
// notifications as they arrive (a worker blocked in a notified syscall cannot
// make progress otherwise), reads the bootstrap port, enforces the wall-clock
// deadline with Worker::expire(), and reaps through the pidfd. Nothing here
// sleeps or measures time: every wait is on a kernel event, bounded by the
// spec's wall-clock limit.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/fd.h"
#include "capabilities/port.h"
#include "sandbox/sandbox.h"
#include "sandbox/spec.h"

namespace capsa::sandbox::testing {

// Where a helper program built next to the suite lives:
// $CAPSA_TEST_BIN_DIR/<name> when set (the unprivileged pass copies binaries
// where uid 65534 can read them), else the directory of this test binary.
std::string helper_path(std::string_view name);

// Limits small enough that the limit tests finish fast on a loaded 2-core
// machine, large enough for every honest worker: 2 s CPU, 20 s wall (the
// safety net that bounds every run), 256 MiB address space, 32 processes,
// 64 fds, 8 MiB files.
Limits small_limits();

// A spec builder for `hostile_worker <attack> [args...]` with small_limits().
SpecBuilder hostile_spec(std::string_view attack, std::vector<std::string> args = {});

// Everything observed about one worker, from spawn to reap.
struct Outcome {
  ExitStatus status;
  std::vector<Violation> violations;  // in the order they were answered
  std::vector<std::string> reports;   // packets from the worker, in order
};

// Called for every report; may answer on the port (e.g. the ping of hello).
using OnReport = std::function<void(const std::string& report, Port& port)>;

// A started worker and our end of its bootstrap port.
struct Running {
  Worker worker;
  Port port;
};

// Spawns `spec` with a fresh channel as its bootstrap port (and `stdio` as
// the worker's stdout/stderr where given). Fails the current test (and
// returns an error) when the spawn fails.
Result<Running> start(const Spec& spec, StdioFds stdio = {});

// The same with the host files opened beforehand (sandbox::open_host_files):
// the sandbox gets those, whatever happened to their paths since.
Result<Running> start(const Spec& spec, const HostFiles& files);

// Answers the well-behaved worker's "hello ready" with "ping".
void answer_ping(const std::string& report, Port& port);

// Services `run` until the sandbox has exited and been reaped.
Outcome finish(Running& run, const OnReport& on_report = {});

// spawn + finish, for the common case.
Outcome run_spec(const Spec& spec, const OnReport& on_report = {});
Outcome run_attack(std::string_view attack, std::vector<std::string> args = {},
                   ViolationAction action = ViolationAction::kErrno);

// The control group: a well-behaved worker spawns, says hello, answers ping
// with pong and exits 0, with no violation. Uses gtest assertions.
void expect_still_serves();

// Splits a report "attack k=v k=v" into {"attack": "", "k": "v", ...}.
std::map<std::string, std::string> parse_report(std::string_view report);

// Names of the syscalls in `violations`, in order.
std::vector<std::string> syscall_names(const std::vector<Violation>& violations);

// The verdict of an attack the worker survived: exactly the one report
// `report`, exactly the violations `syscalls` (names, in order; none by
// default) and a normal exit, not a kill or a limit. Uses gtest assertions.
void expect_verdict(const Outcome& out, const std::string& report,
                    const std::vector<std::string>& syscalls = {});

// Pids whose parent is this process (any thread of it).
std::vector<int> child_pids();

// Pids on the host whose command line contains `marker`.
std::vector<int> pids_with_marker(std::string_view marker);

}  // namespace capsa::sandbox::testing
