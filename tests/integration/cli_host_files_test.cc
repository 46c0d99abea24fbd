// `capsa check` and `capsa run` as an operator runs them, on a policy and a
// worker kept in a private checkout (a 0700 directory of the supervisor's
// user, tests/support/private_checkout.h): the real binary, its exit status
// and its exact words. Runs as root and as uid 65534.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "capabilities/fd.h"
#include "sandbox/spec.h"
#include "tests/support/fd_count.h"
#include "tests/support/private_checkout.h"

extern char** environ;

namespace capsa {
namespace {

namespace fs = std::filesystem;

// The test binary's directory: it_worker and a link to `capsa` are there
// (CAPSA_TEST_BIN_DIR when capsa-run-unprivileged copied them).
std::string bin_dir() {
  if (const char* d = std::getenv("CAPSA_TEST_BIN_DIR"); d != nullptr && *d != '\0') return d;
  return fs::read_symlink("/proc/self/exe").parent_path().string();
}

bool root() { return ::geteuid() == 0; }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Outcome {
  int status = -1;
  std::string out;
  std::string err;
};

class CliHostFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    program_ = checkout_.add_program(bin_dir() + "/it_worker");
    policies_ = checkout_.make_dir("policies");
    policy_ = policies_ + "/hello.json";
    std::ofstream(policy_) << R"({ "workers": [ { "name": "w", "program": ")" << program_
                           << R"(", "args": ["hello"],
      "grants": [ { "name": "log", "api": "log.Sink", "rights": ["*"] } ] } ] }
)";
  }

  // capsa ARGS..., with the checkout's launcher, stdout and stderr to files
  // (stdout to `stdout_fd` instead when given: the caller reads it back).
  Outcome capsa(std::vector<std::string> args, int stdout_fd = -1) {
    args.insert(args.begin(), bin_dir() + "/capsa");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings = {"CAPSA_LAUNCHER=" + checkout_.launcher()};
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "CAPSA_LAUNCHER=", 15) != 0) env_strings.emplace_back(*e);
    }
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string out = checkout_.root() + "/stdout", err = checkout_.root() + "/stderr";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (stdout_fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, stdout_fd, 1);
    } else {
      posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    }
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addchdir_np(&fa, checkout_.root().c_str());
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    Outcome r;
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
      return r;
    }
    int ws = 0;
    while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    if (stdout_fd < 0) r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  Outcome run() {
    return capsa({"run", "-q", "--control", "none", "--audit-log", checkout_.root() + "/audit.jsonl",
                  policy_});
  }

  // Where the "program" value of the policy starts (line 1, after `"program": "`).
  std::string program_at() const { return policy_ + ":1:42"; }

  capsa::testing::PrivateCheckout checkout_{sandbox::default_launcher_path()};
  std::string program_;
  std::string policies_;
  std::string policy_;
  capsa::testing::FdLeakCheck fds_;
};

// The issue's setting: everything under a directory the sandbox's uid
// cannot enter (as root). The worker starts and is heard.
TEST_F(CliHostFilesTest, RunStartsTheWorkerFromThePrivateCheckout) {
  Outcome r = run();
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("[w] hello from the sandbox\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("bwrap"), std::string::npos) << r.err;
  EXPECT_EQ(fds_.leaked(), 0);
}

// Only the file's own mode counts, read for the sandbox's uid: 0700 is fine
// for a root operator and useless to uid 65534.
TEST_F(CliHostFilesTest, CheckAndRunRefuseAProgramTheSandboxCannotExecute) {
  const mode_t mode = root() ? 0700 : 0600;
  ASSERT_EQ(::chmod(program_.c_str(), mode), 0);
  const std::string me = std::to_string(::geteuid());
  const std::string diag =
      program_at() + ": error: program " + program_ + " (mode 0" + (root() ? "700" : "600") +
      ", owner " + me + ":" + std::to_string(::getegid()) +
      ") cannot be executed by the sandbox's uid " + (root() ? "65534" : me) + " (the \"" +
      (root() ? "other" : "owner") + "\" permission bits apply): chmod " + (root() ? "o" : "u") +
      "+x " + program_ + "\n";
  Outcome check = capsa({"check", policy_});
  EXPECT_EQ(check.status, 1);
  EXPECT_EQ(check.err, diag + policy_ + ": invalid policy, 1 error\n");
  Outcome r = run();
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, diag + policy_ + ": invalid policy, not started\n");
  EXPECT_EQ(r.out, "");
}

