// capsa — where `capsa run` writes its audit log when --audit-log is not
// given, so an operator never finds (or loses) one in whatever directory
// they ran from.
//
//   as root (euid 0):  /var/log/capsa/audit.jsonl
//   otherwise:         $XDG_STATE_HOME/capsa/audit.jsonl, where an unset or
//                      relative XDG_STATE_HOME means ~/.local/state (the XDG
//                      Base Directory rule: state that survives restarts,
//                      such as logs)
//
// Every run appends to the same file; each line names its worker, and
// `worker_started` lines mark where a run began. Missing directories are
// created, readable by their owner only (an audit log says what a worker
// tried to reach).
#pragma once

#include <sys/types.h>

#include <string>

#include "capabilities/error.h"

namespace capsa::cli {

// The path by the rule above; an error when it needs HOME and there is none.
Result<std::string> default_audit_log_path(uid_t euid, const char* xdg_state_home, const char* home);

// Creates the missing directories above `file` (mode 0700); those that
// exist are left as they are.
Result<void> make_parent_directories(const std::string& file);

}  // namespace capsa::cli
