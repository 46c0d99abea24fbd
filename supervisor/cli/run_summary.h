// capsa — what `capsa run` reports when its workers have ended: the exit
// status it returns, the summary table, and the same as JSON (--json).
//
// Exit status (the convention of bwrap, `docker run` and `systemd-run
// --wait`: the child's status passes through):
//   - a worker that exited with code N:        N
//   - a worker ended by signal S:              128 + S (SIGKILL: 137; this
//     covers a kill by the supervisor: a limit, a bad message, SIGTERM to capsa)
//   - a worker that did not start:             kExitDidNotStart (126)
// With several workers, the status of the first one *in policy order* that
// did not exit 0 (not the first to end: the same run gives the same status
// whatever the timing); 0 when all exited 0. A status can collide with
// capsa's own (2 = invalid policy): the --json summary tells them apart.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "supervisor/views.h"

namespace capsa::cli {

inline constexpr int kExitDidNotStart = 126;

// One worker's contribution to the exit status (0 = success).
int worker_exit_status(const supervisor::WorkerView& w);
// The status `capsa run` returns for all of them (rule above).
int run_exit_status(const std::vector<supervisor::WorkerView>& workers);

// "exited 0", "killed (signal 9)", "did not start", ...
std::string status_text(const supervisor::WorkerView& w);

// The table for people: one row per worker (status, CPU, peak memory, wall
// time, calls, denials, violations). Why a worker did not start is in the
// supervisor's log, printed when it happened, not repeated here.
void print_summary_table(const std::vector<supervisor::WorkerView>& workers, std::ostream& out);

// One line of JSON: {"exit_status": N, "workers": [{"name", "status",
// "exit_code", "signal", "exit_status", "cpu_seconds", "peak_memory_bytes",
// "wall_seconds", "calls", "denials", "bad_messages", "violations",
// "grants", "error"}]}; exit_code and signal are null when they do not
// apply, error is the reason a worker did not start (or absent).
std::string summary_json(const std::vector<supervisor::WorkerView>& workers, int exit_status);

}  // namespace capsa::cli
