// Every example policy (examples/*.json) run by the real supervisor: the
// example plugins in the real sandbox, their log lines and the audit log
// checked. This is what `capsa run` does (supervisor/cli_run.cc), minus
// the printing; the command line itself is tested in supervisor/.
// Each runs twice: from the build tree, and from a checkout-like layout in
// a 0700 directory of the supervisor's user (a clone under /root: the
// launcher, the plugins and examples/ all inside it), which the sandbox's
// uid cannot enter when the supervisor is root.
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policy/loader.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/support/private_checkout.h"

namespace capsa::supervisor {
namespace {

namespace fs = std::filesystem;
using namespace capsa::supervisor::testing;

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

enum class Layout { kBuildTree, kPrivateCheckout };

std::string layout_name(const ::testing::TestParamInfo<Layout>& info) {
  return info.param == Layout::kBuildTree ? "BuildTree" : "PrivateCheckout";
}

void PrintTo(Layout layout, std::ostream* os) {
  *os << (layout == Layout::kBuildTree ? "build tree" : "private checkout");
}

// The example plugins (workers/examples), next to this binary.
const char* const kPlugins[] = {"wordcount", "asker", "counter", "hostile", "reader"};

class ExamplesTest : public ::testing::TestWithParam<Layout> {
 protected:
  // examples/ rebuilt from the flat copies next to this binary; for the
  // private checkout, inside it, with the plugins and the launcher.
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    examples_ = fs::path(tmp_.path()) / "examples";
    plugins_ = test_bin_dir();
    if (GetParam() == Layout::kPrivateCheckout) {
      checkout_ = std::make_unique<capsa::testing::PrivateCheckout>(sandbox::default_launcher_path());
      examples_ = checkout_->make_dir("examples");
      plugins_ = checkout_->plugins();
      for (const char* p : kPlugins) checkout_->add_program(test_bin_dir() + "/" + p);
    }
    fs::create_directories(examples_ / "texts");
    for (const auto& e : fs::directory_iterator(test_bin_dir())) {
      const std::string name = e.path().filename().string();
      if (name.starts_with("example-policy-")) {
        fs::copy_file(e.path(), examples_ / name.substr(15));
      } else if (name.starts_with("example-text-")) {
        fs::copy_file(e.path(), examples_ / "texts" / name.substr(13));
      }
    }
    ASSERT_TRUE(fs::exists(examples_ / "texts" / "expected_top10.out"));
    audit_path_ = tmp_.path() + "/audit.jsonl";
  }

  void run(const std::string& policy_file) {
    SupervisorOptions o;
    o.audit_log_path = audit_path_;
    if (checkout_) o.launcher = checkout_->launcher();
    log_.install(o);
    policy::LoadOptions load;
    load.defines["bin"] = plugins_;
    auto p = policy::load_policy_file((examples_ / policy_file).string(),
                                      Supervisor::api_catalog(o), load);
    ASSERT_TRUE(p) << policy::format_diagnostics(p.error());
    auto s = Supervisor::create(std::move(*p), std::move(o));
    ASSERT_TRUE(s) << s.error().to_string();
    sup_ = std::move(*s);
    start_and_run(*sup_);
  }

  std::vector<std::string> said(const std::string& w) const { return log_.said(w); }
  WorkerView view(const std::string& name) const { return worker_view(*sup_, name); }

  TempDir tmp_;
  std::unique_ptr<capsa::testing::PrivateCheckout> checkout_;  // kPrivateCheckout only
  fs::path examples_;
  std::string plugins_;
  std::string audit_path_;
  LogCapture log_;
  std::unique_ptr<Supervisor> sup_;
};

TEST_P(ExamplesTest, WordcountLogsTheTopWordsOfTheSampleTexts) {
  run("wordcount.json");
  std::string got;
  for (const auto& l : said("wordcount")) got += l + "\n";
  EXPECT_EQ(got, read_all(examples_ / "texts" / "expected_top10.out"));
  auto v = view("wordcount");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited);
  EXPECT_EQ(v.exit->code, 0);
  EXPECT_EQ(v.denials, 0u);
}

