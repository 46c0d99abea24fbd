// open_host_file(): what the supervisor accepts as a launcher, a program or
// a bind source, with the exact words of every refusal. Runs as root (the
// sandbox is uid 65534 on host files) and, through the .unprivileged pass,
// as uid 65534 (the sandbox has the caller's own identity).
#include "sandbox/host_file.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "sandbox/testdata/test_limits.h"
#include "tests/support/fd_count.h"

namespace capsa::sandbox {
namespace {

using testing::FdLeakCheck;

bool root() { return ::geteuid() == 0; }

// A directory only its owner (we) can enter, like a 0700 home.
class PrivateDir {
 public:
  PrivateDir() {
    char tmpl[] = "/tmp/capsa-hostfile-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~PrivateDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // A file with `content` and `mode` (chmod'ed: no umask).
  std::string file(const std::string& name, const std::string& content, mode_t mode) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    if (::chmod(p.c_str(), mode) != 0) std::abort();
    return p;
  }

 private:
  std::string path_;
};

const char kElf[] = "\x7f" "ELF not really, only its first bytes";
const char kScript[] = "#!/bin/sh\nexit 0\n";

std::string owner_text() { return std::to_string(::geteuid()) + ":" + std::to_string(::getegid()); }
std::string sandbox_uid() { return root() ? "65534" : std::to_string(::geteuid()); }

std::string refusal(const Result<Fd>& r) { return r ? std::string("<accepted>") : r.error().message; }

TEST(HostFile, OnlyTheFilesOwnModeMattersNotItsDirectories) {
  FdLeakCheck leaks;
  {
    PrivateDir dir;  // 0700: uid 65534 could not even look inside
    ASSERT_EQ(::mkdir((dir.path() + "/deeper").c_str(), 0700), 0);
    std::string program = dir.file("deeper/worker", kElf, 0755);
    ASSERT_EQ(::mkdir((dir.path() + "/data").c_str(), 0755), 0);
    auto fd = open_host_file(HostFileUse::kProgram, program, sandbox_identity());
    ASSERT_TRUE(fd) << fd.error().to_string();
    // An O_PATH fd of the very file, close-on-exec (nothing else inherits it).
    EXPECT_EQ(::fcntl(fd->get(), F_GETFL) & O_PATH, O_PATH);
    EXPECT_EQ(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    struct stat by_fd {}, by_path {};
    ASSERT_EQ(::fstat(fd->get(), &by_fd), 0);
    ASSERT_EQ(::stat(program.c_str(), &by_path), 0);
    EXPECT_EQ(by_fd.st_ino, by_path.st_ino);
    auto bind = open_host_file(HostFileUse::kBindSource, dir.path() + "/data", sandbox_identity());
    EXPECT_TRUE(bind) << bind.error().to_string();
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(HostFile, ProgramTheSandboxCannotExecuteIsRefusedWithTheFix) {
  FdLeakCheck leaks;
  {
    PrivateDir dir;
    // Fine for us (its owner), not for the sandbox when we are root; as an
    // unprivileged supervisor the sandbox is us, so take x from the owner.
    const mode_t mode = root() ? 0700 : 0600;
    std::string program = dir.file("worker", kElf, mode);
    auto r = open_host_file(HostFileUse::kProgram, program, sandbox_identity());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_EQ(r.error().message,
              "program " + program + " (mode 0" + (root() ? "700" : "600") + ", owner " +
                  owner_text() + ") cannot be executed by the sandbox's uid " + sandbox_uid() +
                  " (the \"" + (root() ? "other" : "owner") + "\" permission bits apply): chmod " +
                  (root() ? "o" : "u") + "+x " + program);
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

// The kernel uses the first class that matches: a file owned by the
// sandbox's uid without owner x is not executable, whatever "other" says.
TEST(HostFile, TheOwnerClassWinsOverOther) {
  if (!root()) GTEST_SKIP() << "needs root to give the file to uid 65534";
  PrivateDir dir;
  std::string program = dir.file("worker", kElf, 0607);
  ASSERT_EQ(::chown(program.c_str(), 65534, 0), 0);
  EXPECT_EQ(refusal(open_host_file(HostFileUse::kProgram, program, sandbox_identity())),
            "program " + program + " (mode 0607, owner 65534:0) cannot be executed by the "
            "sandbox's uid 65534 (the \"owner\" permission bits apply): chmod u+x " + program);
}

// A script is opened by its interpreter, as the sandbox's uid: r as well as
// x. (Unprivileged, what we can read the sandbox can read: nothing to show.)
TEST(HostFile, ScriptMustAlsoBeReadable) {
  if (!root()) GTEST_SKIP() << "unprivileged, the sandbox reads what its caller reads";
  FdLeakCheck leaks;
  {
    PrivateDir dir;
    std::string script = dir.file("run.sh", kScript, 0711);
    EXPECT_EQ(refusal(open_host_file(HostFileUse::kProgram, script, sandbox_identity())),
              "program " + script + " (mode 0711, owner 0:0) cannot be read by the sandbox's "
              "uid 65534, which a script needs (the \"other\" permission bits apply): chmod o+r " +
                  script);
    ASSERT_EQ(::chmod(script.c_str(), 0700), 0);
    EXPECT_EQ(refusal(open_host_file(HostFileUse::kProgram, script, sandbox_identity())),
              "program " + script + " (mode 0700, owner 0:0) cannot be read and executed by the "
              "sandbox's uid 65534, which a script needs (the \"other\" permission bits apply): "
              "chmod o+rx " + script);
    // A binary needs only x: the kernel maps it without the caller reading it.
    std::string binary = dir.file("bin", kElf, 0711);
    EXPECT_TRUE(open_host_file(HostFileUse::kProgram, binary, sandbox_identity()));
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

// The last component is never followed: a link there (made by whoever can
// write the directory) cannot point the sandbox at another file.
TEST(HostFile, SymlinkIsRefusedNotFollowed) {
  FdLeakCheck leaks;
  {
    PrivateDir dir;
    std::string target = dir.file("worker", kElf, 0755);
    std::string link = dir.path() + "/link";
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    for (HostFileUse use : {HostFileUse::kProgram, HostFileUse::kBindSource}) {
      std::string what = use == HostFileUse::kProgram ? "program " : "read-only bind ";
      EXPECT_EQ(refusal(open_host_file(use, link, sandbox_identity())),
                what + link + " is a symbolic link (to " + target +
                    "); name the file itself: a link there is never followed");
    }
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(HostFile, WrongKindsAndMissingFilesAreRefused) {
  FdLeakCheck leaks;
  {
    PrivateDir dir;
    std::string fifo = dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);  // O_PATH: opening it cannot block us
    const SandboxIdentity id = sandbox_identity();
    EXPECT_EQ(refusal(open_host_file(HostFileUse::kProgram, dir.path(), id)),
              "program " + dir.path() + " is not a regular file");
    EXPECT_EQ(refusal(open_host_file(HostFileUse::kLauncher, fifo, id)),
              "launcher " + fifo + " is not a regular file");
    EXPECT_EQ(refusal(open_host_file(HostFileUse::kBindSource, fifo, id)),
              "read-only bind " + fifo + " is neither a directory nor a regular file");
    auto missing = open_host_file(HostFileUse::kProgram, dir.path() + "/none", id);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::kNotFound);
    EXPECT_EQ(missing.error().message, "program " + dir.path() + "/none does not exist");
    EXPECT_EQ(refusal(open_host_file(HostFileUse::kProgram, "relative/x", id)),
              "program relative/x must be an absolute path");
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

// /proc/PID/root, cwd and fd links lead into another process's view of the
// filesystem: refused on the way, not only at the end.
TEST(HostFile, MagicLinksOnTheWayAreRefused) {
  PrivateDir dir;
  std::string program = dir.file("worker", kElf, 0755);
  EXPECT_EQ(refusal(open_host_file(HostFileUse::kProgram, "/proc/self/root" + program,
                                   sandbox_identity())),
            "program /proc/self/root" + program +
                " cannot be opened: Too many levels of symbolic links");
}

TEST(HostFile, BindSourceMustBeSearchableOrReadable) {
  if (!root()) GTEST_SKIP() << "unprivileged, the sandbox reads what its caller reads";
  PrivateDir dir;
  std::string sub = dir.path() + "/sub";
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  std::string data = dir.file("data", "x", 0600);
  const SandboxIdentity id = sandbox_identity();
  EXPECT_EQ(refusal(open_host_file(HostFileUse::kBindSource, sub, id)),
            "read-only bind " + sub + " (mode 0700, owner 0:0) cannot be searched by the "
            "sandbox's uid 65534 (the \"other\" permission bits apply): chmod o+x " + sub);
  EXPECT_EQ(refusal(open_host_file(HostFileUse::kBindSource, data, id)),
            "read-only bind " + data + " (mode 0600, owner 0:0) cannot be read by the "
            "sandbox's uid 65534 (the \"other\" permission bits apply): chmod o+r " + data);
}

// A bind keeps its mount's flags: exec on a noexec mount would fail in the
// sandbox whatever the mode says. The mount is made in a child of ours with
// a mount namespace of its own (root only), which reports the verdict.
TEST(HostFile, ProgramOnANoexecMountIsRefused) {
  if (!root()) GTEST_SKIP() << "needs root for a private noexec mount";
  PrivateDir dir;
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd read_end(p[0]), write_end(p[1]);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string verdict = "child setup failed";
    if (::unshare(CLONE_NEWNS) == 0 && ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0 &&
        ::mount("t", dir.path().c_str(), "tmpfs", MS_NOEXEC, "mode=0755") == 0) {
      std::string program = dir.file("worker", kElf, 0755);
      verdict = refusal(open_host_file(HostFileUse::kProgram, program, sandbox_identity()));
    }
    (void)!::write(write_end.get(), verdict.data(), verdict.size());
    ::_exit(0);
  }
  write_end.reset();
  char buf[512];
  ssize_t n = ::read(read_end.get(), buf, sizeof buf);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0),
            "program " + dir.path() + "/worker is on a filesystem mounted noexec; the sandbox "
            "could not execute it");
}

TEST(HostFile, HostFilesOfASpecNameTheOneThatFails) {
  FdLeakCheck leaks;
  {
    PrivateDir dir;
    std::string program = dir.file("worker", kElf, 0755);
    auto spec = SpecBuilder()
                    .name("w")
                    .program(program)
                    .launcher(dir.path() + "/no-launcher")
                    .limits(testing::sandbox_test_limits())
                    .build();
    ASSERT_TRUE(spec) << spec.error().to_string();
    auto files = open_host_files(*spec);
    ASSERT_FALSE(files);
    EXPECT_EQ(files.error().message, "launcher " + dir.path() + "/no-launcher does not exist");
    spec->launcher = default_launcher_path();
    files = open_host_files(*spec);
    ASSERT_TRUE(files) << files.error().to_string();
    EXPECT_TRUE(files->launcher.valid());
    EXPECT_TRUE(files->program.valid());
    EXPECT_TRUE(files->binds.empty());
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

}  // namespace
}  // namespace capsa::sandbox
