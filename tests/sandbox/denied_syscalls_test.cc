// Hostile workers whose attack is a syscall outside the allowlist. Each runs
// under both violation actions:
//   kErrno: the call fails with EPERM, the worker reports that and exits 0,
//           and the supervisor got a Violation naming the syscall;
//   kKill:  the sandbox dies at the first forbidden call (status
//           "violation"), the worker never reports, and the supervisor got
//           exactly that one Violation.
#include <unistd.h>

#include <csignal>

#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/sandbox/fixture.h"

namespace capsa::sandbox::testing {
namespace {

struct DeniedCase {
  const char* attack;
  // The worker's report when every forbidden call fails with EPERM.
  const char* errno_report;
  // Forbidden syscalls in the order the attack makes them (kErrno mode); in
  // kKill mode only the first happens.
  std::vector<std::string> syscalls;
  // Argument for the attack; "$PID" is replaced with the test's pid.
  const char* arg = nullptr;
};

void PrintTo(const DeniedCase& c, std::ostream* os) { *os << c.attack; }

std::string param_name(const ::testing::TestParamInfo<std::tuple<DeniedCase, ViolationAction>>& info) {
  return std::string(std::get<0>(info.param).attack) +
         (std::get<1>(info.param) == ViolationAction::kErrno ? "_errno" : "_kill");
}

const DeniedCase kDenied[] = {
    // Networking: no socket family but AF_UNIX may be created.
    {"tcp", "tcp socket=EPERM", {"socket"}},
    {"udp", "udp socket=EPERM", {"socket"}},
    {"netlink", "netlink socket=EPERM", {"socket"}},
    {"packet", "packet socket=EPERM", {"socket"}},
    // Mount and namespaces.
    {"mount", "mount mount=EPERM", {"mount"}},
    {"unshare", "unshare unshare=EPERM", {"unshare"}},
    {"setns", "setns open=ok setns=EPERM", {"setns"}},
    {"clone_newuser", "clone_newuser clone=EPERM", {"clone"}},
    // Kernel attack surface.
    {"bpf", "bpf bpf=EPERM", {"bpf"}},
    {"io_uring", "io_uring io_uring_setup=EPERM", {"io_uring_setup"}},
    {"perf", "perf perf_event_open=EPERM", {"perf_event_open"}},
    {"keyctl", "keyctl add_key=EPERM keyctl=EPERM", {"add_key", "keyctl"}},
    {"userfaultfd", "userfaultfd userfaultfd=EPERM", {"userfaultfd"}},
    {"personality", "personality personality=EPERM read_implies_exec=0",
     {"personality", "personality"}},
    // Other processes: the supervisor's pid means nothing in the worker's pid
    // namespace, and the calls themselves are forbidden.
    {"ptrace", "ptrace kill0=ESRCH attach=EPERM attach_pid1=EPERM", {"ptrace", "ptrace"}, "$PID"},
    {"process_vm_readv", "process_vm_readv read=EPERM read_pid1=EPERM",
     {"process_vm_readv", "process_vm_readv"}, "$PID"},
};

class DeniedSyscall : public HostileTestP<std::tuple<DeniedCase, ViolationAction>> {};

TEST_P(DeniedSyscall, ReportedWithExactVerdict) {
  const auto& [c, action] = GetParam();
  std::vector<std::string> args;
  if (c.arg != nullptr) {
    args.push_back(std::string(c.arg) == "$PID" ? std::to_string(::getpid()) : c.arg);
  }
  Outcome out = run_attack(c.attack, args, action);
  ASSERT_FALSE(out.violations.empty()) << out.status.to_string();
  for (const auto& v : out.violations) {
    EXPECT_EQ(v.worker, std::string("hostile-") + c.attack);
    EXPECT_EQ(v.action, action);
    EXPECT_GT(v.pid, 0);
  }
  if (action == ViolationAction::kErrno) {
    expect_verdict(out, c.errno_report, c.syscalls);
    EXPECT_EQ(out.status.code, 0);
  } else {
    EXPECT_EQ(out.reports, std::vector<std::string>{});
    EXPECT_EQ(syscall_names(out.violations), std::vector<std::string>{c.syscalls.front()});
    EXPECT_EQ(out.status.kind, ExitKind::kViolation) << out.status.to_string();
  }
}

INSTANTIATE_TEST_SUITE_P(Hostile, DeniedSyscall,
                         ::testing::Combine(::testing::ValuesIn(kDenied),
                                            ::testing::Values(ViolationAction::kErrno,
                                                              ViolationAction::kKill)),
                         param_name);

// The violation record carries the raw arguments: socket(AF_INET,
// SOCK_STREAM|SOCK_CLOEXEC, 0) as the worker passed them.
TEST_F(HostileTest, ViolationCarriesSyscallArguments) {
  Outcome out = run_attack("tcp");
  ASSERT_EQ(out.violations.size(), 1u);
  const Violation& v = out.violations[0];
  EXPECT_EQ(v.syscall, "socket");
  EXPECT_EQ(v.nr, 41);  // __NR_socket on x86_64
  EXPECT_EQ(v.args[0], 2u);  // AF_INET
  EXPECT_EQ(v.args[1] & 0xf, 1u);  // SOCK_STREAM
}

// int 0x80 enters the i386 syscall table, which an x86_64 filter does not
// describe: the filter kills on the foreign architecture whatever the
// configured action, and the worker never returns from the instruction.
class Int80 : public HostileTestP<ViolationAction> {};

TEST_P(Int80, KilledAsViolation) {
  Outcome out = run_attack("int80", {}, GetParam());
  EXPECT_EQ(out.reports, std::vector<std::string>{"int80 calling"});
  EXPECT_EQ(out.status.kind, ExitKind::kViolation) << out.status.to_string();
  // Killed by the filter itself (SECCOMP_RET_KILL_PROCESS), not through a
  // notification: the i386 number could not be decoded as an x86_64 one.
  EXPECT_EQ(out.status.signal, SIGSYS) << out.status.to_string();
  EXPECT_TRUE(out.violations.empty());
}

INSTANTIATE_TEST_SUITE_P(Hostile, Int80,
                         ::testing::Values(ViolationAction::kErrno, ViolationAction::kKill),
                         [](const auto& p) {
                           return p.param == ViolationAction::kErrno ? "errno" : "kill";
                         });

}  // namespace
}  // namespace capsa::sandbox::testing
