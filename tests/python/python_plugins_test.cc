// Python plugins (workers/python) in the real sandbox under the real
// supervisor: the examples' exact output, a Python server talking to a C++
// client, the supervisor's verdict on a Python worker's bad message, and
// Python's start-up with and without the profile of docs/PYTHON.md
// (seccomp violations counted from the audit log). The conformance suite
// (tests/conformance) covers calls, denials and revocation step by step.
// Runs as root and as uid 65534 (capsa_add_sandbox_test).
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/python/python_profile.h"
#include "tests/support/private_checkout.h"
#include "tests/support/temp_dir.h"

namespace capsa::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using supervisor::testing::count_lines_with;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

json python_worker(const std::string& name, const std::string& program, json args = json::array()) {
  json w = {{"name", name},
            {"program", "${bin}/" + program},
            {"args", std::move(args)},
            {"limits", {{"processes", 1}, {"wall_seconds", 60}}},
            {"grants", {{{"name", "log"}, {"api", "log.Sink"}, {"rights", {"Write"}}}}}};
  add_python_profile(w);
  return w;
}

class PythonPluginsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  TempDir tmp_;
};

// examples/pywordcount.json as shipped, on the sample texts: the C++
// wordcount's expected output, line for line, from a private checkout.
TEST_F(PythonPluginsTest, PyWordcountLogsTheTopWordsOfTheSampleTexts) {
  const fs::path examples = fs::path(tmp_.path()) / "examples";
  fs::create_directories(examples / "texts");
  for (const auto& e : fs::directory_iterator(test_bin_dir())) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("example-text-")) fs::copy_file(e.path(), examples / "texts" / name.substr(13));
  }
  json policy = json::parse(read_all(test_bin_dir() + "/example-policy-pywordcount.json"), nullptr,
                            true, /*ignore_comments=*/true);
  policy["workers"][0]["grants"][0]["constraints"]["root"] = (examples / "texts").string();
  PolicyRun run(tmp_.path());
  // From a checkout in a 0700 directory of the supervisor's user (a clone
  // under /root), which the sandbox's uid cannot enter when we are root:
  // the plugin reaches the sandbox as an open file, the interpreter from /usr.
  PrivateCheckout checkout(sandbox::default_launcher_path());
  checkout.add_program(test_bin_dir() + "/pywordcount");
  run.bin = checkout.plugins();
  run.launcher = checkout.launcher();
  run.run(policy);
  std::string got;
  for (const auto& l : run.log.said("pywordcount")) got += l + "\n";
  EXPECT_EQ(got, read_all(examples / "texts" / "expected_top10.out"));
  auto v = run.view("pywordcount");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited);
  EXPECT_EQ(v.exit->code, 0);
  EXPECT_EQ(v.denials, 0u);
  EXPECT_EQ(v.violations, 0u);
}

