// libFuzzer target: the audit log's JSON line writer (supervisor/audit/),
// fed hostile strings where a worker controls them (names, methods,
// reasons, syscall names). Asserts, per input:
//   - append_json_string() gives one valid JSON string; when its input was
//     valid UTF-8 within kMaxAuditStringBytes it decodes back to exactly that
//     input, and a longer input ends in "...[truncated]";
//   - the lines AuditLog wrote to its file for the event are whole lines
//     (each ends in '\n', no other newline), each a valid JSON object with
//     "event" and a "seq" larger than the line before;
//   - writing (and rotating) leaves no extra fd open.
// The log rotates at its smallest cap (kMinAuditMaxBytes, one file kept),
// so rotation runs too and must never cut a line. Coalescing is off (every
// refusal written), so each event's line is checked.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz/check.h"
#include "supervisor/audit/audit_log.h"

namespace {

using namespace capsa::supervisor;
using capsa::fuzz::parse_or_abort;

[[noreturn]] void fail(const char* what) { capsa::fuzz::fail("audit_fuzz", what); }

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();  // throws type_error 316 on invalid UTF-8
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

void check_string(const std::string& s) {
  std::string out;
  append_json_string(out, s);
  auto j = parse_or_abort(out, "append_json_string");
  if (!j.is_string()) fail("append_json_string did not write a string");
  const auto& back = j.get_ref<const std::string&>();
  if (s.size() > kMaxAuditStringBytes) {
    if (!back.ends_with("...[truncated]")) fail("a long string is not marked truncated");
  } else if (valid_utf8(s) && back != s) {
    fail("valid UTF-8 did not decode back to itself");
  }
}

struct World {
  std::string path;
  std::unique_ptr<AuditLog> log;
  capsa::Fd file;    // the current file, for reading back
  int fds_open = 0;  // after the first input; constant unless an fd leaks
  int free_fd = -1;  // lowest_free_fd() after the last input
  ino_t inode = 0;
  off_t offset = 0;  // bytes of it already checked
  std::uint64_t last_seq = 0;

  World() {
    char dir[] = "/tmp/capsa-fuzz-audit-XXXXXX";
    if (::mkdtemp(dir) == nullptr) fail("mkdtemp");
    path = std::string(dir) + "/audit.jsonl";
    AuditLog::Options o;
    o.coalesce_after = 0;
    o.max_bytes = kMinAuditMaxBytes;
    o.keep = 1;
    auto opened = AuditLog::open(path, o);
    if (!opened) fail("cannot open the audit log");
    log = std::move(*opened);
  }

  // Rotation opens the new file before it closes the old one, so the
  // lowest free fd moves without a leak: when it moves, count them all.
  void check_no_fd_leaked() {
    int now = capsa::fuzz::lowest_free_fd();
    if (now == free_fd) return;
    int count = capsa::fuzz::open_fd_count();
    if (fds_open == 0) fds_open = count;
    if (count != fds_open) fail("the audit log kept an fd open");
    free_fd = now;
  }

  // Checks the lines written since the last call. The file is reopened
  // only when rotation replaced it (another inode).
  void check_new_lines() {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) fail("the audit file is gone");
    if (!file.valid() || st.st_ino != inode) {
      file = capsa::Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!file.valid()) fail("cannot open the audit file");
      inode = st.st_ino;
      offset = 0;
    }
    std::string rest(static_cast<std::size_t>(st.st_size - offset), '\0');
    if (::pread(file.get(), rest.data(), rest.size(), offset) != static_cast<ssize_t>(rest.size())) {
      fail("short read of the audit file");
    }
    if (!rest.empty() && rest.back() != '\n') fail("the file ends in a partial line");
    std::string_view lines(rest);
    while (!lines.empty()) {
      auto end = lines.find('\n');
      std::string_view line = lines.substr(0, end);
      auto j = parse_or_abort(line, "an audit line");
      lines.remove_prefix(end + 1);
      if (!j.is_object() || !j.contains("event") || !j["event"].is_string() ||
          !j.contains("seq") || !j["seq"].is_number_unsigned()) {
        std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
        fail("an audit line without event or seq");
      }
      auto seq = j["seq"].get<std::uint64_t>();
      if (seq <= last_seq) fail("seq did not grow");
      last_seq = seq;
    }
    offset = st.st_size;
  }
};

World& world() {
  static World w;
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  auto event = in.ConsumeIntegral<std::uint8_t>();
  std::vector<std::string> s;
  for (int i = 0; i < 4; ++i) s.push_back(in.ConsumeRandomLengthString(4 * kMaxAuditStringBytes));
  for (const auto& one : s) check_string(one);

  World& w = world();
  AuditLog& log = *w.log;
  std::uint64_t grant = in.ConsumeIntegral<std::uint64_t>();
  capsa::Result<std::uint64_t> r = 0;
  switch (event % 6) {
    case 0: r = log.worker_started(s[0], 42, s[1]); break;
    case 1: r = log.call_denied(s[0], grant, s[1], s[2], s[3]); break;
    case 2: r = log.bad_message(s[0], grant, s[1], s[2]); break;
    case 3: r = log.grant_created(grant, s[0], s[1], GrantOrigin::kDelegated, std::span(s).subspan(2)); break;
    case 4: {
      SeccompViolation v{.worker = s[0], .pid = 7, .syscall = s[1], .syscall_nr = -1,
                         .args = {grant, 0, 0, 0, 0, ~0ull}, .action = s[2]};
      r = log.seccomp_violation(v);
      break;
    }
    // Keys and event types are ours (audit_log.h); only values are hostile.
    default: r = log.event("custom", AuditFields().str("text", s[1]).strs("list", s));
  }
  if (!r) fail("writing an event failed");
  w.check_new_lines();
  w.check_no_fd_leaked();
  return 0;
}
