// The audit log as a file: private and appended to, its fd's flags, no
// line lost to a SIGKILL or swallowed after a full disk, and lines that
// stay whole across threads and processes.
#include "supervisor/audit/audit_log.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "supervisor/audit/audit_log_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::audit_testing;

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

TEST(AuditLog, TimestampIsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(rfc3339_utc_ms({0, 5'000'000}), "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(rfc3339_utc_ms({1714564800, 999'999'999}), "2024-05-01T12:00:00.999Z");
}

TEST(AuditLog, FileIsPrivateAndAppendedTo) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  {
    std::ofstream pre(path);
    pre << "{\"earlier\":true}\n";
  }
  ::chmod(path.c_str(), 0600);
  {
    auto log = AuditLog::open(path);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
  }
  std::string fresh = dir.path() + "/fresh.jsonl";
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

// Every line names its run: the same 16 hex digits on each line of one
// AuditLog, another for the next one (grant ids restart at 1 per run, so
// (run, grant) is what is unique in a shared file); a given id is kept.
TEST(AuditLog, EveryLineCarriesItsRunId) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  std::string first;
  {
    auto log = AuditLog::open(path);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    first = (*log)->run_id();
    ASSERT_TRUE((*log)->event("x", AuditFields().num("n", 1)));
  }
  ASSERT_EQ(first.size(), 16u);
  EXPECT_EQ(first.find_first_not_of("0123456789abcdef"), std::string::npos) << first;
  {
    AuditLog::Options o;
    o.run_id = "fixed-run";
    auto log = AuditLog::open(path, o);
    ASSERT_TRUE(log.has_value()) << log.error().to_string();
    ASSERT_TRUE((*log)->event("x", AuditFields().num("n", 2)));
  }
  auto second = AuditLog::open(path);
  ASSERT_TRUE(second.has_value());
  EXPECT_NE((*second)->run_id(), first);
  second->reset();
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 5u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string want = i < 2 ? first : i < 4 ? "fixed-run" : "";
    if (!want.empty()) {
      EXPECT_EQ(field(parse_line(lines[i]), "run"), want) << lines[i];
    }
  }
  EXPECT_NE(field(parse_line(lines[4]), "run"), first);
  EXPECT_TRUE(lines[0].starts_with("{\"ts\":\"")) << lines[0];
  EXPECT_NE(lines[0].find("\",\"run\":\"" + first + "\",\"seq\":1,\"event\":\"audit_opened\""), std::string::npos)
      << lines[0];
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
  std::string path = dir.path() + "/audit.jsonl";
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
  std::string path = dir.path() + "/audit.jsonl";
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
  std::string path = dir.path() + "/audit.jsonl";
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

TEST(AuditLog, ThreadsGetIncreasingSeqInFileOrder) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
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
  std::string path = dir.path() + "/audit.jsonl";
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
