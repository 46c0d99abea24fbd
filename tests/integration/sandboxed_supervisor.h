// Test support for the integration suites: a Supervisor of real sandboxed
// workers (it_worker), with the launcher and the worker kept where an
// operator may keep them: inside a 0700 directory of the supervisor's user
// (tests/support/private_checkout.h), which the sandbox's uid cannot enter
// when the supervisor is root.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/support/private_checkout.h"

namespace capsa::supervisor::testing {

class SandboxedSupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    it_worker_ = checkout_.add_program(test_bin_dir() + "/it_worker");
    audit_path_ = tmp_.path() + "/audit.jsonl";
  }

  // The supervisor of the policy `fill` builds, its audit log at
  // audit_path_, the checkout's launcher, worker lines to log_ unless `o`
  // routes them.
  void make(const std::function<void(policy::PolicyBuilder&)>& fill, SupervisorOptions o = {}) {
    o.audit_log_path = audit_path_;
    o.launcher = checkout_.launcher();
    if (!o.log_output) log_.install(o);
    sup_ = make_supervisor(std::move(o), fill);
    ASSERT_NE(sup_, nullptr);
  }

  TempDir tmp_;
  capsa::testing::PrivateCheckout checkout_{sandbox::default_launcher_path()};
  std::string it_worker_;  // the private copy
  std::string audit_path_;
  LogCapture log_;
  std::unique_ptr<Supervisor> sup_;
};

}  // namespace capsa::supervisor::testing
