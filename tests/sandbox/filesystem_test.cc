// Hostile workers against the filesystem view: secrets of the host, writes
// outside /tmp, the host's pid 1, inherited fds, the environment, setuid.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/sandbox/fixture.h"
#include "tests/support/temp_dir.h"

namespace capsa::sandbox::testing {
namespace {

// The root is minimal: /etc/shadow, /root and other homes are not hidden by
// permissions (which root inside a user namespace might get around) but are
// simply absent.
TEST_F(HostileTest, ShadowIsNotVisible) {
  Outcome out = run_attack("shadow");
  expect_verdict(out, "shadow open=ENOENT");
}

TEST_F(HostileTest, RootHomeIsNotVisible) {
  Outcome out = run_attack("root_home");
  expect_verdict(out, "root_home open=ENOENT");
}

// Another user's home as the host sees it: the first passwd entry whose home
// exists and is not ours. /home itself when there is none.
std::string other_users_home() {
  const uid_t me = ::getuid();
  std::string found = "/home";
  setpwent();
  while (const passwd* pw = getpwent()) {
    if (pw->pw_uid == me || pw->pw_dir == nullptr) continue;
    std::string dir = pw->pw_dir;
    if (dir.rfind("/home/", 0) == 0 && std::filesystem::is_directory(dir)) {
      found = dir;
      break;
    }
  }
  endpwent();
  return found;
}

TEST_F(HostileTest, OtherUsersHomeIsNotVisible) {
  std::string home = other_users_home();
  Outcome out = run_attack("other_home", {home});
  EXPECT_EQ(out.reports, std::vector<std::string>{"other_home open=ENOENT"}) << home;
  EXPECT_TRUE(out.violations.empty());
}

// Only /tmp is writable: the root and the bound host tree are read-only.
TEST_F(HostileTest, WritesOutsideTmpFail) {
  Outcome out = run_attack("write_outside_tmp");
  EXPECT_EQ(out.reports,
            std::vector<std::string>{"write_outside_tmp root=EROFS usr=EROFS tmp=ok"});
  EXPECT_TRUE(out.violations.empty());
}

// /proc is the sandbox's own: its pid 1 is the launcher, not the host's init,
// and nothing of the supervisor's environment shows through.
TEST_F(HostileTest, Proc1IsTheSandboxesOwn) {
  std::string marker = "capsa-host-marker-" + std::to_string(std::random_device{}());
  ASSERT_EQ(::setenv("CAPSA_HOST_MARKER", marker.c_str(), 1), 0);
  Outcome out = run_attack("proc1_environ", {marker.substr(5)});
  ::unsetenv("CAPSA_HOST_MARKER");
  // The launcher made itself non-dumpable, so even its environ is refused;
  // its cmdline (not protected) names it: /.capsa/launcher.
  EXPECT_EQ(out.reports,
            std::vector<std::string>{"proc1_environ environ=EACCES marker=0 cmdline=launcher"});
  EXPECT_TRUE(out.violations.empty());
}

// The worker's environment is exactly the spec's.
TEST_F(HostileTest, EnvironmentIsExactlyTheSpecs) {
  ASSERT_EQ(::setenv("CAPSA_HOST_MARKER", "leaked", 1), 0);
  auto spec = hostile_spec("env").env("CAPSA_ONLY", "1").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  Outcome out = run_spec(*spec);
  ::unsetenv("CAPSA_HOST_MARKER");
  EXPECT_EQ(out.reports, std::vector<std::string>{"env CAPSA_ONLY=1 "});
}

// No fd of the supervisor reaches the worker: only stdio and the bootstrap
// port. The test holds extra fds without CLOEXEC to make the point.
TEST_F(HostileTest, OnlyStdioAndBootstrapAreInherited) {
  int leaky = ::open("/dev/null", O_RDONLY);  // deliberately not O_CLOEXEC
  ASSERT_GE(leaky, 0);
  Fd owner(leaky);
  Outcome out = run_attack("list_fds");
  expect_verdict(out, "list_fds fds=0,1,2,3");
}

// The worker runs with no_new_privs and no effective capabilities.
TEST_F(HostileTest, NoPrivilegesInside) {
  Outcome out = run_attack("whoami");
  ASSERT_EQ(out.reports.size(), 1u);
  auto fields = parse_report(out.reports[0]);
  EXPECT_EQ(fields["nnp"], "1") << out.reports[0];
  EXPECT_EQ(fields["seccomp"], "2") << out.reports[0];  // filter mode
  EXPECT_EQ(fields["capeff"], "0000000000000000") << out.reports[0];
  EXPECT_EQ(fields["uid"], fields["euid"]) << out.reports[0];
}

// A setuid-root binary of the host is visible read-only in the sandbox, but
// the worker cannot even execute it: the filter allows execve only for the
// launcher's exec of the worker program (and no_new_privs plus nosuid binds
// would void the bit anyway: SetuidWorkerProgramGainsNothing).
TEST_F(HostileTest, SetuidBinaryGainsNothing) {
  const char* candidates[] = {"/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount",
                              "/usr/bin/newgrp"};
  std::string target;
  for (const char* c : candidates) {
    struct stat st {};
    if (::stat(c, &st) == 0 && (st.st_mode & S_ISUID) != 0 && st.st_uid == 0) {
      target = c;
      break;
    }
  }
  ASSERT_FALSE(target.empty()) << "no setuid-root binary on this host to try";
  Outcome out = run_attack("setuid", {target});
  ASSERT_EQ(out.reports.size(), 1u);
  auto fields = parse_report(out.reports[0]);
  EXPECT_EQ(fields["mode_suid"], "1") << out.reports[0];
  EXPECT_EQ(fields["exec"], "EPERM") << out.reports[0];
  EXPECT_EQ(fields["child_euid"], fields["my_euid"]) << out.reports[0];
  EXPECT_EQ(syscall_names(out.violations), std::vector<std::string>{"execve"});
}

// A setuid copy of the worker itself, owned by another uid, started as the
// worker program: the setuid bit is ignored, its effective uid is the
// sandbox's. Only root can make such a file, so the unprivileged pass skips.
TEST_F(HostileTest, SetuidWorkerProgramGainsNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create a setuid file of another owner";
  capsa::testing::TempDir dir("capsa-setuid");
  std::string copy = dir.file("hostile_worker");
  std::filesystem::copy_file(helper_path("hostile_worker"), copy);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  ASSERT_EQ(::chown(copy.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chmod(copy.c_str(), 04755), 0);
  auto spec = SpecBuilder(hostile_spec("whoami"))
                  .program(copy)
                  .args({copy, "whoami"})
                  .build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  Outcome out = run_spec(*spec);
  ASSERT_EQ(out.reports.size(), 1u) << out.status.to_string();
  auto fields = parse_report(out.reports[0]);
  EXPECT_EQ(fields["euid"], fields["uid"]) << out.reports[0];
  EXPECT_EQ(fields["nnp"], "1") << out.reports[0];
}

}  // namespace
}  // namespace capsa::sandbox::testing
