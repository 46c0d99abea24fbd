// capsa policy — the sandbox a worker profile asks for.
//
// The one translation from a checked WorkerProfile to the sandbox::Spec that
// spawn() takes: the supervisor starts every worker with it, and the policy
// check builds it too (builder_checks.cc), so whatever the sandbox would
// refuse at start is refused by `capsa check` first.
#pragma once

#include <string>

#include "capabilities/error.h"
#include "policy/model.h"
#include "sandbox/spec.h"

namespace capsa::policy {

// The spec, or the sandbox's reasons (one line each after the first).
// `launcher` "" = sandbox::default_launcher_path().
Result<sandbox::Spec> sandbox_spec(const WorkerProfile& profile, const std::string& launcher);

}  // namespace capsa::policy
