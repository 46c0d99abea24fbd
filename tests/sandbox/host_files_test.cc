// Workers kept where only their operator can look (a 0700 home, a private
// service dir), and the paths to them changed under the supervisor's feet.
// The launcher, the program and a bind source live in a private layout
// owned by whoever runs the test: as root, uid 65534 (the sandbox) cannot
// enter any of its directories; in the unprivileged pass the sandbox has the
// test's own identity. Each case asserts the exact verdict; the fixture then
// checks that nothing leaked and a plain worker still starts.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/program_copy.h"
#include "tests/sandbox/fixture.h"

namespace capsa::sandbox::testing {
namespace {

namespace fs = std::filesystem;

bool root() { return ::geteuid() == 0; }

// <tmp 0700>/capsa/{build/sandbox/capsa-launcher,
// operator-kestrel-plugins/hostile_worker, data/motd}, every directory 0700
// except data/ (0755: a bind source the sandbox may read once it is bound;
// its parents stay closed). "operator-kestrel" stands for what an
// operator's layout says about them (a user name, a project): it occurs in
// the program's host path and nowhere else.
inline constexpr const char* kSecret = "operator-kestrel";

class PrivateLayout {
 public:
  PrivateLayout() {
    char tmpl[] = "/tmp/capsa-private-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    top_ = tmpl;
    for (const char* d :
         {"/capsa", "/capsa/build", "/capsa/build/sandbox", "/capsa/operator-kestrel-plugins"}) {
      if (::mkdir((top_ + d).c_str(), 0700) != 0) std::abort();
    }
    if (::mkdir((top_ + "/capsa/data").c_str(), 0755) != 0) std::abort();
    std::ofstream(data() + "/motd") << "bound from a private directory\n";
    if (::chmod((data() + "/motd").c_str(), 0644) != 0) std::abort();
    copy(default_launcher_path(), launcher());
    copy(helper_path("hostile_worker"), program());
  }
  ~PrivateLayout() {
    std::error_code ec;
    fs::remove_all(top_, ec);
  }
  std::string launcher_dir() const { return top_ + "/capsa/build/sandbox"; }
  std::string launcher() const { return launcher_dir() + "/capsa-launcher"; }
  std::string program_dir() const { return top_ + "/capsa/operator-kestrel-plugins"; }
  std::string program() const { return program_dir() + "/hostile_worker"; }
  std::string data() const { return top_ + "/capsa/data"; }

  // hostile_worker <attack> [arg] from this layout, argv[0] as the
  // supervisor gives it (default_argv0).
  SpecBuilder spec(const std::string& attack, const std::string& arg = "") const {
    std::vector<std::string> argv{default_argv0(program()), attack};
    if (!arg.empty()) argv.push_back(arg);
    SpecBuilder b;
    b.name("private-" + attack).program(program()).launcher(launcher()).args(argv).limits(
        small_limits());
    return b;
  }

