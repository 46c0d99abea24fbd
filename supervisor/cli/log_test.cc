// `capsa run`'s loggers in-process: the JSON record of each logger, a
// hostile worker line staying one valid JSON object, and the levels.
#include "supervisor/cli/log.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/sink.h>

namespace capsa::cli {
namespace {

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << "not one JSON object: " << line;
    out.push_back(std::move(j));
  }
  return out;
}

// A worker line as the supervisor hands it over: a record named after the
// worker, straight to the worker logger's sinks.
void worker_line(spdlog::logger& log, std::string_view worker, spdlog::level::level_enum level,
                 std::string_view text) {
  spdlog::details::log_msg msg(spdlog::string_view_t(worker.data(), worker.size()), level,
                               spdlog::string_view_t(text.data(), text.size()));
  for (const auto& sink : log.sinks()) sink->log(msg);
}

TEST(CliLog, JsonRecordsCarryTimeLevelLoggerMessageAndTheWorker) {
  std::ostringstream out, err;
  RunLoggers l = make_run_loggers(LogFormat::kJson, spdlog::level::warn, false, out, err);
  ASSERT_TRUE(l.workers);
  worker_line(*l.workers, "wordcount", spdlog::level::info, "top 1: the 156");
  worker_line(*l.workers, "hostile", spdlog::level::warn, "escaping");
  l.supervisor->warn("worker {} exited 1", "hostile");
  l.supervisor->info("not at warn: dropped");
  l.notices->info("audit log {}", "/tmp/a.jsonl");

  auto lines = json_lines(out.str());
  ASSERT_EQ(lines.size(), 3u) << out.str();
  EXPECT_EQ(lines[0].dump(), nlohmann::json::parse(R"({"time":")" + lines[0]["time"].get<std::string>() +
                                                   R"(","level":"info","logger":"worker",)"
                                                   R"("worker":"wordcount","message":"top 1: the 156"})")
                                 .dump());
  EXPECT_TRUE(std::regex_match(lines[0]["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  EXPECT_EQ(lines[1]["level"], "warning");
  EXPECT_EQ(lines[1]["worker"], "hostile");
  EXPECT_EQ(lines[2]["logger"], "capsa");
  EXPECT_EQ(lines[2]["message"], "audit log /tmp/a.jsonl");
  EXPECT_FALSE(lines[2].contains("worker"));
  // Keys in the documented order.
  EXPECT_EQ(out.str().rfind(R"({"time":)", 0), 0u);

  auto sup = json_lines(err.str());
  ASSERT_EQ(sup.size(), 1u) << err.str();
  EXPECT_EQ(sup[0]["logger"], "capsa");
  EXPECT_EQ(sup[0]["level"], "warning");
  EXPECT_EQ(sup[0]["message"], "worker hostile exited 1");
}

TEST(CliLog, AHostileWorkerLineStaysOneJsonObject) {
  std::ostringstream out, err;
  RunLoggers l = make_run_loggers(LogFormat::kJson, spdlog::level::warn, false, out, err);
  const std::string evil = std::string("\"},{\"level\":\"forged\n\\\x01\xff") + "\xe2\x80\xa8";
  worker_line(*l.workers, "w\"1", spdlog::level::err, evil);
  auto lines = json_lines(out.str());
  ASSERT_EQ(lines.size(), 1u) << out.str();
  EXPECT_EQ(lines[0]["level"], "error");
  EXPECT_EQ(lines[0]["worker"], "w\"1");
  // Invalid UTF-8 is replaced, everything else decodes back.
  EXPECT_EQ(lines[0]["message"], std::string("\"},{\"level\":\"forged\n\\\x01\xef\xbf\xbd\xe2\x80\xa8"));
}

TEST(CliLog, LevelsAndQuiet) {
  std::ostringstream out, err;
  RunLoggers debug = make_run_loggers(LogFormat::kText, spdlog::level::debug, false, out, err);
  EXPECT_FALSE(debug.workers) << "text: the supervisor's default worker logger";
  debug.supervisor->debug("shown with -v");
  debug.notices->info("started w (pid 7)");
  EXPECT_NE(err.str().find("[capsa] [debug] shown with -v\n"), std::string::npos) << err.str();
  EXPECT_EQ(out.str(), "capsa: started w (pid 7)\n");

  std::ostringstream qout, qerr;
  RunLoggers quiet = make_run_loggers(LogFormat::kText, spdlog::level::err, true, qout, qerr);
  quiet.supervisor->warn("hidden with -q");
  quiet.supervisor->error("shown with -q");
  quiet.notices->info("started w (pid 7)");
  EXPECT_EQ(qout.str(), "");
  EXPECT_EQ(qerr.str().find("hidden"), std::string::npos) << qerr.str();
  EXPECT_NE(qerr.str().find("[capsa] [error] shown with -q\n"), std::string::npos) << qerr.str();
}

}  // namespace
}  // namespace capsa::cli
