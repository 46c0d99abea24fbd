// The example plugins in the real sandbox (bubblewrap, seccomp, rlimits:
// capsa::sandbox::spawn), with the limits of their example policies, their
// bootstrap port served by a PluginHost. This is what the supervisor will
// do, minus the supervisor: it checks that the plugins start and work
// inside the sandbox (no sanitizer runtime, 64-128 MiB of address space,
// one process) and that the hostile plugin's first two attempts get the
// sandbox's verdicts (ENOENT, EPERM plus one reported violation).
//
// Registered with capsa_add_sandbox_test: it runs as the ctest user and as
// uid 65534. The plugins are found next to this binary (CAPSA_PLUGIN_DIR),
// or in $CAPSA_TEST_BIN_DIR when capsa-run-unprivileged copied them.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>

#include "sandbox/sandbox.h"
#include "tests/support/read_fd.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_programs.h"
#include "workers/examples/testdata/plugin_checks.h"
#include "workers/examples/testdata/plugin_host.h"

namespace capsa::examples::testing {
namespace {

// The limits of the example policies (examples/*.json) that the sandbox
// applies itself.
sandbox::Limits policy_limits(std::uint64_t memory_mib, std::uint64_t open_files) {
  sandbox::Limits l;
  l.address_space_bytes = memory_mib << 20;
  l.max_processes = 1;
  l.max_open_files = open_files;
  l.cpu_seconds = 5;
  l.wall_seconds = 30;
  l.max_file_size_bytes = 16ull << 20;  // fixed for policy workers (policy::kFileSizeLimitBytes)
  return l;
}

struct Ended {
  sandbox::ExitStatus status;
  std::string out;
  std::string err;
  std::vector<sandbox::Violation> violations;
};

// Starts plugin `name` in the sandbox, waits for its end (answering seccomp
// notifications meanwhile) and collects its output and violations.
// Outputs are a few lines, well under a pipe's 64 KiB, so reading them
// after the end cannot block the plugin.
class Sandboxed {
 public:
  Sandboxed(const std::string& name, std::vector<std::string> args, const sandbox::Limits& limits,
            Port bootstrap) {
    std::string program = capsa::testing::test_program(name);
    args.insert(args.begin(), name);
    auto spec = sandbox::SpecBuilder()
                    .name(name)
                    .program(program)
                    .args(std::move(args))
                    .limits(limits)
                    .stdout_to(sandbox::Output::kPipe)
                    .stderr_to(sandbox::Output::kPipe)
                    .build();
    if (!spec) {
      ADD_FAILURE() << spec.error().to_string();
      return;
    }
    auto w = sandbox::spawn(*spec, bootstrap.release_fd());
    if (!w) {
      ADD_FAILURE() << "spawn " << name << ": " << w.error().to_string();
      return;
    }
    worker_.emplace(std::move(*w));
  }

  bool started() const { return worker_.has_value(); }

  Ended wait() {
    Ended e;
    auto status = worker_->wait([&](const sandbox::Violation& v) { e.violations.push_back(v); });
    if (!status) {
      ADD_FAILURE() << "wait: " << status.error().to_string();
      return e;
    }
    e.status = *status;
    e.out = capsa::testing::read_available(worker_->stdout_pipe());
    e.err = capsa::testing::read_available(worker_->stderr_pipe());
    return e;
  }

 private:
  std::optional<sandbox::Worker> worker_;
};

// The sample texts in a scratch directory of ours, from the copies next to
// the test binary (example-text-NAME, workers/examples/CMakeLists.txt): the
// source tree may sit in a private directory that the uid-65534 pass cannot
// read.
class SampleTexts {
 public:
  SampleTexts() {
    std::filesystem::create_directories(dir());
    for (const auto& e : std::filesystem::directory_iterator(capsa::testing::test_bin_dir())) {
      const std::string name = e.path().filename().string();
      if (name.starts_with(kPrefix)) {
        std::filesystem::copy_file(e.path(), dir() / name.substr(kPrefix.size()));
      }
    }
  }
  std::filesystem::path dir() const { return std::filesystem::path(tmp_.path()) / "texts"; }

