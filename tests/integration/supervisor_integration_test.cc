// The supervisor end to end with real sandboxed workers (bubblewrap,
// seccomp, the launcher): it_worker.cc uses the worker SDK and reports
// through its log grant; the test asserts those lines, the grant table,
// the exit statuses and the audit log. Runs as root and as uid 65534, with
// the launcher, the worker and the served directory where an operator may
// keep them: inside a 0700 directory of the supervisor's user
// (tests/support/private_checkout.h), which the sandbox's uid cannot enter
// when the supervisor is root.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (GCC ships no header declaring it).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "policy/builder.h"
#include "supervisor/supervisor.h"
#include "supervisor/supervisor_test_util.h"
#include "tests/integration/sandboxed_supervisor.h"
#include "tests/sandbox/cgroup_util.h"
#include "tests/support/fd_count.h"
#include "tests/support/private_checkout.h"

namespace capsa::supervisor {
namespace {

using namespace capsa::supervisor::testing;

// Bytes the allocator holds for live objects (not what it keeps cached or,
// under ASan, in quarantine): what "the supervisor's memory is flat" means.
std::size_t live_heap_bytes() {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

class IntegrationTest : public SandboxedSupervisorTest {
 protected:
  void SetUp() override {
    SandboxedSupervisorTest::SetUp();
    root_ = checkout_.make_dir("served");
    ASSERT_EQ(::mkdir((root_ + "/sub").c_str(), 0755), 0);
    std::ofstream(root_ + "/a.txt") << "alpha beta gamma\n";
    ASSERT_EQ(::symlink("/etc", (root_ + "/link-out").c_str()), 0);
    ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/link-file").c_str()), 0);
  }

  policy::WorkerBuilder& worker(policy::PolicyBuilder& b, const std::string& name,
                                const std::string& mode, const std::string& arg = "") {
    auto& w = b.worker(name).program(it_worker_).arg(mode);
    if (!arg.empty()) w.arg(arg);
    w.grant("log", "log.Sink").all_rights();
    w.grant("dir", "fs.Directory").all_rights().constraint("root", root_);
    w.limit(policy::LimitKind::kWallSeconds, 120);
    return w;
  }

  void run() { start_and_run(*sup_); }
  std::vector<std::string> said(const std::string& w) const { return log_.said(w); }
  bool said_line(const std::string& w, const std::string& text) const {
    return log_.said_line(w, text);
  }
  WorkerView view(const std::string& name) const { return worker_view(*sup_, name); }

  GrantId grant_named(const std::string& worker_name, const std::string& grant_name,
                      GrantOrigin origin = GrantOrigin::kPolicy) {
    for (const auto& g : sup_->grants()) {
      if (g.worker == worker_name && g.name == grant_name && g.origin == origin) return g.id;
    }
    return 0;
  }

  std::vector<std::string> audit() { return audit_lines(audit_path_); }

  std::string root_;  // the served directory, in the checkout
};

TEST_F(IntegrationTest, GrantedApiWorksInTheSandbox) {
  make([&](auto& b) { worker(b, "w", "hello"); });
  run();
  EXPECT_TRUE(said_line("w", "hello from the sandbox"));
  const WorkerView& v = view("w");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited);
  EXPECT_EQ(v.exit->code, 0);
  EXPECT_EQ(sup_->live_grants(), 0u);  // everything released with the worker
  auto a = audit();
  EXPECT_EQ(count_lines_with(a, {"\"worker_started\"", "\"worker\":\"w\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_exited\"", "\"status\":\"exited\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"grant_created\"", "\"log.Sink\""}), 1u);
}

// A worker whose profile has "pool" starts in the sandbox that waited for
// it, and is served, reported and audited as its cold neighbour.
TEST_F(IntegrationTest, AWorkerFromItsWarmPoolIsServedAsAColdOne) {
  std::ostringstream ops;
  SupervisorOptions o;
  o.logger = std::make_shared<spdlog::logger>("it",
                                              std::make_shared<spdlog::sinks::ostream_sink_mt>(ops));
  o.logger->set_level(spdlog::level::info);
  make(
      [&](auto& b) {
        worker(b, "cold", "hello");
        worker(b, "warm", "hello").pool(3);
      },
      std::move(o));
  ASSERT_TRUE(sup_->warm_up(std::chrono::seconds(20))) << ops.str();
  run();
  for (const std::string name : {"cold", "warm"}) {
    EXPECT_TRUE(said_line(name, "hello from the sandbox")) << name;
    const WorkerView& v = view(name);
    ASSERT_TRUE(v.exit) << name;
    EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited) << name;
    EXPECT_EQ(v.exit->code, 0) << name;
    EXPECT_EQ(v.calls, view("cold").calls) << name;
  }
  const std::string log = ops.str();
  EXPECT_NE(log.find("worker 'warm' started (pid " + std::to_string(view("warm").pid) +
                     ", from its warm pool)"), std::string::npos) << log;
  EXPECT_NE(log.find("worker 'cold' started (pid " + std::to_string(view("cold").pid) + ")"),
            std::string::npos) << log;
  EXPECT_EQ(sup_->live_grants(), 0u);
  auto a = audit();
  EXPECT_EQ(count_lines_with(a, {"\"worker_started\"", "\"worker\":\"warm\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_exited\"", "\"status\":\"exited\""}), 2u);
}

// Warm pools of workers never started (--warm on a supervisor shut down
// before its start): nothing stays behind.
TEST_F(IntegrationTest, WarmPoolsOfWorkersNeverStartedLeaveNothing) {
  const auto cgroups_before = sandbox::testing::leftover_cgroups();
  capsa::testing::FdLeakCheck fds;
  SupervisorOptions o;
  o.warm_pool = 2;
  make([&](auto& b) {
    worker(b, "a", "hello");
    worker(b, "b", "hello");
  }, std::move(o));
  ASSERT_TRUE(sup_->warm_up(std::chrono::seconds(20)));
  sup_.reset();
  EXPECT_EQ(fds.leaked(), 0) << capsa::testing::describe_open_fds();
  EXPECT_EQ(sandbox::testing::leftover_cgroups(), cgroups_before);
  // No child process of ours is left (each pooled sandbox's bubblewrap was one).
  int children = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    int ppid = 0;
    rest >> state >> ppid;
    children += ppid == ::getpid();
  }
  EXPECT_EQ(children, 0);
}

