// `capsa audit` and `capsa revoke` in-process against a real server: both
// renderings of a report (hostile strings included, the JSON parsed back
// with nlohmann-json), the commands' exit statuses, and the default-socket
// lookup.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "supervisor/cli/audit.h"
#include "supervisor/cli/revoke.h"
#include "supervisor/control/report.h"
#include "supervisor/control/server_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

// Report text is printed to terminals and parsed by tools: whatever bytes
// a name or an error holds, the table shows no raw control character and
// the JSON parses back to the same strings.
TEST(ControlReport, HostileStringsAreEscapedInBothRenderings) {
  const std::string evil = "w\x1b[31m\"q\"\\\n\xc2\x9b\x7f";
  ReportInput in;
  in.supervisor_pid = 42;
  in.now = std::chrono::system_clock::now();
  WorkerView w;
  w.name = evil;
  w.start_error = "no \x07 bell";
  in.workers.push_back(w);
  GrantView g;
  g.id = 7;
  g.worker = evil;
  g.name = evil;
  g.interface = "x.Y";
  g.rights = {evil};
  g.state = GrantState::kReleased;
  g.created = in.now - std::chrono::seconds(3725);
  g.ended = in.now;
  in.grants.push_back(g);
  std::vector<std::uint8_t> bytes = build_audit_report(in);
  auto report = verify_audit_report(std::as_bytes(std::span(bytes)));
  ASSERT_TRUE(report) << report.error().to_string();

  std::string table = cli::format_audit_table(**report, true);
  for (char c : table) {
    auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 || c == '\n') << "raw control byte " << int(u) << " in\n" << table;
    EXPECT_NE(u, 0x7f);
  }
  EXPECT_EQ(table.find("\xc2\x9b"), std::string::npos) << "C1 control CSI printed raw";
  EXPECT_NE(table.find("w\\x1b[31m"), std::string::npos) << table;
  EXPECT_NE(table.find("1h02m"), std::string::npos) << table;   // age
  EXPECT_NE(table.find("released"), std::string::npos) << table;

  std::string json = cli::format_audit_json(**report);
  auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(parsed.is_object()) << json;
  ASSERT_TRUE(parsed.contains("grants")) << json;
  ASSERT_EQ(parsed["grants"].size(), 1u);
  const auto& grant = parsed["grants"][0];
  EXPECT_EQ(grant.value("worker", "<missing>"), evil) << "the JSON string decodes to the original bytes";
  EXPECT_FALSE(grant.contains("kernel")) << "an ended grant has no kernel verdict";
}

// `capsa audit` and `capsa revoke`, run in-process against the server.
TEST_F(ControlTest, AuditAndRevokeCommands) {
  ASSERT_NO_FATAL_FAILURE(serve_w_holding_echo());
  GrantId id = grant_named(grants(), "w", "echo")->id;

  std::ostringstream out, err;
  EXPECT_EQ(cli::run_audit({.control = sock_, .json = false, .all = false}, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("KERNEL"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("capsa.test.Echo"), std::string::npos) << out.str();
  out.str("");
  EXPECT_EQ(cli::run_audit({.control = sock_, .json = true, .all = false}, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("\"id\":" + std::to_string(id) + ","), std::string::npos) << out.str();

  out.str("");
  EXPECT_EQ(cli::run_revoke({.control = sock_, .reason = "cli test", .grant = std::to_string(id)}, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "revoked " + std::to_string(id) + "\n");
  out.str("");
  err.str("");
  EXPECT_EQ(cli::run_revoke({.control = sock_, .reason = "", .grant = std::to_string(id)}, out, err), 1);
  EXPECT_NE(err.str().find("not found"), std::string::npos) << err.str();
  err.str("");
  EXPECT_EQ(cli::run_audit({.control = dir_.path() + "/none.sock", .json = false, .all = false}, out, err), 1);
  EXPECT_NE(err.str().find("cannot reach"), std::string::npos) << err.str();
}

// Without --control the commands use the one live socket in the default
// directory, and ask which when there are several.
TEST_F(ControlTest, CommandsFindTheDefaultSocket) {
  std::string xdg = dir_.path() + "/xdg";
  ASSERT_EQ(::mkdir(xdg.c_str(), 0700), 0);
  ASSERT_EQ(::setenv("XDG_RUNTIME_DIR", xdg.c_str(), 1), 0);
  struct Unset {
    ~Unset() { ::unsetenv("XDG_RUNTIME_DIR"); }
  } unset;
  EXPECT_EQ(default_control_dir(), xdg + "/capsa");
  EXPECT_EQ(default_control_path(), xdg + "/capsa/" + std::to_string(::getpid()) + ".sock");

  std::ostringstream out, err;
  EXPECT_EQ(cli::run_audit({}, out, err), 1) << "no directory yet";
  EXPECT_NE(err.str().find("no running supervisor"), std::string::npos) << err.str();

  make([](auto& b) { echo_worker(b, "w"); });
  serve_and_run("");  // the default path; its directory is created 0700
  EXPECT_EQ(server_->path(), default_control_path());
  struct stat st{};
  ASSERT_EQ(::stat((xdg + "/capsa").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  { Fd stale = raw_listener(xdg + "/capsa/1.sock"); }  // a crashed supervisor's: skipped
  err.str("");
  EXPECT_EQ(cli::run_audit({}, out, err), 0) << err.str();

  Fd other = raw_listener(xdg + "/capsa/2.sock");  // a second live one
  ASSERT_TRUE(other.valid());
  err.str("");
  EXPECT_EQ(cli::run_audit({}, out, err), 2);
  EXPECT_NE(err.str().find("--control"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("2.sock"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find(std::to_string(::getpid()) + ".sock"), std::string::npos) << err.str();
  EXPECT_EQ(cli::run_revoke({.control = "", .reason = "", .grant = "1"}, out, err), 2);
}

}  // namespace
}  // namespace capsa::supervisor