 private:
  static void copy(const std::string& from, const std::string& to) {
    fs::copy_file(from, to);
    if (::chmod(to.c_str(), 0755) != 0) std::abort();
  }
  std::string top_;
};

Outcome run_hello(const Spec& spec, const HostFiles* files = nullptr) {
  auto running = files != nullptr ? start(spec, *files) : start(spec);
  if (!running) return Outcome{};
  return finish(*running, answer_ping);
}

const std::vector<std::string> kHelloPong = {"hello ready", "pong"};

// What the worker reports when it read the private layout's data file
// through its bind.
const std::vector<std::string> kReadThroughBind{
    "read_path open=ok text=bound from a private directory"};

// Builds `b`, runs it, and expects the worker to have read through its bind.
void expect_read_through_bind(const SpecBuilder& b) {
  auto spec = b.build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  EXPECT_EQ(run_spec(*spec).reports, kReadThroughBind);
}

// The issue's failure: "bwrap: Can't find source path ...: Permission
// denied" for every worker as root. Also what the worker learns of the
// host: the launcher is exec'ed through its fd and mounted nowhere; the
// program is at /.capsa/program, bound from a copy in the supervisor's
// program cache (program_copy.h), so the root field of that mount is the
// copy's neutral path and no part of the operator's layout shows in the
// mount table, /proc/self/exe or the command line; argv[0] is its file name.
TEST_F(HostileTest, WorkerStartsFromAPrivateLayoutAndSeesNoHostPath) {
  PrivateLayout layout;
  auto spec = layout
                  .spec("host_view", layout.launcher_dir() + ":" + layout.program_dir() + ":" +
                                         kSecret)
                  .build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  Outcome out = run_spec(*spec);
  ASSERT_EQ(out.reports.size(), 1u);
  // The copy's path within its filesystem: "/capsa-programs-XXXXXX/pN" on a
  // tmpfs (/dev/shm here), with the parent's path in front on a disk.
  const std::string dir = detail::program_copies_dir();
  const std::string leaf = dir.substr(dir.rfind('/') + 1);
  ASSERT_TRUE(leaf.starts_with("capsa-programs-")) << dir;
  const std::regex shown("host_view launcher_lines=0 program_lines=0 secret_seen=0 "
                         "program_root=(/[a-z/]*)?/" + leaf + "/p[0-9]+ exe=/.capsa/program "
                         "argv0=hostile_worker launcher=/proc/self/fd/9 launcher_open=ENOENT "
                         "proc1_exe=EACCES");
  EXPECT_TRUE(std::regex_match(out.reports[0], shown)) << out.reports[0];
  EXPECT_EQ(out.status.kind, ExitKind::kExited) << out.status.to_string();
  EXPECT_EQ(out.status.code, 0);
  EXPECT_TRUE(out.violations.empty());
}

TEST_F(HostileTest, BindFromAPrivateDirectoryIsReadableAtItsDestination) {
  PrivateLayout layout;
  expect_read_through_bind(layout.spec("read_path", "/data/motd").ro_bind(layout.data(), "/data"));
}

// Between the supervisor's open and the spawn, the program is renamed away
// and a symlink to another program put at its path: the sandbox runs the
// file that was opened (as root: a mount copied from our fd; otherwise
// bubblewrap binds the fd's current name and checks it is that inode).
TEST_F(HostileTest, ProgramRenamedAndReplacedBySymlinkAfterOpenRunsAsOpened) {
  PrivateLayout layout;
  auto spec = layout.spec("hello").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto files = open_host_files(*spec);
  ASSERT_TRUE(files) << files.error().to_string();
  fs::rename(layout.program(), layout.program() + ".old");
  fs::create_symlink("/usr/bin/true", layout.program());
  Outcome out = run_hello(*spec, &*files);
  EXPECT_EQ(out.reports, kHelloPong) << "the symlink was followed";
  EXPECT_EQ(out.status.code, 0) << out.status.to_string();
}

// The same with the opened file deleted: nothing is started (the copy is
// made from the opened file, but one with no link left is refused: deleting
// a program stops it, as a bind of it did).
TEST_F(HostileTest, ProgramDeletedAndReplacedBySymlinkAfterOpenIsRefused) {
  PrivateLayout layout;
  auto spec = layout.spec("hello").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto files = open_host_files(*spec);
  ASSERT_TRUE(files) << files.error().to_string();
  fs::remove(layout.program());
  fs::create_symlink("/usr/bin/true", layout.program());
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  auto w = spawn(*spec, *files, channel->second.release_fd());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().message, "program " + layout.program() + " was deleted since it was opened");
}

// A program replaced on disk between two spawns (renamed over: another
// inode; rewritten in place: another size and mtime) is copied again: each
// spawn runs the file its own open found, never a stale copy.
TEST_F(HostileTest, ProgramReplacedOnDiskBetweenSpawnsRunsTheNewOne) {
  PrivateLayout layout;
  auto spec = layout.spec("hello").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  Outcome first = run_hello(*spec);
  EXPECT_EQ(first.reports, kHelloPong);
  EXPECT_EQ(first.status.code, 0) << first.status.to_string();

  const std::string next = layout.program() + ".new";
  std::ofstream(next) << "#!/bin/sh\nexit 7\n";
  ASSERT_EQ(::chmod(next.c_str(), 0755), 0);
  fs::rename(next, layout.program());
  Outcome second = run_spec(*spec);
  EXPECT_EQ(second.reports, std::vector<std::string>{});
  EXPECT_EQ(second.status.kind, ExitKind::kExited) << second.status.to_string();
  EXPECT_EQ(second.status.code, 7) << "the copy of the replaced program ran";

  std::ofstream(layout.program(), std::ios::trunc) << "#!/bin/sh\nexit 9 # in place\n";
  Outcome third = run_spec(*spec);
  EXPECT_EQ(third.status.kind, ExitKind::kExited) << third.status.to_string();
  EXPECT_EQ(third.status.code, 9) << "the copy of the program before its rewrite ran";
}

// Between `capsa check` (or any earlier look) and the spawn, the program is
// replaced by a symlink: spawn() opens the path itself and refuses it.
TEST_F(HostileTest, ProgramSwappedForASymlinkBeforeSpawnIsRefused) {
  PrivateLayout layout;
  auto spec = layout.spec("hello").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  ASSERT_TRUE(open_host_files(*spec));  // what a check saw: fine
  fs::rename(layout.program(), layout.program() + ".old");
  fs::create_symlink(layout.program() + ".old", layout.program());
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  auto w = spawn(*spec, channel->second.release_fd());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().message, "program " + layout.program() + " is a symbolic link (to " +
                                   layout.program() + ".old); name the file itself: a link there "
                                   "is never followed");
}