TEST_F(IntegrationTest, UngrantedNameIsNotFoundAndAudited) {
  make([&](auto& b) { worker(b, "w", "ungranted"); });
  run();
  EXPECT_TRUE(said_line("w", "secrets: not found"));
  EXPECT_EQ(view("w").denials, 1u);
  EXPECT_EQ(count_lines_with(audit(), {"\"call_denied\"", "not granted: 'secrets'"}), 1u);
}

TEST_F(IntegrationTest, MethodOutsideRightsIsDeniedAndAudited) {
  make([&](auto& b) {
    auto& w = b.worker("w").program(it_worker_).arg("outside-rights");
    w.grant("log", "log.Sink").all_rights();
    w.grant("dir", "fs.Directory").right("Stat").constraint("root", root_);
  });
  run();
  EXPECT_TRUE(said_line("w", "List: denied"));
  EXPECT_EQ(count_lines_with(audit(), {"\"call_denied\"", "\"method\":\"List\"",
                                       "outside the grant's rights"}),
            1u);
}

TEST_F(IntegrationTest, CallAfterRevokeFailsAndTheGrantStaysRevoked) {
  make([&](auto& b) { worker(b, "w", "wait-revoke"); });
  log_.on_line = [&](const std::string& w, const std::string& text) {
    if (text != "ready") return;
    GrantId id = grant_named(w, "dir");
    ASSERT_NE(id, 0u);
    auto r = sup_->revoke(id, "integration test");
    ASSERT_TRUE(r) << r.error().to_string();
  };
  run();
  EXPECT_TRUE(said_line("w", "dir: revoked"));
  EXPECT_TRUE(said_line("w", "get again: revoked"));
  EXPECT_EQ(view("w").exit->code, 0);
  EXPECT_EQ(count_lines_with(audit(), {"\"revoked\"", "integration test"}), 1u);
}

TEST_F(IntegrationTest, RevokingTheDirectoryRevokesTheFileOpenedFromIt) {
  make([&](auto& b) { worker(b, "w", "file-revoke"); });
  GrantId file_grant = 0;
  log_.on_line = [&](const std::string& w, const std::string& text) {
    if (text != "ready") return;
    file_grant = grant_named(w, "dir", GrantOrigin::kReturned);
    auto r = sup_->revoke(grant_named(w, "dir"), "parent");
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->size(), 2u);
  };
  run();
  ASSERT_NE(file_grant, 0u);
  EXPECT_TRUE(said_line("w", "file: revoked"));
  EXPECT_EQ(count_lines_with(audit(), {"\"revoked\"", "\"grant\":" + std::to_string(file_grant) + ","}),
            1u);
}

