// libFuzzer target: the audit log's JSON line writer (supervisor/audit/),
// fed hostile strings where a worker controls them (names, methods,
// reasons, syscall names). Asserts, per input:
//   - append_json_string() gives one valid JSON string; when its input was
//     valid UTF-8 within kMaxAuditStringBytes it decodes back to exactly that
//     input, and a longer input ends in "...[truncated]";
//   - the lines AuditLog wrote to its file for the event are whole lines
//     (each ends in '\n', no other newline), each a valid JSON object with
//     "event" and a "seq" larger than the line before.
// The log rotates at its smallest cap (kMinAuditMaxBytes, one file kept),
// so rotation runs too and must never cut a line. Coalescing is off (every
// refusal written), so each event's line is checked.
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "fuzz/json_check.h"
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
  off_t offset = 0;  // bytes of the current file already checked
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

  // Checks the lines written since the last call.
  void check_new_lines() {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) fail("the audit file is gone");
    if (st.st_size < offset) offset = 0;  // rotated: a fresh file
    std::ifstream in(path, std::ios::binary);
    in.seekg(offset);
    std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!rest.empty() && rest.back() != '\n') fail("the file ends in a partial line");
    std::istringstream lines(rest);
    for (std::string line; std::getline(lines, line);) {
      auto j = parse_or_abort(line, "an audit line");
      if (!j.is_object() || !j.contains("event") || !j["event"].is_string() ||
          !j.contains("seq") || !j["seq"].is_number_unsigned()) {
        fail("an audit line without event or seq");
      }
      auto seq = j["seq"].get<std::uint64_t>();
      if (seq <= last_seq) fail("seq did not grow");
      last_seq = seq;
    }
    offset += static_cast<off_t>(rest.size());
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
    default: r = log.event(s[0].empty() ? "custom" : "custom_fuzz", AuditFields().str(s[1], s[2]).strs(s[3], s));
  }
  if (!r) fail("writing an event failed");
  w.check_new_lines();
  return 0;
}