TEST_P(ExamplesTest, AskerAndCounterTalkOverTheirChannel) {
  run("pair.json");
  auto asker = said("asker");
  auto counter = said("counter");
  auto has = [](const std::vector<std::string>& l, const std::string& prefix) {
    return std::any_of(l.begin(), l.end(), [&](const std::string& s) { return s.starts_with(prefix); });
  };
  EXPECT_TRUE(has(asker, "answer 1 (inline text, 73 bytes sent): 11 words, 1 lines, 73 bytes"));
  EXPECT_TRUE(has(asker, "answer 3 (sealed blob, 204000 bytes sent): 36000 words, 3000 lines, 204000 bytes"));
  EXPECT_TRUE(has(counter, "served Count #3 (sealed blob)"));
  EXPECT_EQ(view("asker").exit->code, 0);
  EXPECT_EQ(view("counter").exit->code, 0);
  // The channel is mediated: its two ends are grants, the supervisor
  // relayed the three Counts (counted on the asker's end) and audited the
  // sealed blob that crossed.
  auto a = audit_lines(audit_path_);
  EXPECT_EQ(count_lines_with(a, {"\"grant_created\"", "\"demo.WordCount\""}), 2u);
  EXPECT_EQ(count_lines_with(a, {"\"call_denied\""}), 0u);
  EXPECT_EQ(count_lines_with(a, {"\"handle_passed\"", "\"from\":\"asker\"", "\"to\":\"counter\"",
                                 "\"kind\":\"blob\"", "\"size\":204000"}),
            1u);
  EXPECT_EQ(view("asker").calls, 10u);  // 2 Gets, 5 log writes, 3 Counts
  EXPECT_EQ(view("counter").calls, 7u);
}

TEST_P(ExamplesTest, HostileIsRefusedAtEveryStepAndEachRefusalIsAudited) {
  run("hostile.json");
  const std::vector<std::string> expected = {
      "a read /etc/passwd: refused (ENOENT)",
      "b socket(AF_INET, SOCK_STREAM): refused (EPERM)",
      "c Get \"secrets\" (not granted): refused (not found)",
      "d List on \"texts\" through the SDK: refused (denied), nothing sent",
      "d List on \"texts\" bypassing the SDK: refused (denied)",
  };
  auto l = said("hostile");
  for (const auto& e : expected) {
    EXPECT_NE(std::find(l.begin(), l.end(), e), l.end()) << e;
  }
  auto v = view("hostile");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kKilled);  // its bad message
  EXPECT_EQ(v.bad_messages, 1u);
  EXPECT_EQ(v.violations, 1u);
  auto a = audit_lines(audit_path_);
  EXPECT_EQ(count_lines_with(a, {"\"seccomp_violation\"", "\"syscall\":\"socket\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"call_denied\"", "\"method\":\"Get\"", "not granted: 'secrets'"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"call_denied\"", "\"method\":\"List\"", "outside the grant's rights"}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"bad_message\"", "\"kill_worker\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_killed\"", "\"reason\":\"bad message\""}), 1u);
}

TEST_P(ExamplesTest, ReaderStopsWhenItsFileIsRevoked) {
  int lines_read = 0;
  GrantId file = 0;
  log_.on_line = [&](const std::string& w, const std::string& text) {
    if (w != "reader" || !text.starts_with("line: ") || ++lines_read != 3) return;
    for (const auto& g : sup_->grants()) {
      if (g.interface == "fs.File") file = g.id;
    }
    ASSERT_NE(file, 0u);
    auto r = sup_->revoke(file, "examples test");
    ASSERT_TRUE(r) << r.error().to_string();
  };
  run("reader.json");
  auto l = said("reader");
  ASSERT_FALSE(l.empty());
  EXPECT_TRUE(l.back().starts_with("the file capability was revoked")) << l.back();
  EXPECT_EQ(view("reader").exit->code, 0);
  EXPECT_EQ(count_lines_with(audit_lines(audit_path_), {"\"revoked\"", "examples test"}), 1u);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ExamplesTest,
                         ::testing::Values(Layout::kBuildTree, Layout::kPrivateCheckout),
                         layout_name);

}  // namespace
}  // namespace capsa::supervisor
