// Defence in depth: a policy may allow a syscall the default filter refuses
// (Spec::extra_syscalls). Then the kernel answers, and the namespaces, the
// dropped capabilities and the minimal filesystem must still say no. Each
// case allows exactly the calls its attack makes and asserts the kernel's
// exact answer, with no violation reported.
#include <unistd.h>

#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/sandbox/fixture.h"

namespace capsa::sandbox::testing {
namespace {

struct DepthCase {
  const char* name;  // test name
  const char* attack;
  std::vector<std::string> allow;
  const char* report;
  const char* arg = nullptr;  // "$PID": the test's pid
};

void PrintTo(const DepthCase& c, std::ostream* os) { *os << c.name; }

const DepthCase kDepth[] = {
    // The network namespace is empty: loopback only, nothing listens in it,
    // no route out.
    {"tcp", "tcp", {"socket", "connect"},
     "tcp socket=ok connect_lo=ECONNREFUSED connect_ext=ENETUNREACH", "80"},
    {"udp", "udp", {"socket"}, "udp socket=ok sendto=ENETUNREACH"},
    // No CAP_NET_RAW.
    {"packet", "packet", {"socket"}, "packet socket=EPERM"},
    // (The host's Unix sockets: network_test.cc, with a real listener.)
    // No CAP_SYS_ADMIN in the sandbox's user namespace.
    {"mount", "mount", {"mount"}, "mount mount=EPERM"},
    {"setns", "setns", {"setns"}, "setns open=ok setns=EPERM"},
    // The supervisor's pid is not in the worker's pid namespace; the
    // launcher (pid 1) is not dumpable.
    {"ptrace", "ptrace", {"ptrace"}, "ptrace kill0=ESRCH attach=ESRCH attach_pid1=EPERM", "$PID"},
    {"process_vm_readv", "process_vm_readv", {"process_vm_readv"},
     "process_vm_readv read=ESRCH read_pid1=EPERM", "$PID"},
};

class DefenceInDepth : public HostileTestP<DepthCase> {};

TEST_P(DefenceInDepth, KernelStillRefuses) {
  const DepthCase& c = GetParam();
  std::vector<std::string> args;
  if (c.arg != nullptr) {
    args.push_back(std::string(c.arg) == "$PID" ? std::to_string(::getpid()) : c.arg);
  }
  SpecBuilder b = hostile_spec(c.attack, args);
  for (const auto& name : c.allow) b.allow_syscall(name);
  auto spec = b.build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  Outcome out = run_spec(*spec);
  expect_verdict(out, c.report);
}

INSTANTIATE_TEST_SUITE_P(Hostile, DefenceInDepth, ::testing::ValuesIn(kDepth),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace capsa::sandbox::testing
