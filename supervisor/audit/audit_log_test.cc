#include "supervisor/audit/audit_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/fd_count.h"

namespace capsa::supervisor {
namespace {

using Value = nlohmann::json;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/capsa-audit-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (p == nullptr) std::abort();
    path = p;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Starts `body` on a fresh AuditLog at `path` in a forked child (another
// supervisor process); it exits 2 if the log did not open, else with
// body's return value. Fork from the test's only thread: a child of a
// threaded process could inherit a lock held by a thread it does not have.
pid_t start_child(const std::string& path, const std::function<int(AuditLog&)>& body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    auto log = AuditLog::open(path);
    ::_exit(log ? body(**log) : 2);
  }
  return pid;
}

// The wait status of child `pid`, -1 if it cannot be had.
int wait_status(pid_t pid) {
  int status = 0;
  if (pid < 0) return -1;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

int in_child(const std::string& path, const std::function<int(AuditLog&)>& body) {
  return wait_status(start_child(path, body));
}

// Strict JSON (RFC 8259): nlohmann checks the grammar, that text is valid
// UTF-8 and that escaped surrogates pair; the callback adds that object
// keys are unique (nlohmann would keep the last one silently).
std::optional<Value> parse_strict(std::string_view text) {
  std::vector<std::set<std::string>> keys;
  bool duplicate = false;
  auto unique_keys = [&](int, Value::parse_event_t event, Value& parsed) {
    if (event == Value::parse_event_t::object_start) keys.emplace_back();
    if (event == Value::parse_event_t::object_end) keys.pop_back();
    if (event == Value::parse_event_t::key && !keys.back().insert(parsed.get<std::string>()).second) {
      duplicate = true;
    }
    return true;
  };
  Value v = Value::parse(text, unique_keys, /*allow_exceptions=*/false);
  if (v.is_discarded() || duplicate) return std::nullopt;
  return v;
}

Value parse_line(const std::string& line) {
  auto v = parse_strict(line);
  EXPECT_TRUE(v.has_value()) << "not valid JSON: " << line;
  if (!v) return {};
  EXPECT_TRUE(v->is_object()) << line;
  return *v;
}

// A field as text: a string decoded, anything else as its JSON literal.
std::string field(const Value& v, const std::string& key) {
  if (!v.contains(key)) return "<missing>";
  const Value& f = v.at(key);
  return f.is_string() ? f.get<std::string>() : f.dump();
}

TEST(AuditJsonChecker, RejectsWhatIsNotStrictJson) {
  // The checker itself must be able to fail, or the tests below prove nothing.
  EXPECT_TRUE(parse_strict(R"({"a":[1,-2.5e3,true,null,"x\u00e9\ud83d\ude00"],"b":{"a":1}})").has_value());
  for (std::string bad : {std::string("{\"a\":\"\x01\"}"), std::string(R"({"a":"\q"})"),
                          std::string(R"({"a":"\ud800"})"), std::string("{\"a\":\"\xff\"}"),
                          std::string("{\"a\":\"\xed\xa0\x80\"}"), std::string(R"({"a":1,})"),
                          std::string(R"({"a":1,"a":2})"), std::string(R"({"a":{"b":1,"b":1}})"),
                          std::string(R"({"a":01})"), std::string(R"({"a":1} x)"),
                          std::string(R"({"a":"unterminated})")}) {
    EXPECT_FALSE(parse_strict(bad).has_value()) << bad;
  }
}

TEST(AuditLog, TimestampIsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(rfc3339_utc_ms({0, 5'000'000}), "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(rfc3339_utc_ms({1714564800, 999'999'999}), "2024-05-01T12:00:00.999Z");
}

TEST(AuditLog, FileIsPrivateAndAppendedTo) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  {
    std::ofstream pre(path);
    pre << "{\"earlier\":true}\n";
  }
  ::chmod(path.c_str(), 0600);
  {
    auto log = AuditLog::open(path);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
  }
  std::string fresh = dir.path + "/fresh.jsonl";
  ASSERT_TRUE(AuditLog::open(fresh).has_value());
  struct stat st {};
  ASSERT_EQ(::stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "{\"earlier\":true}");
  Value opened = parse_line(lines[1]);
  EXPECT_EQ(field(opened, "event"), "audit_opened");
  EXPECT_EQ(field(opened, "seq"), "1");
  EXPECT_EQ(field(opened, "pid"), std::to_string(::getpid()));
}

// The fd's open flags as the kernel reports them (/proc/self/fdinfo), for
// the one fd of this process that points at `path`.
int open_flags_of_fd_for(const std::string& path) {
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(entry.path(), ec) != path) continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string key;
    while (info >> key) {
      if (key == "flags:") {
        std::string octal;
        info >> octal;
        return static_cast<int>(std::stol(octal, nullptr, 8));
      }
    }
  }
  return -1;
}

TEST(AuditLog, FdIsAppendOnlyWriteOnlyAndCloseOnExec) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log.has_value());
  int flags = open_flags_of_fd_for(path);
  ASSERT_NE(flags, -1);
  EXPECT_EQ(flags & O_ACCMODE, O_WRONLY);
  EXPECT_NE(flags & O_APPEND, 0);
  EXPECT_NE(flags & O_CLOEXEC, 0);
}