TEST_F(IntegrationTest, ACrashedWorkerReleasesEverythingItHeld) {
  make([&](auto& b) {
    worker(b, "crasher", "crash");
    worker(b, "other", "calls", "50");
  });
  run();
  EXPECT_TRUE(said_line("crasher", "ready: ok"));
  const WorkerView& v = view("crasher");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kSignaled);
  EXPECT_EQ(v.exit->signal, SIGABRT);
  EXPECT_TRUE(said_line("other", "calls: ok=50 failed=0"));
  EXPECT_EQ(sup_->live_grants(), 0u);
  // bootstrap, log, dir and the file: all released because the holder died.
  // (As "holder closed the port" when the kernel closed its fds before the
  // reap was seen, else as "holder exited".)
  EXPECT_GE(count_lines_with(audit(), {"\"released\"", "\"holder\":\"crasher\""}), 4u);
}

// memfds filled with write(), through the supervisor. With a cgroup: the
// filler is OOM-killed at its 64 MiB and audited as "limit memory" with
// the cgroup's peak. Without (this machine, as uid 65534): its start is
// reported on the supervisor's log and in the audit log, and the fill
// reaches its 128 MiB. A neighbour is served throughout either way.
TEST_F(IntegrationTest, MemfdFillIsBoundedByTheCgroupOrReportedAtStart) {
  std::ostringstream ops;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(ops);
  SupervisorOptions o;
  o.logger = std::make_shared<spdlog::logger>("it", sink);
  make(
      [&](auto& b) {
        worker(b, "filler", "memfd", "128").limit(policy::LimitKind::kMemory, 64ull << 20);
        worker(b, "other", "calls", "50");
      },
      std::move(o));
  run();
  EXPECT_TRUE(said_line("filler", "memfd: filling"));
  EXPECT_TRUE(said_line("other", "calls: ok=50 failed=0"));
  const WorkerView& v = view("filler");
  ASSERT_TRUE(v.exit);
  if (v.exit->cgroup != sandbox::CgroupKind::kNone) {
    ASSERT_TRUE(sandbox::testing::machine_offers_cgroup());
    EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kLimitMemory) << v.exit->to_string();
    EXPECT_LE(v.exit->peak_memory_bytes, 64ull << 20) << v.exit->to_string();
    EXPECT_EQ(said("filler"), std::vector<std::string>{"memfd: filling"});
    EXPECT_EQ(count_lines_with(audit(), {"\"worker_exited\"", "\"worker\":\"filler\"",
                                         "\"status\":\"limit memory\"",
                                         std::string("\"cgroup\":\"") +
                                             std::string(sandbox::cgroup_kind_name(v.exit->cgroup)) + "\""}),
              1u);
    EXPECT_EQ(count_lines_with(audit(), {"\"worker_without_cgroup\""}), 0u);
  } else {
    EXPECT_FALSE(sandbox::testing::machine_offers_cgroup());
    EXPECT_TRUE(said_line("filler", "memfd: unbounded mib=128"));
    EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kExited) << v.exit->to_string();
    EXPECT_EQ(count_lines_with(audit(), {"\"worker_without_cgroup\"", "\"worker\":\"filler\"",
                                         "\"reason\":\"no cgroup: "}),
              1u);
    EXPECT_NE(ops.str().find("worker 'filler' runs without a cgroup (no cgroup: "), std::string::npos)
        << ops.str();
  }
}

TEST_F(IntegrationTest, ManyOpenCloseCyclesLeaveMemoryAndFdsFlat) {
  const long cycles = 100000;
  make([&](auto& b) {
    worker(b, "w", "cycles", std::to_string(cycles))
        .limit(policy::LimitKind::kCpuSeconds, 300)
        .limit(policy::LimitKind::kMessagesPerSecond, 1'000'000);
  });
  std::size_t fds_first = 0, fds_last = 0, heap_first = 0, heap_last = 0, grants_last = 0;
  log_.on_line = [&](const std::string&, const std::string& text) {
    if (text == "checkpoint: first") {
      fds_first = capsa::testing::open_fd_count();
      heap_first = live_heap_bytes();
    } else if (text == "checkpoint: last") {
      fds_last = capsa::testing::open_fd_count();
      heap_last = live_heap_bytes();
      grants_last = sup_->live_grants();
    }
  };
  run();
  ASSERT_TRUE(said_line("w", "checkpoint: last"))
      << (said("w").empty() ? "(nothing logged)" : said("w").back()) << "; "
      << (view("w").exit ? view("w").exit->to_string() : "no exit");
  // A release is seen when the port's hang-up is read, which may come a
  // turn after the worker's next call: allow the one or two in flight.
  EXPECT_LE(fds_last, fds_first + 2) << "first " << fds_first << " last " << fds_last;
  EXPECT_LE(grants_last, 5u);
  // 90,000 cycles in between; any per-cycle leak of even 16 bytes would
  // show as 1.4 MB.
  EXPECT_LT(heap_last, heap_first + 512 * 1024) << "first " << heap_first << " last " << heap_last;
  EXPECT_EQ(view("w").exit->code, 0);
}

