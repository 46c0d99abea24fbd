// capsa hostile worker — filesystem and /proc attacks: secrets, writes
// outside /tmp, the host's pid 1, inherited fds, setuid binaries.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {
namespace {

// open(path) and report the errno (or "ok" and the first bytes read).
int open_and_report(const char* attack, const char* path, int flags) {
  int fd = ::open(path, flags | O_CLOEXEC);
  int err = errno;
  if (fd < 0) {
    report("%s open=%s", attack, outcome(fd, err));
    return 0;
  }
  char buf[64] = {};
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  err = errno;
  report("%s open=ok read=%s", attack, n >= 0 ? "ok" : outcome(n, err));
  return 0;
}

int shadow(const char*) { return open_and_report("shadow", "/etc/shadow", O_RDONLY); }

int root_home(const char*) {
  return open_and_report("root_home", "/root", O_RDONLY | O_DIRECTORY);
}

// The test passes another user's home directory (as the host sees it).
int other_home(const char* path) {
  return open_and_report("other_home", path != nullptr ? path : "/home", O_RDONLY | O_DIRECTORY);
}

// Creating files outside /tmp: in the root, under /usr (the bound host tree),
// under /proc; and, as the control, in /tmp, which must work.
int write_outside_tmp(const char*) {
  const char* paths[] = {"/capsa_probe", "/usr/capsa_probe", "/tmp/capsa_probe"};
  const char* names[] = {"root", "usr", "tmp"};
  std::string line = "write_outside_tmp";
  for (int i = 0; i < 3; ++i) {
    int fd = ::open(paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int err = errno;
    line += std::string(" ") + names[i] + "=" + outcome(fd, err);
  }
  report("%s", line.c_str());
  return 0;
}

// Reads the sandbox's /proc/1: its environ must not be the host's (the test
// passes a marker it put in its own environment), and its cmdline must not be
// the host's init. The cmdline is read even when environ is refused.
int proc1_environ(const char* marker) {
  char env[8192] = {};
  int fd = ::open("/proc/1/environ", O_RDONLY | O_CLOEXEC);
  int err = errno;
  ssize_t n = -1;
  if (fd >= 0) {
    n = ::read(fd, env, sizeof(env) - 1);
    err = errno;
  }
  bool has_marker = false;
  if (n > 0 && marker != nullptr && *marker != '\0') {
    has_marker = ::memmem(env, static_cast<std::size_t>(n), marker, std::strlen(marker)) != nullptr;
  }
  char cmd[256] = {};
  int cfd = ::open("/proc/1/cmdline", O_RDONLY | O_CLOEXEC);
  if (cfd >= 0) (void)!::read(cfd, cmd, sizeof(cmd) - 1);
  const char* base = std::strrchr(cmd, '/');
  report("proc1_environ environ=%s marker=%d cmdline=%s", outcome(n, err), has_marker ? 1 : 0,
         base != nullptr ? base + 1 : cmd);
  return 0;
}

// Lists /proc/self/fd, without the directory's own fd.
int list_fds(const char*) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    int err = errno;
    report("list_fds opendir=%s", outcome(-1, err));
    return 0;
  }
  int self = ::dirfd(dir);
  std::string line = "list_fds fds=";
  bool first = true;
  // readdir order is not numeric; collect into a bitmap of the first 1024.
  bool seen[1024] = {};
  int extra = 0;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd == self) continue;
    if (fd >= 0 && fd < 1024) seen[fd] = true; else ++extra;
  }
  for (int fd = 0; fd < 1024; ++fd) {
    if (!seen[fd]) continue;
    line += (first ? "" : ",") + std::to_string(fd);
    first = false;
  }
  if (extra != 0) line += " beyond1024=" + std::to_string(extra);
  report("%s", line.c_str());
  return 0;
}

