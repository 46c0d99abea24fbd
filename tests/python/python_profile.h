// Test support: policies for Python plugins and a run of one policy under
// the real supervisor, shared by tests/python and tests/conformance.
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/loader.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"

namespace capsa::testing {

// The profile of docs/PYTHON.md, "The sandbox profile": what a Python
// plugin (a zip application from capsa_python_plugin) needs on top of a
// C++ plugin's worker entry, so that Python starts with no seccomp
// violation. Kept in step with examples/pywordcount.json.
inline void add_python_profile(nlohmann::json& worker) {
  worker["env"] = {"LANG=C.UTF-8", "HOME=/tmp", "PYTHONNOUSERSITE=1", "PYTHONDONTWRITEBYTECODE=1"};
  worker["limits"]["memory"] = "256M";
}

// One policy run to its end: the workers' lines, the audit log, the views.
class PolicyRun {
 public:
  explicit PolicyRun(const std::string& dir) : dir_(dir), audit_(dir + "/audit.jsonl") {}

  // Where ${bin} points (default: the test's bin dir) and the launcher
  // (default: the build's), for a run from a private checkout.
  std::string bin = test_bin_dir();
  std::string launcher;

  // Writes `policy` to DIR/policy.json, loads it and runs every worker
  // until all have ended.
  void run(const nlohmann::json& policy) {
    const std::string path = dir_ + "/policy.json";
    std::ofstream(path) << policy.dump(2);
    supervisor::SupervisorOptions o;
    o.audit_log_path = audit_;
    if (!launcher.empty()) o.launcher = launcher;
    log.install(o);
    policy::LoadOptions load;
    load.defines["bin"] = bin;
    auto p = policy::load_policy_file(path, supervisor::Supervisor::api_catalog(o), load);
    ASSERT_TRUE(p) << policy::format_diagnostics(p.error());
    auto s = supervisor::Supervisor::create(std::move(*p), std::move(o));
    ASSERT_TRUE(s) << s.error().to_string();
    sup = std::move(*s);
    supervisor::testing::start_and_run(*sup);
  }

  std::vector<std::string> audit() const { return supervisor::testing::audit_lines(audit_); }
  supervisor::WorkerView view(const std::string& w) const {
    return supervisor::testing::worker_view(*sup, w);
  }

  supervisor::testing::LogCapture log;
  std::unique_ptr<supervisor::Supervisor> sup;

 private:
  std::string dir_;
  std::string audit_;
};

}  // namespace capsa::testing