TEST_F(IntegrationTest, BadMessageKillsTheWorkerAndIsAudited) {
  make([&](auto& b) {
    worker(b, "junk", "junk");
    worker(b, "other", "calls", "20");
  });
  run();
  const WorkerView& v = view("junk");
  ASSERT_TRUE(v.exit);
  EXPECT_EQ(v.exit->kind, sandbox::ExitKind::kKilled);
  EXPECT_EQ(v.bad_messages, 1u);
  EXPECT_TRUE(said_line("other", "calls: ok=20 failed=0"));
  auto a = audit();
  EXPECT_EQ(count_lines_with(a, {"\"bad_message\"", "\"worker\":\"junk\"", "\"kill_worker\""}), 1u);
  EXPECT_EQ(count_lines_with(a, {"\"worker_killed\"", "\"worker\":\"junk\""}), 1u);
}

TEST_F(IntegrationTest, AFloodingWorkerIsOverloadedWhileAnotherIsServed) {
  make([&](auto& b) {
    auto& f = b.worker("flooder").program(it_worker_).arg("flood");
    f.grant("log", "log.Sink").all_rights().rate(100);
    worker(b, "steady", "calls", "500");
  });
  run();
  auto l = said("flooder");
  auto it = std::find_if(l.begin(), l.end(), [](const std::string& s) { return s.starts_with("flood:"); });
  ASSERT_NE(it, l.end());
  EXPECT_NE(it->find("overloaded="), std::string::npos);
  EXPECT_EQ(it->find("overloaded=0 "), std::string::npos) << *it;
  EXPECT_NE(it->find("other=0"), std::string::npos) << *it;
  EXPECT_TRUE(said_line("steady", "calls: ok=500 failed=0"));
  EXPECT_GE(count_lines_with(audit(), {"\"call_denied\"", "\"worker\":\"flooder\"", "rate limit: grant rate"}), 1u);
}

TEST_F(IntegrationTest, DirectoryEscapesAllFail) {
  make([&](auto& b) { worker(b, "w", "escape"); });
  run();
  for (const char* p : {"../etc/passwd", "/etc/passwd", "link-out/passwd", "sub/../../a.txt", "link-file"}) {
    auto l = said("w");
    auto it = std::find_if(l.begin(), l.end(), [&](const std::string& s) {
      return s.starts_with(std::string("open ") + p + ": ");
    });
    ASSERT_NE(it, l.end()) << p;
    EXPECT_EQ(*it, std::string("open ") + p + ": denied") << p;
  }
  EXPECT_TRUE(said_line("w", "list ..: denied"));
  EXPECT_TRUE(said_line("w", "open a.txt: ok"));
}

TEST_F(IntegrationTest, SeccompViolationIsAuditedWithTheSyscall) {
  make([&](auto& b) { worker(b, "w", "syscall"); });
  run();
  EXPECT_TRUE(said_line("w", "socket: Operation not permitted"));
  EXPECT_EQ(view("w").violations, 1u);
  EXPECT_EQ(count_lines_with(audit(), {"\"seccomp_violation\"", "\"syscall\":\"socket\""}), 1u);
}

TEST_F(IntegrationTest, TheAuditLogParsesLineByLineAndHoldsEveryEvent) {
  make([&](auto& b) {
    worker(b, "a", "hello");
    worker(b, "b", "ungranted");
    worker(b, "c", "syscall");
    worker(b, "d", "junk");
  });
  run();
  auto a = audit();
  ASSERT_FALSE(a.empty());
  std::map<std::string, int> events;
  std::uint64_t last_seq = 0;
  for (const std::string& line : a) {
    auto v = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(v.is_object()) << line;
    if (v.contains("event")) ++events[v["event"].get<std::string>()];
    if (v.contains("seq")) {
      auto seq = v["seq"].get<std::uint64_t>();
      EXPECT_EQ(seq, last_seq + 1) << line;
      last_seq = seq;
    }
  }
  EXPECT_EQ(events["audit_opened"], 1);
  EXPECT_EQ(events["worker_started"], 4);
  EXPECT_EQ(events["worker_exited"], 4);
  EXPECT_EQ(events["call_denied"], 1);
  EXPECT_EQ(events["seccomp_violation"], 1);
  EXPECT_EQ(events["bad_message"], 1);
  // Every grant created was released by the end, and each was logged
  // before its port was transferred.
  EXPECT_EQ(events["grant_created"], events["released"]);
  EXPECT_EQ(events["grant_created"], events["port_transferred"]);
}

}  // namespace
}  // namespace capsa::supervisor
