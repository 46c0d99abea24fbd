// What /proc tells a worker: its own processes only, and none of the
// kernel's information files (docs/SANDBOX.md, "/proc"). Each masked file
// is read by a hostile worker; each must open and read empty.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/mount_plan.h"
#include "tests/sandbox/fixture.h"

namespace capsa::sandbox::testing {
namespace {

// The files the issue named must be in the list, whatever else is.
TEST(ProcMask, ListHoldsTheKernelInformationFiles) {
  const auto& list = detail::kMaskedProcFiles;
  for (const char* named : {"cmdline", "kallsyms", "kmsg", "modules", "kcore", "keys"}) {
    EXPECT_TRUE(std::any_of(std::begin(list), std::end(list),
                            [&](const char* f) { return std::string(f) == named; }))
        << named;
  }
}

class MaskedProcFile : public HostileTestP<const char*> {};

// Each file of the list that exists on this kernel gives the worker
// nothing: it reads as empty (on the host some are readable by anyone:
// /proc/cmdline, /proc/kallsyms), or, when only root may open it (0400),
// it cannot be opened. The others do not exist there either.
TEST_P(MaskedProcFile, ReadsEmptyOrCannotBeOpened) {
  const std::string path = std::string("/proc/") + GetParam();
  struct stat st {};
  Outcome out = run_attack("proc_read", {path});
  if (::stat(path.c_str(), &st) != 0) {
    expect_verdict(out, "proc_read open=ENOENT");
  } else if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0) {
    EXPECT_EQ(st.st_uid, 0u) << path;
    expect_verdict(out, "proc_read open=EACCES");
  } else {
    expect_verdict(out, "proc_read open=ok bytes=0 read=ok");
  }
}

INSTANTIATE_TEST_SUITE_P(Hostile, MaskedProcFile, ::testing::ValuesIn(detail::kMaskedProcFiles),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           std::replace_if(name.begin(), name.end(),
                                           [](char c) { return !std::isalnum(c); }, '_');
                           return name;
                         });

// The control: a file that is not masked still reads (the mask is not a
// broken /proc).
TEST_F(HostileTest, UnmaskedProcFileStillReads) {
  Outcome out = run_attack("proc_read", {"/proc/self/status"});
  ASSERT_EQ(out.reports.size(), 1u) << out.status.to_string();
  auto fields = parse_report(out.reports[0]);
  EXPECT_EQ(fields["open"], "ok");
  EXPECT_GT(std::stol(fields["bytes"]), 0);
}

// A masked directory shows no entry.
TEST_F(HostileTest, MaskedProcDirectoryIsEmpty) {
  for (const char* dir : detail::kMaskedProcDirs) {
    const std::string path = std::string("/proc/") + dir;
    if (::access(path.c_str(), F_OK) != 0) continue;
    Outcome out = run_attack("dir_entries", {path});
    expect_verdict(out, "dir_entries count=0");
  }
}

// The worker's /proc is its pid namespace's: pid 1 (the launcher) and
// itself, nothing of the host.
TEST_F(HostileTest, ProcShowsOnlyTheSandboxsProcesses) {
  Outcome out = run_attack("proc_pids");
  expect_verdict(out, "proc_pids count=2");
}

}  // namespace
}  // namespace capsa::sandbox::testing
