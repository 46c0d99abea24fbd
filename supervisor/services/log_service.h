// capsa — the log.Sink service: a worker's log lines, written to the
// supervisor's log under the worker's name (capabilities/interfaces/
// log_sink.fbs is the spec).
//
// The worker's text is hostile input that ends up on an operator's
// terminal or in a log file. sanitize_log_text() makes one line of it that
// can only be read as text:
//   - C0 controls except tab (newline, carriage return, ESC, BEL, ...),
//     DEL and C1 controls (U+0080..U+009F, e.g. the one-byte CSI U+009B):
//     no terminal escape sequence, no line break to start a forged line;
//   - U+2028 / U+2029 (line and paragraph separators: line breaks in some
//     viewers) and the bidirectional overrides and isolates (U+202A..U+202E,
//     U+2066..U+2069: they reorder how the rest of a line is displayed, so
//     a worker could make its line read as something else);
//   - bytes that are not well-formed UTF-8 (stray continuation bytes,
//     overlong forms, surrogates, code points over U+10FFFF, truncated
//     sequences): one replacement per byte, so nothing can combine with
//     what follows;
// each become U+FFFD. Everything else, other UTF-8 included, is kept.
//
// Write is synchronous on the loop thread: it does no host I/O of its own
// (ServiceHost::worker_log hands the line to the supervisor's log output).
// The grant's rate and byte budget are enforced by the supervisor before
// the call reaches the service.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "supervisor/services/dispatch.h"
#include "supervisor/services/service.h"

namespace capsa::supervisor::services {

// The line as it may be shown (see above). At most 3 bytes out per byte in.
std::string sanitize_log_text(std::string_view text);

class LogService final : public ServiceObject {
 public:
  // Write: kBadMessage for a missing text, a text over
  // capsa::interfaces::kMaxLogTextBytes, or a level that is not a
  // log.Level (the enum is not enforced on the wire).
  void handle(Call call) override { methods().dispatch(*this, std::move(call)); }
  std::unique_ptr<ServiceObject> clone() const override { return std::make_unique<LogService>(); }

  // Write by ordinal (dispatch.h); checked against log.Sink in
  // log_service_test.cc.
  static const MethodTable<LogService, 1>& methods();

 private:
  void write(Call call);
};

// The policy side of log.Sink: no constraints, nothing to prepare.
ServiceFactory log_service_factory();

}  // namespace capsa::supervisor::services
