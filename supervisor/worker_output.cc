#include "supervisor/worker_output.h"

#include <unistd.h>

#include <cerrno>
#include <utility>

#include "supervisor/services/log_service.h"

namespace capsa::supervisor {

std::size_t utf8_cut(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s.size();
  auto cont = [&](std::size_t i) { return (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80; };
  // s[max] is the first byte of the next piece; if it continues a sequence,
  // that sequence starts at most 3 bytes back.
  std::size_t i = max;
  while (i > 0 && max - i < 3 && cont(i)) --i;
  return i > 0 && !cont(i) && static_cast<unsigned char>(s[i]) >= 0xc0 ? i : max;
}

WorkerOutput::WorkerOutput(Reactor& reactor, AuditLog& audit, spdlog::logger& log,
                           std::string_view worker, std::uint64_t budget_bytes, LineSink sink)
    : reactor_(reactor), audit_(audit), log_(log), worker_(worker), budget_(budget_bytes),
      sink_(std::move(sink)) {
  out_.level = LogLevel::kInfo;
  err_.level = LogLevel::kWarning;
}

WorkerOutput::~WorkerOutput() {
  for (Stream* s : {&out_, &err_}) {
    if (s->watch != 0) reactor_.unwatch(std::exchange(s->watch, 0));
  }
}

Result<void> WorkerOutput::watch(Fd out, Fd err) {
  out_.fd = std::move(out);
  err_.fd = std::move(err);
  for (Stream* s : {&out_, &err_}) {
    if (!s->fd.valid()) continue;
    CAPSA_ASSIGN_OR_RETURN(s->watch, reactor_.watch(s->fd, Interest::kReadable,
                                                    [this, s](Events) { (void)read_once(*s); }));
  }
  return {};
}

bool WorkerOutput::read_once(Stream& s) {
  char buf[kOutputReadBytes];
  ssize_t n;
  do {
    n = ::read(s.fd.get(), buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    feed(s, std::string_view(buf, static_cast<std::size_t>(n)));
    return true;
  }
  if (n < 0 && errno == EAGAIN) return false;
  // End of file (every writer closed), or an error a pipe should not give:
  // either way nothing more will come; the unfinished line is logged.
  if (n < 0) log_.warn("worker '{}': reading its output failed (errno {})", worker_, errno);
  close(s);
  return false;
}

void WorkerOutput::feed(Stream& s, std::string_view bytes) {
  while (!bytes.empty()) {
    const std::size_t nl = bytes.find('\n');
    const std::string_view upto = bytes.substr(0, nl);
    if (s.partial.size() + upto.size() < kMaxOutputLineBytes && nl != std::string_view::npos) {
      // The common case: a whole line, perhaps begun by an earlier read.
      if (s.partial.empty()) {
        line(s, upto, upto.size() + 1);
      } else {
        s.partial.append(upto);
        line(s, s.partial, s.partial.size() + 1);
        s.partial.clear();
      }
      bytes.remove_prefix(nl + 1);
      continue;
    }
    // No newline yet, or the line is too long: keep at most one piece.
    const std::size_t room = kMaxOutputLineBytes - s.partial.size();
    const std::size_t take = std::min(room, upto.size());
    s.partial.append(upto.substr(0, take));
    bytes.remove_prefix(take);
    if (s.partial.size() >= kMaxOutputLineBytes) {
      // A piece of a long line: charged as its bytes (the rest comes later).
      const std::size_t cut = utf8_cut(s.partial, kMaxOutputLineBytes - 1);
      line(s, std::string_view(s.partial).substr(0, cut), cut);
      s.partial.erase(0, cut);
    }
  }
}

void WorkerOutput::line(Stream& s, std::string_view raw, std::size_t charged) {
  if (!over_budget_ && counters_.logged_bytes + charged > budget_) {
    over_budget_ = true;
    log_.warn("worker '{}' exceeded its output budget of {} bytes: further output is dropped "
              "(counted in the audit log)",
              worker_, budget_);
  }
  if (over_budget_) {
    ++counters_.dropped_lines;
    counters_.dropped_bytes += charged;
    return;
  }
  ++counters_.logged_lines;
  counters_.logged_bytes += charged;
  if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);  // CRLF line ends
  sink_(s.level, services::sanitize_log_text(raw));
}

void WorkerOutput::close(Stream& s) {
  if (s.watch != 0) reactor_.unwatch(std::exchange(s.watch, 0));
  if (!s.partial.empty()) {
    line(s, s.partial, s.partial.size());
    s.partial.clear();
  }
  s.fd.reset();
}

void WorkerOutput::finish() {
  if (finished_) return;
  finished_ = true;
  for (Stream* s : {&out_, &err_}) {
    if (!s->fd.valid()) continue;
    std::size_t drained = 0;
    while (s->fd.valid() && drained < kMaxDrainBytes && read_once(*s)) drained += kOutputReadBytes;
    if (s->fd.valid()) {
      // Still open: a process outside the sandbox holds the write end (see
      // the header). Stopped by the bound, bytes may be left unread.
      if (drained >= kMaxDrainBytes) counters_.abandoned = true;
      close(*s);
    }
  }
  if (counters_.dropped_lines == 0 && !counters_.abandoned) return;
  (void)audit_.event("output_dropped", AuditFields()
                                           .str("worker", worker_)
                                           .unum("budget_bytes", budget_)
                                           .unum("logged_bytes", counters_.logged_bytes)
                                           .unum("dropped_lines", counters_.dropped_lines)
                                           .unum("dropped_bytes", counters_.dropped_bytes)
                                           .boolean("abandoned", counters_.abandoned));
}

}  // namespace capsa::supervisor
