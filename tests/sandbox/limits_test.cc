// Hostile workers against the resource limits: each is bounded by the limit
// meant for it, with the exact verdict, and the supervisor serves afterwards.
// The limits are small (harness.h: small_limits()) so a run costs at most a
// few CPU seconds.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/sandbox/fixture.h"

namespace capsa::sandbox::testing {
namespace {

Outcome run_with(std::string_view attack, const Limits& limits, std::uint64_t tmpfs = 64ull << 20) {
  auto spec = hostile_spec(attack).limits(limits).tmpfs_bytes(tmpfs).build();
  if (!spec) {
    ADD_FAILURE() << spec.error().to_string();
    return Outcome{};
  }
  return run_spec(*spec);
}

// RLIMIT_NPROC in the sandbox's user namespace: fork fails with EAGAIN well
// before the worker's own cap (1024) — under a root supervisor too. The
// count is exact: the launcher (pid 1) and the worker take two of the
// max_processes slots, the bomb gets the rest.
TEST_F(HostileTest, ForkBombIsLimited) {
  Outcome out = run_attack("fork_bomb");
  std::string expected = "fork_bomb limited forks=" +
                         std::to_string(small_limits().max_processes - 2) + " fork=EAGAIN";
  expect_verdict(out, expected);
}

// RLIMIT_AS: mmap fails with ENOMEM before the address-space limit.
TEST_F(HostileTest, MemoryBombIsLimited) {
  Outcome out = run_attack("memory_bomb");
  ASSERT_EQ(out.reports.size(), 1u) << out.status.to_string();
  auto fields = parse_report(out.reports[0]);
  EXPECT_TRUE(fields.contains("limited")) << out.reports[0];
  EXPECT_EQ(fields["mmap"], "ENOMEM") << out.reports[0];
  EXPECT_LT(std::stol(fields["mib"]), static_cast<long>(small_limits().address_space_bytes >> 20));
  EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
}

// An ordinary program that dies of the failed allocation is classified as
// having hit the memory limit.
TEST_F(HostileTest, MemoryBombThatAbortsIsLimitMemory) {
  Outcome out = run_attack("memory_bomb_new");
  EXPECT_EQ(out.reports, std::vector<std::string>{"memory_bomb_new allocating"});
  EXPECT_EQ(out.status.kind, ExitKind::kLimitMemory) << out.status.to_string();
}

// RLIMIT_CPU: the spinner ignores SIGXCPU; the hard limit's SIGKILL ends it.
TEST_F(HostileTest, CpuSpinIsLimitCpu) {
  Outcome out = run_attack("cpu_spin");
  EXPECT_EQ(out.reports, std::vector<std::string>{"cpu_spin spinning"});
  EXPECT_EQ(out.status.kind, ExitKind::kLimitCpu) << out.status.to_string();
}

// A sleeper uses no CPU: only the supervisor's wall-clock deadline ends it.
TEST_F(HostileTest, SleeperIsLimitWall) {
  Limits l = small_limits();
  l.wall_seconds = 1;
  Outcome out = run_with("wall", l);
  EXPECT_EQ(out.reports, std::vector<std::string>{"wall sleeping"});
  EXPECT_EQ(out.status.kind, ExitKind::kLimitWall) << out.status.to_string();
}

// /tmp is a tmpfs with a size cap: ENOSPC at the cap (the file-size limit is
// set above it so it is the tmpfs that says no).
TEST_F(HostileTest, FillingTmpStopsAtTheTmpfsCap) {
  Limits l = small_limits();
  l.max_file_size_bytes = 64ull << 20;
  Outcome out = run_with("fill_tmp", l, 4ull << 20);
  ASSERT_EQ(out.reports.size(), 1u) << out.status.to_string();
  auto fields = parse_report(out.reports[0]);
  EXPECT_TRUE(fields.contains("limited")) << out.reports[0];
  EXPECT_EQ(fields["write"], "ENOSPC") << out.reports[0];
  EXPECT_LE(std::stol(fields["mib"]), 4) << out.reports[0];
  EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
}

// RLIMIT_FSIZE below the tmpfs cap: EFBIG exactly at the limit (SIGXFSZ is
// ignored by the worker, as an attacker would).
TEST_F(HostileTest, FillingTmpStopsAtTheFileSizeLimit) {
  Limits l = small_limits();
  l.max_file_size_bytes = 2ull << 20;
  Outcome out = run_with("fill_tmp", l, 8ull << 20);
  expect_verdict(out, "fill_tmp limited mib=2 write=EFBIG");
}

// Past RLIMIT_FSIZE with SIGXFSZ at its default action the kernel kills the
// worker: that is the file-size limit, also when its resident set (here 80%
// of the address-space limit) would otherwise read as the memory limit.
TEST_F(HostileTest, WritingPastTheFileSizeLimitIsLimitFileSize) {
  Limits l = small_limits();
  l.max_file_size_bytes = 1ull << 20;
  const std::uint64_t resident_mib = (l.address_space_bytes >> 20) * 4 / 5;
  auto spec = hostile_spec("fsize_kill", {std::to_string(resident_mib)}).limits(l).build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  Outcome out = run_spec(*spec);
  EXPECT_EQ(out.reports,
            std::vector<std::string>{"fsize_kill resident_mib=" + std::to_string(resident_mib)});
  EXPECT_EQ(out.status.kind, ExitKind::kLimitFileSize) << out.status.to_string();
  EXPECT_EQ(out.status.signal, SIGXFSZ) << out.status.to_string();
  EXPECT_GE(out.status.peak_rss_bytes * 4, l.address_space_bytes * 3)
      << "the resident set must be one the memory inference would have claimed";
  expect_still_serves();
}

// RLIMIT_NOFILE: with fds 0-3 open, exactly max_open_files - 4 more.
TEST_F(HostileTest, FdExhaustionStopsAtTheLimit) {
  Outcome out = run_attack("fds");
  std::string expected = "fds limited opened=" +
                         std::to_string(small_limits().max_open_files - 4) + " dup=EMFILE";
  expect_verdict(out, expected);
}

}  // namespace
}  // namespace capsa::sandbox::testing