 private:
  static constexpr std::string_view kPrefix = "example-text-";
  capsa::testing::TempDir tmp_{"capsa-sample-texts"};
};

bool exited_zero(const Ended& e) {
  return e.status.kind == sandbox::ExitKind::kExited && e.status.code == 0;
}

TEST(PluginsInTheSandbox, WordcountCountsTheSampleTexts) {
  PluginHost host;
  SampleTexts texts;
  host.add_directory("texts", texts.dir());
  host.add_log("log");
  Sandboxed w("wordcount", {"--texts", "texts"}, policy_limits(128, 32), host.start());
  ASSERT_TRUE(w.started());
  auto e = w.wait();
  EXPECT_TRUE(exited_zero(e)) << e.status.to_string() << "\n" << e.err;
  EXPECT_TRUE(e.violations.empty());

  std::ifstream in(texts.dir() / "expected_top10.out");
  std::stringstream expected;
  expected << in.rdbuf();
  ASSERT_FALSE(expected.str().empty());
  EXPECT_EQ(host.log_lines(), split_lines(expected.str()));
}

TEST(PluginsInTheSandbox, AskerAndCounterTalkOverTheirChannel) {
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  auto asker_host = std::make_unique<PluginHost>();
  asker_host->add_log("log");
  asker_host->add_channel_end("wordcount", "demo.WordCount", std::move(channel->first));
  PluginHost counter_host;
  counter_host.add_log("log");
  counter_host.add_channel_end("wordcount", "demo.WordCount", std::move(channel->second));

  Sandboxed counter("counter", {}, policy_limits(64, 32), counter_host.start());
  ASSERT_TRUE(counter.started());
  Sandboxed asker("asker", {}, policy_limits(64, 32), asker_host->start());
  ASSERT_TRUE(asker.started());
  auto a = asker.wait();
  auto asker_log = asker_host->log_lines();
  asker_host.reset();  // closes the asker's end if it never took it
  auto c = counter.wait();

  EXPECT_TRUE(exited_zero(a)) << a.status.to_string() << "\n" << a.err;
  EXPECT_TRUE(exited_zero(c)) << c.status.to_string() << "\n" << c.err;
  EXPECT_TRUE(a.violations.empty());
  EXPECT_TRUE(c.violations.empty());
  // The exact lines are checked by example_plugins_test; here: every
  // answer came back, the blob one included, and the counter saw the end.
  ASSERT_EQ(asker_log.size(), 5u);
  EXPECT_TRUE(asker_log[3].starts_with("answer 3 (sealed blob, 204000 bytes sent): 36000 words"))
      << asker_log[3];
  auto counter_log = counter_host.log_lines();
  ASSERT_EQ(counter_log.size(), 5u);
  EXPECT_EQ(counter_log[4], "the asker closed the channel after 3 requests; exiting");
}

TEST(PluginsInTheSandbox, HostileGetsTheSandboxVerdicts) {
  PluginHost host;
  SampleTexts texts;
  add_hostile_grants(host, texts.dir());
  Sandboxed w("hostile", {}, policy_limits(64, 16), host.start());
  ASSERT_TRUE(w.started());
  auto e = w.wait();
  // This host closes the abused port instead of killing (the supervisor's
  // "kill" is tested under `capsa run`), so the plugin survives step e.
  EXPECT_TRUE(exited_zero(e)) << e.status.to_string() << "\n" << e.err;
  auto out = split_lines(e.out);
  expect_hostile_capability_steps(out);
  ASSERT_EQ(out.size(), 7u) << e.out;
  EXPECT_EQ(out[0], "hostile: a read /etc/passwd: refused (ENOENT)");
  EXPECT_EQ(out[1], "hostile: b socket(AF_INET, SOCK_STREAM): refused (EPERM)");
  ASSERT_EQ(e.violations.size(), 1u);
  EXPECT_EQ(e.violations[0].syscall, "socket");
  EXPECT_EQ(e.violations[0].action, sandbox::ViolationAction::kErrno);
  EXPECT_EQ(host.refusals(), (Lines{"not found: secrets", "denied: texts", "bad message: log"}));
}

}  // namespace
}  // namespace capsa::examples::testing