// A bind source swapped for a symlink after it was opened: the directory
// that was opened is what the worker reads.
TEST_F(HostileTest, BindSourceRenamedAndReplacedBySymlinkAfterOpenIsBoundAsOpened) {
  PrivateLayout layout;
  auto spec = layout.spec("read_path", "/data/motd").ro_bind(layout.data(), "/data").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto files = open_host_files(*spec);
  ASSERT_TRUE(files) << files.error().to_string();
  fs::rename(layout.data(), layout.data() + ".old");
  fs::create_symlink("/etc", layout.data());
  auto running = start(*spec, *files);
  ASSERT_TRUE(running);
  EXPECT_EQ(finish(*running).reports, kReadThroughBind);
}

// kMaxBinds binds, each from a private directory: every one becomes an fd
// or a staged mount on the way in, and the last one is where it belongs.
TEST_F(HostileTest, AsManyBindsAsTheLimitAllowStart) {
  PrivateLayout layout;
  SpecBuilder b = layout.spec("read_path", "/b63/motd");
  for (std::size_t i = 0; i < kMaxBinds; ++i) b.ro_bind(layout.data(), "/b" + std::to_string(i));
  expect_read_through_bind(b);
}

// The file's own mode, for the uid the sandbox runs as, decides; spawn()
// says so before anything starts.
TEST_F(HostileTest, ProgramTheSandboxCannotExecuteIsRefusedAtSpawn) {
  PrivateLayout layout;
  const mode_t mode = root() ? 0700 : 0600;
  ASSERT_EQ(::chmod(layout.program().c_str(), mode), 0);
  auto spec = layout.spec("hello").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  auto w = spawn(*spec, channel->second.release_fd());
  ASSERT_FALSE(w);
  const std::string me = std::to_string(::geteuid());
  EXPECT_EQ(w.error().message,
            "program " + layout.program() + " (mode 0" + (root() ? "700" : "600") + ", owner " +
                me + ":" + std::to_string(::getegid()) +
                ") cannot be executed by the sandbox's uid " + (root() ? "65534" : me) +
                " (the \"" + (root() ? "other" : "owner") + "\" permission bits apply): chmod " +
                (root() ? "o" : "u") + "+x " + layout.program());
}

// The same for the launcher, which bubblewrap execs as the sandbox's uid.
TEST_F(HostileTest, LauncherTheSandboxCannotExecuteIsRefusedAtSpawn) {
  if (!root()) GTEST_SKIP() << "unprivileged, the launcher is the caller's own (owner x)";
  PrivateLayout layout;
  ASSERT_EQ(::chmod(layout.launcher().c_str(), 0750), 0);
  auto spec = layout.spec("hello").build();
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  auto w = spawn(*spec, channel->second.release_fd());
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().message,
            "launcher " + layout.launcher() + " (mode 0750, owner 0:0) cannot be executed by the "
            "sandbox's uid 65534 (the \"other\" permission bits apply): chmod o+x " +
                layout.launcher());
}

}  // namespace
}  // namespace capsa::sandbox::testing
