// capsa-run-unprivileged TEST_BINARY [ARGS...]
//
// Runs a sandbox test binary as an unprivileged supervisor would: when
// invoked as root it drops to uid/gid 65534 (no supplementary groups) and
// execs the test; otherwise it execs the test as is. It sets
// CAPSA_TEST_BIN_DIR to the directory holding the test and its helper
// programs. If uid 65534 cannot read that directory (a build under /root),
// its regular files and the launcher are first copied to a fresh mktemp
// directory with modes 0755, and CAPSA_TEST_BIN_DIR / CAPSA_LAUNCHER point
// there. The test then runs in a child, and the copy is removed when it
// ends (its exit status is passed on).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "capabilities/fd.h"

namespace {

constexpr uid_t kNobody = 65534;

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool drop() {
  return ::setgroups(0, nullptr) == 0 && ::setresgid(kNobody, kNobody, kNobody) == 0 &&
         ::setresuid(kNobody, kNobody, kNobody) == 0;
}

// Whether uid 65534 can execute `a` and `b` (checked in a child that drops).
bool nobody_can_run(const std::string& a, const std::string& b) {
  pid_t pid = ::fork();
  if (pid == 0) {
    bool ok = drop() && ::access(a.c_str(), X_OK) == 0 && ::access(b.c_str(), X_OK) == 0;
    ::_exit(ok ? 0 : 1);
  }
  int st = 0;
  return pid > 0 && ::waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool copy_file(const std::string& from, const std::string& to) {
  capsa::Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  capsa::Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755));
  if (!in.valid() || !out.valid()) return false;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0 || ::write(out.get(), buf, static_cast<size_t>(n)) != n) return false;
  }
}

// Removes the flat copy made for uid 65534 (regular files, then the dir).
void remove_copy(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  if (::rmdir(dir.c_str()) != 0) std::perror(("removing " + dir).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: capsa-run-unprivileged TEST_BINARY [ARGS...]\n");
    return 2;
  }
  // Absolute, so that CAPSA_TEST_BIN_DIR is usable as a program path in a spec.
  char* real = ::realpath(argv[1], nullptr);
  if (real == nullptr) {
    std::perror(argv[1]);
    return 127;
  }
  std::string test = real;
  std::free(real);
  std::string dir = dir_of(test);
  bool copied = false;
  if (::getuid() != 0) {
    ::setenv("CAPSA_TEST_BIN_DIR", dir.c_str(), 0);
    ::execv(test.c_str(), argv + 1);
    std::perror("execv");
    return 127;
  }
  // From here on, as root.
  const char* env_launcher = std::getenv("CAPSA_LAUNCHER");
  std::string launcher = env_launcher != nullptr ? env_launcher : CAPSA_LAUNCHER_BUILD_PATH;
  if (!nobody_can_run(test, launcher)) {
    char tmpl[] = "/tmp/capsa-unpriv-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr || ::chmod(tmpl, 0755) != 0) {
      std::perror("mkdtemp");
      return 127;
    }
    std::string copy = tmpl;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      std::perror("opendir");
      remove_copy(copy);
      return 127;
    }
    bool ok = true;
    while (dirent* e = ::readdir(d)) {
      std::string from = dir + "/" + e->d_name;
      struct stat st {};
      if (::stat(from.c_str(), &st) == 0 && S_ISREG(st.st_mode) && !copy_file(from, copy + "/" + e->d_name)) {
        std::fprintf(stderr, "cannot copy %s\n", from.c_str());
        ok = false;
      }
    }
    ::closedir(d);
    std::string new_launcher = copy + "/capsa-launcher";
    if (ok && !copy_file(launcher, new_launcher) && ::access(new_launcher.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "cannot copy the launcher %s\n", launcher.c_str());
      ok = false;
    }
    if (!ok) {
      remove_copy(copy);
      return 127;
    }
    copied = true;
    dir = copy;
    test = copy + test.substr(test.rfind('/'));
    ::setenv("CAPSA_LAUNCHER", new_launcher.c_str(), 1);
  }
  ::setenv("CAPSA_TEST_BIN_DIR", dir.c_str(), 1);
  pid_t child = copied ? ::fork() : 0;
  if (child < 0) {
    std::perror("fork");
    return 127;
  }
  if (child == 0) {
    if (!drop()) {
      std::perror("dropping to uid 65534");
      ::_exit(127);
    }
    // Set after the credential change, which clears it: if this wrapper is
    // killed (a ctest time-out), the test does not run on unsupervised.
    if (copied && (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() == 1)) ::_exit(127);
    ::execv(test.c_str(), argv + 1);
    std::perror("execv");
    ::_exit(127);
  }
  // Still root: wait for the test, then remove the copy (flat: files only).
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  remove_copy(dir);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}