// `capsa check` passed; then someone who can write the plugin directory
// puts a symlink where the program was. `capsa run` refuses it, it does not
// follow it.
TEST_F(CliHostFilesTest, RunRefusesAProgramSwappedForASymlinkAfterCheck) {
  Outcome check = capsa({"check", policy_});
  ASSERT_EQ(check.status, 0) << check.err;
  fs::rename(program_, program_ + ".real");
  fs::create_symlink(program_ + ".real", program_);
  Outcome r = run();
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, program_at() + ": error: program " + program_ + " is a symbolic link (to " +
                       program_ + ".real); name the file itself: a link there is never followed\n" +
                       policy_ + ": invalid policy, not started\n");
}

// The operator sends `capsa run`'s stdout to a log file that already holds
// earlier lines; a hostile worker attacks its own fd 1 and 2
// (tests/integration/it_worker.cc, stdio-attack). With the default
// output its fds are pipes: the attacks fail on them and the file is only
// appended to. With --worker-output inherit the same worker truncates and
// forges the file and makes it non-blocking: the hazard POLICY.md states.
class OperatorFileTest : public CliHostFilesTest {
 protected:
  struct Seen {
    Outcome run;
    std::string file;
    bool nonblocking = false;
  };
  Seen attack(std::vector<std::string> extra) {
    const std::string policy = policies_ + "/attack.json";
    std::ofstream(policy) << R"({ "workers": [ { "name": "w", "program": ")" << program_
                          << R"(", "args": ["stdio-attack"],
      "grants": [ { "name": "log", "api": "log.Sink", "rights": ["*"] } ] } ] }
)";
    const std::string path = checkout_.root() + "/operator.log";
    Seen seen;
    {
      Fd log(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      EXPECT_TRUE(log.valid());
      EXPECT_EQ(::write(log.get(), kEarlier, sizeof kEarlier - 1),
                static_cast<ssize_t>(sizeof kEarlier - 1));
      std::vector<std::string> args = {"run", "-q", "--control", "none", "--audit-log",
                                       checkout_.root() + "/audit.jsonl"};
      args.insert(args.end(), extra.begin(), extra.end());
      args.push_back(policy);
      seen.run = capsa(args, log.get());
      // The open file description the operator and capsa share.
      seen.nonblocking = (::fcntl(log.get(), F_GETFL) & O_NONBLOCK) != 0;
    }
    seen.file = slurp(path);
    return seen;
  }
  static constexpr char kEarlier[] = "operator: an earlier line of this log\n";
};

TEST_F(OperatorFileTest, ThroughTheSupervisorTheOperatorsFileIsOnlyAppendedTo) {
  Seen s = attack({});
  EXPECT_EQ(s.run.status, 0) << s.run.err;
  EXPECT_TRUE(s.file.starts_with(kEarlier)) << s.file;
  EXPECT_EQ(s.file.find("FORGED"), std::string::npos) << s.file;
  EXPECT_FALSE(s.nonblocking);
  // The attacks failed on the pipes, and the lines came through.
  EXPECT_NE(s.file.find("[w] fd1: ftruncate=Invalid argument pwrite=Illegal seek nonblock=ok\n"),
            std::string::npos)
      << s.file;
  EXPECT_NE(s.file.find("[w] fd2: ftruncate=Invalid argument pwrite=Illegal seek nonblock=ok\n"),
            std::string::npos);
  EXPECT_NE(s.file.find("[w] written on fd1 after the attack\n"), std::string::npos);
  EXPECT_NE(s.file.find("[w] warning: written on fd2 after the attack\n"), std::string::npos);
}

TEST_F(OperatorFileTest, InheritedTheWorkerTruncatesAndForgesTheOperatorsFile) {
  Seen s = attack({"--worker-output", "inherit"});
  EXPECT_EQ(s.run.status, 0) << s.run.err;
  EXPECT_FALSE(s.file.starts_with(kEarlier)) << s.file;
  EXPECT_TRUE(s.file.starts_with("FORGED\n")) << s.file;
  EXPECT_TRUE(s.nonblocking);
}

}  // namespace
}  // namespace capsa
