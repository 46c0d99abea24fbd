// capsa hostile worker — what the sandbox tells its worker about the host's
// filesystem layout: the mount table, its own executable and name, the
// launcher, and a bound path read back.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/sandbox/hostile/hostile.h"

namespace hostile {
namespace {

std::string read_all(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

// readlink() as text, or the errno name.
std::string link_of(const char* path) {
  char buf[4096];
  ssize_t n = ::readlink(path, buf, sizeof buf - 1);
  if (n < 0) return outcome(-1, errno);
  return std::string(buf, static_cast<std::size_t>(n));
}

// `arg` is "LAUNCHER_DIR:PROGRAM_DIR:SECRET": two host directories and a
// word that occurs only in the host path of the program. Reports how many
// lines of /proc/self/mountinfo mention the launcher's directory and the
// program's; the "root" field (the fourth: for a bind mount, the bound
// file's path within its filesystem) of the mount at /.capsa/program; how
// many times SECRET occurs in mountinfo, /proc/self/exe and argv[0] (the
// rest of the command line is this argument); where /proc/self/exe and argv[0] say the worker is; what
// /.capsa/launcher points at and whether it opens; whether pid 1's
// executable is readable.
int host_view(const char* arg) {
  std::string all = arg != nullptr ? arg : "::";
  std::string launcher_dir = all.substr(0, all.find(':'));
  std::string rest = all.substr(all.find(':') + 1);
  std::string program_dir = rest.substr(0, rest.find(':'));
  std::string secret = rest.find(':') == std::string::npos ? "" : rest.substr(rest.find(':') + 1);
  std::string mounts = read_all("/proc/self/mountinfo");
  int launcher_lines = 0, program_lines = 0;
  std::string program_root = "none";
  std::size_t at = 0;
  while (at < mounts.size()) {
    std::size_t end = mounts.find('\n', at);
    if (end == std::string::npos) end = mounts.size();
    std::string line = mounts.substr(at, end - at);
    at = end + 1;
    if (!launcher_dir.empty() && line.find(launcher_dir) != std::string::npos) ++launcher_lines;
    if (!program_dir.empty() && line.find(program_dir) != std::string::npos) ++program_lines;
    // Fields: id parent major:minor root mount-point ...
    std::size_t f = 0;
    for (int skip = 0; skip < 3 && f != std::string::npos; ++skip) f = line.find(' ', f + 1);
    if (f == std::string::npos) continue;
    std::size_t g = line.find(' ', f + 1);
    std::size_t h = g == std::string::npos ? g : line.find(' ', g + 1);
    if (h == std::string::npos) continue;
    if (line.substr(g + 1, h - g - 1) == "/.capsa/program") program_root = line.substr(f + 1, g - f - 1);
  }
  std::string cmdline = read_all("/proc/self/cmdline");
  std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  std::string exe = link_of("/proc/self/exe");
  int secret_seen = 0;
  for (const std::string* text : {&mounts, &argv0, &exe}) {
    for (std::size_t p = secret.empty() ? std::string::npos : text->find(secret);
         p != std::string::npos; p = text->find(secret, p + 1)) {
      ++secret_seen;
    }
  }
  int lfd = ::open("/.capsa/launcher", O_RDONLY | O_CLOEXEC);
  int lerr = errno;
  if (lfd >= 0) ::close(lfd);
  char target[256];
  ssize_t p1 = ::readlink("/proc/1/exe", target, sizeof target);
  int p1err = errno;
  report("host_view launcher_lines=%d program_lines=%d secret_seen=%d program_root=%s exe=%s "
         "argv0=%s launcher=%s launcher_open=%s proc1_exe=%s",
         launcher_lines, program_lines, secret_seen, program_root.c_str(), exe.c_str(),
         argv0.c_str(), link_of("/.capsa/launcher").c_str(), outcome(lfd, lerr),
         p1 >= 0 ? "readable" : outcome(-1, p1err));
  return 0;
}

// Reads the first line of the file at `arg` (a bound path) and reports it.
int read_path(const char* arg) {
  int fd = ::open(arg != nullptr ? arg : "/", O_RDONLY | O_CLOEXEC);
  int err = errno;
  if (fd < 0) {
    report("read_path open=%s", outcome(fd, err));
    return 0;
  }
  char buf[128] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n > 0) buf[std::strcspn(buf, "\n")] = '\0';
  report("read_path open=ok text=%s", n > 0 ? buf : "");
  return 0;
}

// Opens the file at `arg` (a /proc path) and reports how many bytes it
// gives, up to 1 MiB: a masked file opens and reads empty.
int proc_read(const char* arg) {
  int fd = ::open(arg != nullptr ? arg : "/proc/cmdline", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  int err = errno;
  if (fd < 0) {
    report("proc_read open=%s", outcome(fd, err));
    return 0;
  }
  char buf[4096];
  long total = 0;
  ssize_t n = 0;
  while (total < (1L << 20) && (n = ::read(fd, buf, sizeof buf)) > 0) total += n;
  err = errno;
  ::close(fd);
  report("proc_read open=ok bytes=%ld read=%s", total, n < 0 ? outcome(-1, err) : "ok");
  return 0;
}

// Entries of directory `path` (. and .. not counted); only those whose
// name starts with a digit 1-9 when `pids_only`. -1 when it cannot be read.
int count_entries(const char* path, bool pids_only) {
  DIR* dir = ::opendir(path);
  if (dir == nullptr) return -1;
  int count = 0;
  while (const dirent* e = ::readdir(dir)) {
    const char c = e->d_name[0];
    if (pids_only ? (c >= '1' && c <= '9') : std::strcmp(e->d_name, ".") != 0 &&
                                                 std::strcmp(e->d_name, "..") != 0) {
      ++count;
    }
  }
  ::closedir(dir);
  return count;
}

// Counts the processes /proc shows: its numeric entries.
int proc_pids(const char*) {
  report("proc_pids count=%d", count_entries("/proc", true));
  return 0;
}

// Counts the entries of the directory `arg`.
int dir_entries(const char* arg) {
  report("dir_entries count=%d", count_entries(arg != nullptr ? arg : "/", false));
  return 0;
}

}  // namespace

const AttackEntry kViewAttacks[] = {
    {"host_view", host_view},
    {"read_path", read_path},
    {"proc_read", proc_read},
    {"proc_pids", proc_pids},
    {"dir_entries", dir_entries},
    {nullptr, nullptr},
};

}  // namespace hostile
