// capsa — the audit report the control socket sends (capsa.control
// .AuditReport in supervisor/control.fbs): the grant table and the workers,
// each live grant checked against the kernel (supervisor/control/proc_fds.h).
//
// Built off the loop thread from a snapshot taken on it: the /proc scan
// blocks, and 10,000 grants make a report of a few megabytes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "supervisor/control/proc_fds.h"
#include "supervisor/supervisor.h"

namespace capsa::supervisor {

struct ReportInput {
  std::vector<GrantView> grants;
  std::vector<WorkerView> workers;
  pid_t supervisor_pid = 0;
  std::chrono::system_clock::time_point now;
  ProcScanLimits limits;
};

// The finished AuditReport flatbuffer (file identifier "CPAR"). Runs the
// kernel check for every live grant; ended grants get KernelVerdict
// Unknown with an empty detail (there is nothing left to hold).
std::vector<std::uint8_t> build_audit_report(const ReportInput& input);

}  // namespace capsa::supervisor
