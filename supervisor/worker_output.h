// capsa — a worker's stdout and stderr, read by the supervisor (policy
// `output: "supervisor"`, the default).
//
// Why: with inherited stdio a worker shares the supervisor's open files. It
// can ftruncate or pwrite the operator's log file (forging or erasing
// earlier lines), set O_NONBLOCK on it (the supervisor's next write then
// fails with EAGAIN), and write escape sequences to a terminal. Here the
// worker's fd 1 and 2 are the write ends of two pipes of its own: ftruncate
// gives EINVAL, pwrite ESPIPE, and O_NONBLOCK changes only its own end.
//
// The read ends are non-blocking and watched on the supervisor's reactor
// (one read of at most kOutputReadBytes per wake-up, so a chatty worker
// cannot starve the others). Bytes are split into lines at '\n'; a line
// longer than kMaxOutputLineBytes is split into pieces of at most that
// many bytes (cut before a UTF-8 sequence, never inside one), a trailing
// '\r' is dropped, and each line is sanitized like a log.Sink line
// (services::sanitize_log_text: no control character, escape sequence,
// bidi override or invalid UTF-8 reaches the operator) and handed to the
// worker logger under the worker's name: stdout at info, stderr at
// warning.
//
// Budget: limits.output_bytes of raw output (both streams, newlines
// included) are logged. A line that does not fit is dropped whole, and so
// is every line after it: dropped lines and bytes are counted, the
// supervisor's log warns once, and finish() writes one `output_dropped`
// audit line with the counts. Output past the budget is still read, so
// the worker never blocks on a full pipe.
//
// Limit: a worker may hand its pipe's write end to another worker over a
// direct channel. finish() (the worker ended) reads what is buffered, at
// most kMaxDrainBytes per stream, then closes the read end: later writes
// get EPIPE. Bytes left unread then are not counted; the audit line says
// `"abandoned": true`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "supervisor/audit/audit_log.h"
#include "supervisor/reactor/reactor.h"
#include "supervisor/services/service.h"

namespace capsa::supervisor {

// Longest line logged as one record; longer ones are split (the same bound
// as a log.Sink line, interfaces::kMaxLogTextBytes).
inline constexpr std::size_t kMaxOutputLineBytes = 4096;
// Bytes read per wake-up of one stream.
inline constexpr std::size_t kOutputReadBytes = 16384;
// Bytes finish() reads from one stream after the worker ended.
inline constexpr std::size_t kMaxDrainBytes = 1u << 20;

class WorkerOutput {
 public:
  struct Counters {
    std::uint64_t logged_lines = 0;
    std::uint64_t logged_bytes = 0;
    std::uint64_t dropped_lines = 0;
    std::uint64_t dropped_bytes = 0;
    bool abandoned = false;  // finish() closed a stream that still had bytes
  };
  // Where lines go (the supervisor's worker_log, which names the worker).
  using LineSink = std::function<void(LogLevel level, std::string_view text)>;

  // `worker` must outlive this object (the WorkerRecord's name).
  WorkerOutput(Reactor& reactor, AuditLog& audit, spdlog::logger& log, std::string_view worker,
               std::uint64_t budget_bytes, LineSink sink);
  ~WorkerOutput();
  WorkerOutput(const WorkerOutput&) = delete;
  WorkerOutput& operator=(const WorkerOutput&) = delete;

  // Takes the read ends (either may be invalid) and watches them.
  Result<void> watch(Fd out, Fd err);
  // The worker ended: reads what is left (bounded), logs a last unfinished
  // line, closes both streams and, if anything was dropped, writes the
  // `output_dropped` audit line. Idempotent.
  void finish();

  const Counters& counters() const noexcept { return counters_; }

 private:
  struct Stream {
    Fd fd;
    WatchId watch = 0;
    LogLevel level = LogLevel::kInfo;
    std::string partial;  // bytes of a line not yet ended, < kMaxOutputLineBytes
  };
  // One read; false at end of file or on an error (the stream is closed).
  bool read_once(Stream& s);
  void feed(Stream& s, std::string_view bytes);
  void line(Stream& s, std::string_view raw, std::size_t charged);
  void close(Stream& s);

  Reactor& reactor_;
  AuditLog& audit_;
  spdlog::logger& log_;
  std::string_view worker_;
  std::uint64_t budget_;
  LineSink sink_;
  Stream out_;
  Stream err_;
  Counters counters_;
  bool over_budget_ = false;
  bool finished_ = false;
};

// Where to cut `s` (longer than `max`) so that the piece is at most `max`
// bytes and no UTF-8 sequence is split: `max`, or the start of the sequence
// that straddles it (garbage without a start byte is cut at `max`).
std::size_t utf8_cut(std::string_view s, std::size_t max) noexcept;

}  // namespace capsa::supervisor
