#include "supervisor/cli/log.h"

#include <chrono>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/ostream_sink.h>

#include "supervisor/cli/format.h"

namespace capsa::cli {
namespace {

std::string to_string(spdlog::string_view_t s) { return {s.data(), s.size()}; }

std::shared_ptr<spdlog::logger> make_logger(std::string name, std::ostream& to,
                                            std::unique_ptr<spdlog::formatter> f,
                                            spdlog::level::level_enum level) {
  auto log = std::make_shared<spdlog::logger>(
      std::move(name), std::make_shared<spdlog::sinks::ostream_sink_mt>(to, /*force_flush=*/true));
  log->set_formatter(std::move(f));
  log->set_level(level);
  return log;
}

}  // namespace

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(msg.time.time_since_epoch());
  nlohmann::ordered_json line;
  line["time"] = rfc3339(ns.count());
  line["level"] = to_string(spdlog::level::to_string_view(msg.level));
  if (worker_records_) {
    line["logger"] = "worker";
    line["worker"] = to_string(msg.logger_name);
  } else {
    line["logger"] = to_string(msg.logger_name);
  }
  line["message"] = to_string(msg.payload);
  // replace: a worker's invalid UTF-8 becomes U+FFFD instead of an exception.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text += '\n';
  dest.append(text.data(), text.data() + text.size());
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>(worker_records_);
}

RunLoggers make_run_loggers(LogFormat format, spdlog::level::level_enum level, bool quiet,
                            std::ostream& out, std::ostream& err) {
  RunLoggers l;
  const auto notices_level = quiet ? spdlog::level::off : spdlog::level::info;
  if (format == LogFormat::kText) {
    // spdlog's default pattern; worker lines: the supervisor's default.
    l.supervisor = make_logger("capsa", err, std::make_unique<spdlog::pattern_formatter>(), level);
    l.notices = make_logger("capsa", out, std::make_unique<spdlog::pattern_formatter>("capsa: %v"),
                            notices_level);
    return l;
  }
  l.supervisor = make_logger("capsa", err, std::make_unique<JsonLogFormatter>(false), level);
  l.workers = make_logger("worker", out, std::make_unique<JsonLogFormatter>(true), spdlog::level::trace);
  l.notices = make_logger("capsa", out, std::make_unique<JsonLogFormatter>(false), notices_level);
  return l;
}

}  // namespace capsa::cli