// A supervisor killed right after logging loses nothing it logged: there is
// no buffer in the process to lose.
TEST(AuditLog, SigkillAfterAnEventLosesNoLine) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  int status = in_child(path, [](AuditLog& log) {
    for (int i = 0; i < 50; ++i) {
      if (!log.event("before_kill", AuditFields().num("i", i))) return 3;
    }
    ::raise(SIGKILL);
    return 4;
  });
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 51u);
  EXPECT_EQ(field(parse_line(lines.back()), "i"), "49");
  EXPECT_EQ(read_all(path).back(), '\n');
}

TEST(AuditLog, ALineCutShortByAFullDiskDoesNotSwallowTheNext) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  int status = in_child(path, [&path](AuditLog& log) {
    // The file can grow by 20 bytes only: the next event is cut short.
    ::signal(SIGXFSZ, SIG_IGN);
    struct stat st {};
    ::stat(path.c_str(), &st);
    rlimit full{static_cast<rlim_t>(st.st_size) + 20, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &full) != 0) return 3;
    if (log.event("cut_short", AuditFields().str("text", std::string(200, 'x')))) return 4;
    rlimit room{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &room) != 0) return 5;
    if (!log.event("after", AuditFields().num("i", 1))) return 6;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);  // audit_opened, the torn line, after
  EXPECT_EQ(field(parse_line(lines[2]), "i"), "1");
}

TEST(AuditLog, OpenFailureIsAnErrorWithoutLeaks) {
  capsa::testing::FdLeakCheck leaks;
  auto log = AuditLog::open("/nonexistent-capsa-dir/audit.jsonl");
  ASSERT_FALSE(log.has_value());
  EXPECT_EQ(log.error().code, Errc::kFailed);
  EXPECT_EQ(log.error().sys_errno, ENOENT);
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(AuditLog, EveryEventIsOneFlushedValidJsonLine) {
  capsa::testing::FdLeakCheck leaks;
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  {
    auto opened = AuditLog::open(path);
    ASSERT_TRUE(opened.has_value());
    AuditLog& log = **opened;
    std::vector<std::string> rights{"Open", "List"};
    SeccompViolation v{.worker = "w1", .pid = 42, .syscall = "ptrace", .syscall_nr = 101,
                       .args = {1, 2, 0xffffffffffffffffULL, 0, 0, 0}, .action = "killed"};
    std::vector<std::pair<std::string, std::function<Result<std::uint64_t>()>>> events = {
        {"worker_started", [&] { return log.worker_started("w1", 42, "/usr/bin/plugin"); }},
        {"worker_exited", [&] { return log.worker_exited("w1", 42, {.signal = 9, .user_us = 10}); }},
        {"grant_created",
         [&] { return log.grant_created(7, "w1", "fs.Directory", GrantOrigin::kAttenuated, rights, 3); }},
        {"port_transferred", [&] { return log.port_transferred(7, "w1", "w2"); }},
        {"call_denied", [&] { return log.call_denied("w1", 7, "fs.Directory", "Write", "not in rights"); }},
        {"bad_message", [&] { return log.bad_message("w1", 7, "payload verify failed", "close port"); }},
        {"seccomp_violation", [&] { return log.seccomp_violation(v); }},
        {"revoked", [&] { return log.revoked(7, "w2", "operator"); }},
        {"released", [&] { return log.released(7, "w2", "holder closed the port"); }},
        {"custom", [&] { return log.event("custom", AuditFields().str("k", "v").num("n", -1)); }},
    };
    std::uint64_t expect_seq = 2;  // 1 is audit_opened
    for (auto& [name, write] : events) {
      auto seq = write();
      ASSERT_TRUE(seq.has_value()) << seq.error().to_string();
      EXPECT_EQ(*seq, expect_seq);
      // Read back while the writer is alive: the line is already in the file.
      auto lines = read_lines(path);
      ASSERT_EQ(lines.size(), expect_seq);
      Value line = parse_line(lines.back());
      EXPECT_EQ(field(line, "event"), name);
      EXPECT_EQ(field(line, "seq"), std::to_string(expect_seq));
      EXPECT_TRUE(std::regex_match(field(line, "ts"),
                                   std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
      ++expect_seq;
    }
    EXPECT_EQ(log.last_seq(), expect_seq - 1);
    auto lines = read_lines(path);
    Value exited = parse_line(lines[2]);
    EXPECT_EQ(field(exited, "signal"), "9");
    EXPECT_FALSE(exited.contains("exit_code"));
    Value grant = parse_line(lines[3]);
    EXPECT_EQ(field(grant, "origin"), "attenuated");
    EXPECT_EQ(field(grant, "parent_grant"), "3");
    ASSERT_TRUE(grant.contains("rights"));
    EXPECT_EQ(grant["rights"], Value::array({"Open", "List"}));
    Value sc = parse_line(lines[7]);
    EXPECT_EQ(field(sc, "syscall"), "ptrace");
    ASSERT_TRUE(sc.contains("args"));
    EXPECT_EQ(sc["args"].at(2), "0xffffffffffffffff");
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(AuditLog, HostileStringsStayOneValidLine) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log.has_value());
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) all_controls += static_cast<char>(c);
  all_controls += '\x7f';
  struct Case {
    std::string in;
    std::string decoded;
  };
  const std::string fffd = "\xef\xbf\xbd";
  std::vector<Case> cases = {
      {R"(quote " backslash \ slash /)", R"(quote " backslash \ slash /)"},
      {"line\nbreak\r\n{\"event\":\"forged\"}", "line\nbreak\r\n{\"event\":\"forged\"}"},
      {all_controls, all_controls},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"},  // valid UTF-8 kept
      {"\xff", fffd},                                                    // never valid
      {"\xc0\xaf", fffd + fffd},                                         // overlong '/'
      {"\xed\xa0\x80", fffd + fffd + fffd},                              // surrogate
      {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},                   // above U+10FFFF
      {"cut \xe2\x82", "cut " + fffd + fffd},                            // truncated sequence
      {"ls\xe2\x80\xa8ps\xe2\x80\xa9", "ls\xe2\x80\xa8ps\xe2\x80\xa9"},    // escaped, decodes back
      {std::string("nul\0inside", 10), std::string("nul\0inside", 10)},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE((*log)->call_denied(c.in, 1, c.in, c.in, c.in).has_value());
  }
  std::string raw = read_all(path);
  // U+2028/2029 are written escaped, never raw.
  EXPECT_EQ(raw.find("\xe2\x80\xa8"), std::string::npos);
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), cases.size() + 1);  // no string added a line
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Value line = parse_line(lines[i + 1]);
    EXPECT_EQ(field(line, "event"), "call_denied");
    EXPECT_EQ(field(line, "worker"), cases[i].decoded) << "case " << i;
    EXPECT_EQ(field(line, "reason"), cases[i].decoded) << "case " << i;
  }
}