// The Python SDK's Server behind a channel, the C++ asker in front: inline
// text and a sealed blob, each validated by the Python side.
TEST_F(PythonPluginsTest, PyCounterServesTheCppAsker) {
  json asker = {{"name", "asker"},
                {"program", "${bin}/asker"},
                {"limits", {{"memory", "64M"}, {"processes", 1}, {"wall_seconds", 60}}},
                {"grants", {{{"name", "log"}, {"api", "log.Sink"}, {"rights", {"Write"}}}}}};
  json counter = python_worker("pycounter", "pycounter");
  counter["on_bad_message"] = "close_port";
  json policy = {{"workers", {asker, counter}},
                 {"channels", {{{"name", "wordcount"}, {"interface", "demo.WordCount"},
                                {"client", "asker"}, {"server", "pycounter"}}}}};
  PolicyRun run(tmp_.path());
  run.run(policy);
  auto has = [&](const std::string& w, const std::string& prefix) {
    for (const auto& l : run.log.said(w)) {
      if (l.starts_with(prefix)) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("asker", "answer 1 (inline text, 73 bytes sent): 11 words, 1 lines, 73 bytes"));
  EXPECT_TRUE(has("asker", "answer 3 (sealed blob, 204000 bytes sent): 36000 words, 3000 lines, 204000 bytes"));
  EXPECT_TRUE(has("pycounter", "served Count #3 (sealed blob): 36000 words, 3000 lines, 204000 bytes"));
  EXPECT_TRUE(has("pycounter", "the channel closed after 3 requests"));
  EXPECT_EQ(run.view("asker").exit->code, 0);
  EXPECT_EQ(run.view("pycounter").exit->code, 0);
  EXPECT_EQ(run.view("pycounter").violations, 0u);
}

// A Python worker that sends garbage under on_bad_message "kill": the
// supervisor's verdict, exactly.
TEST_F(PythonPluginsTest, ABadMessageFromAPythonWorkerGetsItKilled) {
  json steps = {{{"do", "get"}, {"grant", "log"}, {"interface", "log.Sink"}, {"as", "victim"}},
                {{"do", "send_garbage"}, {"cap", "victim"}}};
  json w = python_worker("py", "conformance_runner_py", {steps.dump()});
  w["on_bad_message"] = "kill";
  PolicyRun run(tmp_.path());
  run.run({{"workers", {w}}});
  auto v = run.view("py");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kKilled);
  EXPECT_EQ(v.bad_messages, 1u);
  EXPECT_EQ(v.violations, 0u);
  auto a = run.audit();
  EXPECT_EQ(count_lines_with(a, {"\"bad_message\"", "\"kill_worker\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_killed\"", "\"reason\":\"bad message\""}), 1u);
}

