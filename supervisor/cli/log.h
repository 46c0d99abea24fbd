// capsa — the loggers `capsa run` wires into the supervisor (no global
// logger: main() builds them and hands them over, so a test or an embedding
// host wires its own and nothing is shared behind its back).
//
// Three loggers:
//   - "capsa", the supervisor's own operational log, on stderr: warnings
//     and errors by default, debug with -v, errors only with -q;
//   - the workers' log.Sink lines, on stdout, every level: each record is
//     named after its worker by the supervisor (SupervisorOptions
//     ::worker_logger), never by what the worker wrote;
//   - `capsa run`'s own start-up notices (the control socket, the audit
//     log, each worker started), on stdout at info, none with -q.
//
// Formats:
//   text  worker lines are the supervisor's default (stdout, "[wordcount]
//         text", "[wordcount] warning: text"); the supervisor's log in
//         spdlog's default pattern.
//   json  one JSON object per line, keys in this order:
//           {"time":"2024-05-01T12:00:00.123Z","level":"info",
//            "logger":"worker","worker":"wordcount","message":"top 1: the 156"}
//         "worker" only on worker lines; "logger" is "worker" for those and
//         the logger's name ("capsa") otherwise. Strings are escaped whatever
//         the bytes (invalid UTF-8 becomes U+FFFD), so a line is always one
//         valid JSON object.
#pragma once

#include <memory>
#include <ostream>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

namespace capsa::cli {

enum class LogFormat { kText, kJson };

// The JSON formatter described above. `worker_records`: the record's name
// is a worker's (the worker logger), so "logger" is "worker" and the name
// goes in "worker".
class JsonLogFormatter final : public spdlog::formatter {
 public:
  explicit JsonLogFormatter(bool worker_records) : worker_records_(worker_records) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;

 private:
  bool worker_records_;
};

struct RunLoggers {
  std::shared_ptr<spdlog::logger> supervisor;  // "capsa", to `err`
  std::shared_ptr<spdlog::logger> workers;     // worker lines, to `out`; text: nullptr
  std::shared_ptr<spdlog::logger> notices;     // "capsa", to `out`: text "capsa: %v"
};

// The loggers; the supervisor's at `level`, the notices off when `quiet`.
// Every record is flushed when written (a line a worker logged is visible
// when it is logged).
RunLoggers make_run_loggers(LogFormat format, spdlog::level::level_enum level, bool quiet,
                            std::ostream& out, std::ostream& err);

}  // namespace capsa::cli