// The value of one "Key:\t..." line of /proc/<pid>/status, first field only.
std::string status_field(const char* status_path, const char* key) {
  char buf[4096] = {};
  int fd = ::open(status_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "?";
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return "?";
  std::string s(buf, static_cast<std::size_t>(n));
  std::string k = std::string("\n") + key + ":";
  auto at = s.find(k);
  if (at == std::string::npos) return "?";
  at += k.size();
  while (at < s.size() && (s[at] == '\t' || s[at] == ' ')) ++at;
  auto end = s.find_first_of("\t\n ", at);
  return s.substr(at, end - at);
}

// Who am I: real/effective uid, no_new_privs, seccomp mode, effective caps.
int whoami(const char*) {
  report("whoami uid=%u euid=%u nnp=%s seccomp=%s capeff=%s", ::getuid(), ::geteuid(),
         status_field("/proc/self/status", "NoNewPrivs").c_str(),
         status_field("/proc/self/status", "Seccomp").c_str(),
         status_field("/proc/self/status", "CapEff").c_str());
  return 0;
}

// Executes the setuid binary `path` in a child and reads the child's
// credentials after the exec. The child is kept as a zombie (WNOWAIT) so its
// /proc/PID/status, which keeps the credentials of the exec'd image, can be
// read even if the binary exits at once. A setuid bit that took effect shows
// as Uid's effective field differing from ours.
int setuid_exec(const char* path) {
  if (path == nullptr) path = "/usr/bin/su";
  struct stat st {};
  if (::stat(path, &st) != 0) {
    int err = errno;
    report("setuid stat=%s", outcome(-1, err));
    return 0;
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return 3;
  pid_t child = ::fork();
  if (child == 0) {
    // Feed the binary an empty stdin so it cannot wait on a terminal.
    int devnull[2];
    if (::pipe(devnull) == 0) {
      ::close(devnull[1]);
      ::dup2(devnull[0], 0);
    }
    char* const argv[] = {const_cast<char*>(path), nullptr};
    char* const envp[] = {nullptr};
    ::execve(path, argv, envp);
    int err = errno;
    (void)!::write(pipefd[1], &err, sizeof(err));
    ::_exit(127);
  }
  ::close(pipefd[1]);
  int exec_err = 0;
  ssize_t got = ::read(pipefd[0], &exec_err, sizeof(exec_err));
  siginfo_t si{};
  ::waitid(P_PID, static_cast<id_t>(child), &si, WEXITED | WNOWAIT);
  char status_path[64];
  std::snprintf(status_path, sizeof(status_path), "/proc/%d/status", child);
  std::string uid = status_field(status_path, "Uid");  // real uid (first field)
  // The Uid line is "real effective saved fs"; read the effective field.
  char buf[4096] = {};
  std::string euid = "?";
  int fd = ::open(status_path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
    ::close(fd);
    const char* line = n > 0 ? std::strstr(buf, "\nUid:") : nullptr;
    unsigned r = 0, e = 0;
    if (line != nullptr && std::sscanf(line + 5, "%u %u", &r, &e) == 2) euid = std::to_string(e);
  }
  ::waitpid(child, nullptr, 0);
  report("setuid mode_suid=%d owner=%u exec=%s child_uid=%s child_euid=%s my_euid=%u",
         (st.st_mode & S_ISUID) != 0 ? 1 : 0, st.st_uid,
         got == static_cast<ssize_t>(sizeof(exec_err)) ? outcome(-1, exec_err) : "ok",
         uid.c_str(), euid.c_str(), ::geteuid());
  return 0;
}

// The worker's own environment, NULs replaced by spaces.
int env(const char*) {
  char buf[2048] = {};
  int fd = ::open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof(buf) - 1) : -1;
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[i] == '\0') buf[i] = ' ';
  }
  report("env %s", n > 0 ? buf : "");
  return 0;
}

}  // namespace

const AttackEntry kFsAttacks[] = {
    {"shadow", shadow},
    {"root_home", root_home},
    {"other_home", other_home},
    {"write_outside_tmp", write_outside_tmp},
    {"proc1_environ", proc1_environ},
    {"list_fds", list_fds},
    {"whoami", whoami},
    {"setuid", setuid_exec},
    {"env", env},
    {nullptr, nullptr},
};

}  // namespace hostile