// Associated objects (docs/PROTOCOL.md section 8) from Python: files
// opened as objects on the directory's port, read, one detached to a port
// of its own, one released; a call naming the released id (past the SDK,
// which refuses it locally) is answered `not found` and the port keeps
// working. The steps' results are the supervisor's verdicts, exactly.
TEST_F(PythonPluginsTest, AssociatedObjectsFromPython) {
  const fs::path texts = fs::path(tmp_.path()) / "texts";
  fs::create_directories(texts);
  std::ofstream(texts / "a.txt") << "alpha beta\n";
  std::ofstream(texts / "b.txt") << "gamma\n";
  json steps = {
      {{"do", "get"}, {"grant", "texts"}, {"interface", "fs.Directory"}, {"as", "d"}},
      {{"do", "open"}, {"cap", "d"}, {"path", "a.txt"}, {"associated", true}, {"as", "f1"}},
      {{"do", "read"}, {"cap", "f1"}, {"max", 5}},
      {{"do", "open"}, {"cap", "d"}, {"path", "b.txt"}, {"associated", true}, {"as", "f2"}},
      {{"do", "detach"}, {"cap", "f2"}, {"as", "p2"}},
      {{"do", "state"}, {"cap", "f2"}},
      {{"do", "read"}, {"cap", "p2"}, {"max", 100}},
      {{"do", "read"}, {"cap", "f1"}, {"max", 100}},
      {{"do", "release"}, {"cap", "f1"}},
      {{"do", "state"}, {"cap", "f1"}},
      {{"do", "read"}, {"cap", "f1"}, {"max", 5}},
      {{"do", "read_bypassing_sdk"}, {"cap", "f1"}, {"max", 5}},
      {{"do", "list"}, {"cap", "d"}, {"path", "."}},
      {{"do", "state"}, {"cap", "d"}},
      // Attenuate takes a port: the SDK detaches the object first.
      {{"do", "open"}, {"cap", "d"}, {"path", "a.txt"}, {"associated", true}, {"as", "f3"}},
      {{"do", "attenuate"}, {"cap", "f3"}, {"methods", {"Read"}}, {"as", "narrow"}},
      {{"do", "read"}, {"cap", "narrow"}, {"max", 5}},
  };
  json w = python_worker("py", "conformance_runner_py", {steps.dump()});
  w["grants"].push_back({{"name", "texts"},
                         {"api", "fs.Directory"},
                         {"rights", {"Open", "List"}},
                         {"constraints", {{"root", texts.string()}}}});
  PolicyRun run(tmp_.path());
  run.run({{"workers", {w}}});
  std::vector<std::string> got;
  for (const auto& l : run.log.said("py")) {
    if (l.starts_with("step ")) got.push_back(l);
  }
  const std::vector<std::string> expected = {
      "step 1 get: ok rights 0x5",
      "step 2 open: ok",
      "step 3 read: ok \"alpha\"",
      "step 4 open: ok",
      "step 5 detach: ok rights 0x7",
      "step 6 state: ok released",
      "step 7 read: ok \"gamma\\n\"",
      "step 8 read: ok \" beta\\n\"",
      "step 9 release: ok",
      "step 10 state: ok released",
      "step 11 read: error closed",
      "step 12 read_bypassing_sdk: error not found",
      "step 13 list: ok a.txt:11 b.txt:6",
      "step 14 state: ok live",
      "step 15 open: ok",
      "step 16 attenuate: ok rights 0x1",
      "step 17 read: ok \"alpha\"",
  };
  EXPECT_EQ(got, expected);
  auto v = run.view("py");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited);
  EXPECT_EQ(v.exit->code, 0);
  EXPECT_EQ(v.bad_messages, 0u);
  EXPECT_EQ(v.violations, 0u);
  auto a = run.audit();
  // Three objects granted on the directory's port (ids 1 to 3); the first
  // released by the worker, the others consumed by Detach into port-backed
  // grants (the third then attenuated).
  EXPECT_EQ(count_lines_with(a, {"\"grant_created\"", "\"kind\":\"object\"", "\"object\":1"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"grant_created\"", "\"kind\":\"object\"", "\"object\":2"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"released\"", "released by its holder"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"grant_created\"", "\"kind\":\"object\"", "\"object\":3"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"released\"", "detached to grant"}), 2u);
  EXPECT_EQ(count_lines_with(a, {"\"call_denied\"", "no object 1 on this port"}), 1u);
  std::size_t objects = 0;
  for (const auto& g : run.sup->grants(/*include_ended=*/true)) {
    if (g.kind != supervisor::GrantKind::kObject) continue;
    ++objects;
    EXPECT_EQ(g.state, supervisor::GrantState::kReleased) << g.id;
    EXPECT_EQ(g.interface, "fs.File");
  }
  EXPECT_EQ(objects, 3u);
  EXPECT_EQ(run.sup->live_grants(), 0u);
}

// Why the profile sets HOME: without it Python's site module looks the
// user up in the password database, and glibc first tries nscd's socket,
// which the seccomp filter refuses (audited as violations). With the
// profile: none. Both measured on the same plugin.
TEST_F(PythonPluginsTest, PythonStartsWithoutViolationsOnlyWithTheProfile) {
  json steps = {{{"do", "list_grants"}}};
  json with = python_worker("with", "conformance_runner_py", {steps.dump()});
  json without = python_worker("without", "conformance_runner_py", {steps.dump()});
  without["env"] = {"LANG=C.UTF-8"};
  PolicyRun run(tmp_.path());
  run.run({{"workers", {with, without}}});
  EXPECT_EQ(run.view("with").exit->code, 0);
  EXPECT_EQ(run.view("with").violations, 0u);
  EXPECT_EQ(run.view("without").exit->code, 0);
  EXPECT_GE(run.view("without").violations, 1u);
  auto a = run.audit();
  EXPECT_EQ(count_lines_with(a, {"\"seccomp_violation\"", "\"worker\":\"with\""}), 0u);
  EXPECT_EQ(count_lines_with(a, {"\"seccomp_violation\"", "\"worker\":\"without\"", "\"syscall\":\"socket\""}),
            run.view("without").violations);
}

}  // namespace
}  // namespace capsa::testing