TEST(AuditLog, LongStringsAreCutAtTheLimit) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log.has_value());
  std::string at_limit(kMaxAuditStringBytes, 'a');
  std::string over(kMaxAuditStringBytes + 1, 'b');
  ASSERT_TRUE((*log)->event("x", AuditFields().str("s", at_limit)).has_value());
  ASSERT_TRUE((*log)->event("x", AuditFields().str("s", over)).has_value());
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(field(parse_line(lines[1]), "s"), at_limit);
  EXPECT_EQ(field(parse_line(lines[2]), "s"), std::string(kMaxAuditStringBytes, 'b') + "...[truncated]");
}

TEST(AuditLog, ThreadsGetIncreasingSeqInFileOrder) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  auto log = AuditLog::open(path);
  ASSERT_TRUE(log.has_value());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) (void)(*log)->event("tick", AuditFields().num("thread", t));
    });
  }
  for (auto& th : threads) th.join();
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 801u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(field(parse_line(lines[i]), "seq"), std::to_string(i + 1));
  }
}

// Two supervisors appending to one file: every line stays whole. Lines are
// made large (several KiB) so a torn or interleaved write would show.
TEST(AuditLog, TwoProcessesAppendingNeverInterleave) {
  TempDir dir;
  std::string path = dir.path + "/audit.jsonl";
  constexpr int kLines = 300;
  std::vector<pid_t> children;
  for (char letter : {'x', 'y'}) {
    children.push_back(start_child(path, [letter](AuditLog& log) {
      std::string payload(kMaxAuditStringBytes, letter);
      AuditFields f;
      for (int k = 0; k < 4; ++k) f.str("p" + std::to_string(k), payload);
      for (int i = 0; i < kLines; ++i) {
        if (!log.event(std::string(1, letter), f)) return 3;
      }
      return 0;
    }));
  }
  for (pid_t pid : children) {
    int status = wait_status(pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u * (kLines + 1));
  int per_letter[2] = {0, 0};
  for (const auto& raw : lines) {
    Value line = parse_line(raw);
    std::string event = field(line, "event");
    if (event == "audit_opened") continue;
    ASSERT_TRUE(event == "x" || event == "y") << event;
    ++per_letter[event == "x" ? 0 : 1];
    EXPECT_EQ(field(line, "p3"), std::string(kMaxAuditStringBytes, event[0]));
  }
  EXPECT_EQ(per_letter[0], kLines);
  EXPECT_EQ(per_letter[1], kLines);
}

}  // namespace
}  // namespace capsa::supervisor
