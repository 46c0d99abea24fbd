// Test support for the command line: runs the real `capsa` binary (or any
// program) as an operator would, with stdout and stderr captured in files
// (no pipes: no deadlock on large output, no fd juggling in the test).
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace capsa::cli::testing {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Starts `argv` with stdout into `out` and stderr into `err` (the same file
// when they are equal: then the two are interleaved as written). -1 if it
// could not be started.
inline pid_t spawn(const std::vector<std::string>& argv, const std::string& out,
                   const std::string& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (err == out) {
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

// The exit status of `pid`, or 128 + the signal that ended it; -1 if it
// cannot be waited for.
inline int wait_exit(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct Ran {
  int status = -1;
  std::string out, err;
};

// Runs `argv` to its end with its output in `dir`/ran.out and ran.err
// (one file, both in `out`, when `merged`). `meanwhile(pid)` runs while it
// does (to signal it, say).
inline Ran run(const std::vector<std::string>& argv, const std::string& dir, bool merged = false,
               const std::function<void(pid_t)>& meanwhile = {}) {
  const std::string out = dir + "/ran.out", err = merged ? out : dir + "/ran.err";
  Ran r;
  pid_t pid = spawn(argv, out, err);
  if (pid < 0) return r;
  if (meanwhile) meanwhile(pid);
  r.status = wait_exit(pid);
  r.out = slurp(out);
  if (!merged) r.err = slurp(err);
  return r;
}

}  // namespace capsa::cli::testing
