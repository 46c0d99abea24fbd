// SDK conformance (docs/PYTHON.md, "Conformance"): scenario.json, run by
// the C++ SDK's runner and by the Python SDK's, each in the real sandbox
// under the real supervisor; every step's logged result must be the one
// the scenario expects, the audit log must hold the scenario's lines, and
// the worker must end with its exit code and no seccomp violation.
// Through capsa_add_sandbox_test it runs as root and as uid 65534.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/python/python_profile.h"
#include "tests/support/temp_dir.h"

namespace capsa::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

struct Sdk {
  const char* name;
  const char* program;  // in the test's bin dir
  bool python;
};

void PrintTo(const Sdk& s, std::ostream* os) { *os << s.name; }

class ConformanceTest : public ::testing::TestWithParam<Sdk> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    scenario_ = read_json(test_bin_dir() + "/conformance-scenario.json");
    texts_ = tmp_.path() + "/texts";
    for (const auto& [rel, content] : scenario_.at("files").items()) {
      fs::create_directories(fs::path(texts_ / fs::path(rel)).parent_path());
      std::ofstream(texts_ / fs::path(rel)) << content.get<std::string>();
    }
  }

  // The scenario's policy for one runner: its grants ("root": the files),
  // the steps as the runner's one argument, without their expectations (a
  // runner cannot pass by echoing them).
  json policy() const {
    const json& p = scenario_.at("policy");
    json steps = scenario_.at("steps");
    for (json& s : steps) s.erase("expect");
    json worker = {{"name", "runner"},
                   {"program", "${bin}/" + std::string(GetParam().program)},
                   {"args", {steps.dump()}},
                   {"limits", {{"memory", "128M"}, {"processes", 1}, {"wall_seconds", 60}}},
                   {"on_bad_message", p.at("on_bad_message")},
                   {"grants", json::array()}};
    for (json g : p.at("grants")) {
      if (g.value("root", false)) g["constraints"] = {{"root", texts_.string()}};
      g.erase("root");
      worker["grants"].push_back(g);
    }
    if (GetParam().python) add_python_profile(worker);
    return {{"workers", {worker}}};
  }

  TempDir tmp_;
  json scenario_;
  fs::path texts_;
};

TEST_P(ConformanceTest, EveryStepGivesTheExpectedResult) {
  PolicyRun run(tmp_.path());
  // "please revoke IFACE": the runner's ask_revoke step. Revoked on the
  // loop thread before its log write is answered, so the runner's next
  // step sees it.
  run.log.on_line = [&](const std::string&, const std::string& text) {
    if (!text.starts_with("please revoke ")) return;
    for (const auto& g : run.sup->grants()) {
      if (g.interface == text.substr(14) && g.state == supervisor::GrantState::kLive) {
        ASSERT_TRUE(run.sup->revoke(g.id, "conformance"));
      }
    }
  };
  run.run(policy());

  std::vector<std::string> expected, got;
  int n = 0;
  for (const json& step : scenario_.at("steps")) {
    expected.push_back("step " + std::to_string(++n) + " " + step.at("do").get<std::string>() +
                       ": " + step.at("expect").get<std::string>());
  }
  for (const auto& line : run.log.said("runner")) {
    if (line.starts_with("step ")) got.push_back(line);
  }
  EXPECT_EQ(got, expected);

  auto audit = run.audit();
  for (const json& a : scenario_.at("audit")) {
    std::vector<std::string> has = a.at("has");
    std::size_t count = 0;
    for (const auto& l : audit) {
      bool all = true;
      for (const auto& h : has) all = all && l.find(h) != std::string::npos;
      count += all ? 1 : 0;
    }
    EXPECT_EQ(count, a.at("count").get<std::size_t>()) << a.dump();
  }
  auto v = run.view("runner");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited);
  EXPECT_EQ(v.exit->code, scenario_.at("exit_code").get<int>());
  EXPECT_EQ(v.violations, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sdks, ConformanceTest,
                         ::testing::Values(Sdk{"cpp", "conformance_runner", false},
                                           Sdk{"python", "conformance_runner_py", true}),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace capsa::testing
