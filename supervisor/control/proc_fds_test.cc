// The kernel's view of who holds a socket, read from /proc of real
// processes: children and grandchildren that hold, drop and pass on real
// socket ends. Registered with capsa_add_sandbox_test, so it also runs as
// uid 65534 when ctest runs as root (an unprivileged supervisor reads its
// own children's fds too).
#include "supervisor/control/proc_fds.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>

#include <gtest/gtest.h>

#include "capabilities/port.h"
#include "supervisor/control/test_util.h"

namespace capsa::supervisor {
namespace {

using testing::FdHolder;

// A child that runs `setup(hold_fd)` and then waits until the test ends it
// (the destructor closes the hold pipe). `setup` may fork grandchildren:
// they inherit hold_fd and should wait on it too (wait_on_hold). setup
// returns false to report failure.
class SetupChild {
 public:
  explicit SetupChild(const std::function<bool(int)>& setup) {
    int ready[2], hold[2];
    if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(hold, O_CLOEXEC) != 0) return;
    Fd ready_r(ready[0]), ready_w(ready[1]), hold_r(hold[0]);
    hold_w_.reset(hold[1]);
    pid_t pid = ::fork();
    if (pid < 0) return;
    if (pid == 0) {
      hold_w_.reset();
      ready_r.reset();
      char ok = setup(hold_r.get()) ? 'r' : 'x';
      if (::write(ready_w.get(), &ok, 1) != 1) ::_exit(3);
      wait_on_hold(hold_r.get());
      while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
      }
      ::_exit(0);
    }
    pid_ = pid;
    ready_w.reset();
    char ok = 0;
    while (::read(ready_r.get(), &ok, 1) < 0 && errno == EINTR) {
    }
    ready_ = ok == 'r';
  }
  ~SetupChild() {
    hold_w_.reset();
    if (pid_ > 0) {
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  SetupChild(const SetupChild&) = delete;
  SetupChild& operator=(const SetupChild&) = delete;

  pid_t pid() const { return pid_; }
  bool ready() const { return pid_ > 0 && ready_; }

  // Blocks until every write end of the hold pipe is closed.
  static void wait_on_hold(int hold) {
    char c;
    while (::read(hold, &c, 1) != 0) {
      if (errno != EINTR) break;
    }
  }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
  Fd hold_w_;
};

std::vector<Fd> fds_of(Port&& p) {
  std::vector<Fd> v;
  v.push_back(p.release_fd());
  return v;
}

// A port two generations below the root: a child passes one end of a
// fresh channel to a grandchild and keeps neither; the test's copies are
// closed too, so only the grandchild holds a socket of the pair.
struct GrandchildHolds {
  std::uint64_t inode = 0;  // of the end the grandchild holds
  std::unique_ptr<SetupChild> child;
  bool ready() const { return child && child->ready(); }
};
GrandchildHolds grandchild_holds() {
  auto ch = make_channel();
  if (!ch) return {};
  GrandchildHolds out{ch->second.inode(), nullptr};
  out.child = std::make_unique<SetupChild>([&](int hold) {
    ch->first = Port();
    pid_t g = ::fork();
    if (g < 0) return false;
    if (g == 0) {
      SetupChild::wait_on_hold(hold);
      ::_exit(0);
    }
    ch->second = Port();
    return true;
  });
  return out;
}

TEST(ProcFds, OwnSocketsAreListedAndOthersAreNot) {
  auto ch = make_channel();
  ASSERT_TRUE(ch) << ch.error().to_string();
  auto inodes = socket_inodes_of(::getpid());
  ASSERT_TRUE(inodes) << inodes.error().to_string();
  EXPECT_TRUE(inodes->contains(ch->first.inode()));
  EXPECT_TRUE(inodes->contains(ch->second.inode()));
  std::uint64_t gone = ch->first.inode();
  ch->first = Port();
  inodes = socket_inodes_of(::getpid());
  ASSERT_TRUE(inodes) << inodes.error().to_string();
  EXPECT_FALSE(inodes->contains(gone));
  EXPECT_TRUE(inodes->contains(ch->second.inode()));
}

TEST(ProcFds, ChildHoldsWhatItWasGivenUntilItDropsIt) {
  FdHolder holder;
  ASSERT_TRUE(holder.ok());
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  std::uint64_t given = ch->first.inode(), kept = ch->second.inode();
  ASSERT_TRUE(holder.hold(fds_of(std::move(ch->first))));

  auto tree = sockets_held_by_tree(holder.pid());
  ASSERT_TRUE(tree) << tree.error().to_string();
  EXPECT_TRUE(tree->complete) << tree->why;
  EXPECT_TRUE(tree->inodes.contains(given));
  EXPECT_FALSE(tree->inodes.contains(kept)) << "the child holds only what it was given";
  ASSERT_EQ(tree->pids.size(), 1u);
  EXPECT_EQ(tree->pids[0], holder.pid());

  ASSERT_TRUE(holder.drop_all());
  tree = sockets_held_by_tree(holder.pid());
  ASSERT_TRUE(tree) << tree.error().to_string();
  EXPECT_FALSE(tree->inodes.contains(given));
}

TEST(ProcFds, TreeIncludesGrandchildren) {
  GrandchildHolds held = grandchild_holds();
  ASSERT_TRUE(held.ready());
  const std::uint64_t deep = held.inode;
  SetupChild& child = *held.child;

  bool truncated = true;
  auto pids = process_tree(child.pid(), {}, &truncated);
  ASSERT_TRUE(pids) << pids.error().to_string();
  EXPECT_FALSE(truncated);
  ASSERT_EQ(pids->size(), 2u);
  EXPECT_EQ((*pids)[0], child.pid());

  auto own = socket_inodes_of(child.pid());
  ASSERT_TRUE(own) << own.error().to_string();
  EXPECT_FALSE(own->contains(deep)) << "the child itself closed it";
  auto tree = sockets_held_by_tree(child.pid());
  ASSERT_TRUE(tree) << tree.error().to_string();
  EXPECT_TRUE(tree->complete) << tree->why;
  EXPECT_TRUE(tree->inodes.contains(deep)) << "the grandchild holds it";
}

// /proc/PID/stat's comm is chosen by the process: "x) (y z" must not shift
// the fields (ppid, start time) the tree walk reads.
TEST(ProcFds, HostileProcessNameDoesNotConfuseTheTreeWalk) {
  SetupChild child([](int hold) {
    ::prctl(PR_SET_NAME, "x) (1 2 3 ");
    pid_t g = ::fork();
    if (g < 0) return false;
    if (g == 0) {
      SetupChild::wait_on_hold(hold);
      ::_exit(0);
    }
    return true;
  });
  ASSERT_TRUE(child.ready());
  auto pids = process_tree(child.pid(), {});
  ASSERT_TRUE(pids) << pids.error().to_string();
  EXPECT_EQ(pids->size(), 2u);
}

// A thread that unshared its fd table (clone without CLONE_FILES, or
// unshare(CLONE_FILES)) holds fds /proc/PID/fd does not show.
TEST(ProcFds, ThreadWithItsOwnFdTableIsRead) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  std::uint64_t hidden = ch->first.inode();
  SetupChild child([&](int hold) {
    ch->second = Port();
    int sync[2];
    if (::pipe(sync) != 0) return false;
    struct Args {
      int sync_w;
      int hold;
    } args{sync[1], hold};
    pthread_t t;
    auto body = [](void* p) -> void* {
      auto* a = static_cast<Args*>(p);
      char ok = ::unshare(CLONE_FILES) == 0 ? 'u' : 'x';
      if (::write(a->sync_w, &ok, 1) != 1) return nullptr;
      SetupChild::wait_on_hold(a->hold);
      return nullptr;
    };
    if (::pthread_create(&t, nullptr, body, &args) != 0) return false;
    char ok = 0;
    if (::read(sync[0], &ok, 1) != 1 || ok != 'u') return false;
    // Now only the thread's private table has it.
    ch->first = Port();
    return true;
  });
  ASSERT_TRUE(child.ready());
  ch->first = Port();

  auto leader = socket_inodes_of(child.pid());
  ASSERT_TRUE(leader) << leader.error().to_string();
  EXPECT_TRUE(leader->contains(hidden)) << "socket_inodes_of reads every task's table";
  auto tree = sockets_held_by_tree(child.pid());
  ASSERT_TRUE(tree) << tree.error().to_string();
  EXPECT_TRUE(tree->inodes.contains(hidden));

  // The leader's own table really does not have it (so the test shows
  // what it claims).
  std::string fd_dir = "/proc/" + std::to_string(child.pid()) + "/fd";
  bool in_leader_table = false;
  for (int fd = 0; fd < 64; ++fd) {
    char target[64] = {};
    ssize_t n = ::readlink((fd_dir + "/" + std::to_string(fd)).c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target) == "socket:[" + std::to_string(hidden) + "]") in_leader_table = true;
  }
  EXPECT_FALSE(in_leader_table);
}

TEST(ProcFds, ExitedProcessIsNotFound) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) ::_exit(0);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  auto tree = sockets_held_by_tree(pid);
  ASSERT_FALSE(tree);
  EXPECT_EQ(tree.error().code, Errc::kNotFound) << tree.error().to_string();
  EXPECT_EQ(socket_inodes_of(pid).error().code, Errc::kNotFound);
  EXPECT_EQ(sockets_held_by_tree(0).error().code, Errc::kInvalidArgument);
}

// Another user's process: denied, never an empty (and wrong) answer.
TEST(ProcFds, AnotherUsersProcessIsDenied) {
  if (::geteuid() == 0) {
    // Drop to uid 65534 in a child and look at the (root) test process.
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
      auto r = socket_inodes_of(parent);
      auto t = sockets_held_by_tree(parent);
      ::_exit(!r && r.error().code == Errc::kDenied && !t && t.error().code == Errc::kDenied ? 0 : 1);
    }
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    ASSERT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0) << "2: could not drop privileges; 1: not denied";
    return;
  }
  struct stat st{};
  if (::stat("/proc/1", &st) != 0 || st.st_uid == ::geteuid()) {
    GTEST_SKIP() << "no process of another user to look at";
  }
  auto r = socket_inodes_of(1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDenied) << r.error().to_string();
}

TEST(ProcFds, LimitsMakeTheAnswerIncompleteNotWrong) {
  GrandchildHolds held = grandchild_holds();
  ASSERT_TRUE(held.ready());
  const std::uint64_t deep = held.inode;
  SetupChild& child = *held.child;

  for (ProcScanLimits limits : {ProcScanLimits{.max_processes = 1}, ProcScanLimits{.max_depth = 0}}) {
    auto tree = sockets_held_by_tree(child.pid(), limits);
    ASSERT_TRUE(tree) << tree.error().to_string();
    EXPECT_FALSE(tree->complete);
    EXPECT_FALSE(tree->inodes.contains(deep));
    std::vector<HolderProcess> workers{{"w", child.pid()}};
    std::vector<PortToCheck> ports{{"w", child.pid(), deep}};
    auto checks = check_holders(workers, ports, limits);
    ASSERT_EQ(checks.size(), 1u);
    EXPECT_EQ(checks[0].verdict, KernelVerdict::kUnknown) << "not 'not held': the scan stopped early";
    EXPECT_FALSE(checks[0].detail.empty());
  }
  // Without the limits the same port is found.
  std::vector<HolderProcess> workers{{"w", child.pid()}};
  std::vector<PortToCheck> ports{{"w", child.pid(), deep}};
  EXPECT_EQ(check_holders(workers, ports)[0].verdict, KernelVerdict::kHeld);
}

TEST(ProcFds, FdLimitPerTask) {
  FdHolder holder;
  ASSERT_TRUE(holder.ok());
  std::vector<Fd> fds;
  for (int i = 0; i < 3; ++i) {
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    fds.push_back(ch->first.release_fd());
  }
  ASSERT_TRUE(holder.hold(std::move(fds)));
  // stdio + command socket + 3: more than 2 entries.
  auto r = socket_inodes_of(holder.pid(), ProcScanLimits{.max_fds = 2});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kOverloaded) << r.error().to_string();
  EXPECT_TRUE(socket_inodes_of(holder.pid()));
}

TEST(ProcFds, CheckHoldersVerdicts) {
  FdHolder a, b;
  ASSERT_TRUE(a.ok() && b.ok());
  auto c1 = make_channel(), c2 = make_channel(), c3 = make_channel(), c4 = make_channel();
  ASSERT_TRUE(c1 && c2 && c3 && c4);
  std::uint64_t in_a = c1->first.inode(), in_b = c2->first.inode(), in_test = c3->first.inode(),
                in_both = c4->first.inode();
  ASSERT_TRUE(a.hold(fds_of(std::move(c1->first))));
  ASSERT_TRUE(b.hold(fds_of(std::move(c2->first))));
  Fd dup(::fcntl(c4->first.fd().get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(dup.valid());
  {
    std::vector<Fd> v;
    v.push_back(std::move(dup));
    ASSERT_TRUE(b.hold(std::move(v)));
  }
  ASSERT_TRUE(a.hold(fds_of(std::move(c4->first))));

  pid_t dead = ::fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);

  std::vector<HolderProcess> workers{{"a", a.pid()}, {"b", b.pid()}};
  std::vector<PortToCheck> ports{
      {"a", a.pid(), in_a},     // 0: held
      {"a", a.pid(), in_b},     // 1: held by b
      {"a", a.pid(), in_test},  // 2: not held (the test process is no worker)
      {"a", a.pid(), in_both},  // 3: held, also by b
      {"c", 0, in_a},           // 4: unknown: no pid
      {"a", a.pid(), 0},        // 5: unknown: no inode
      {"z", dead, in_a},        // 6: unknown: gone (and held by a)
  };
  auto checks = check_holders(workers, ports);
  ASSERT_EQ(checks.size(), ports.size());
  EXPECT_EQ(checks[0].verdict, KernelVerdict::kHeld);
  EXPECT_EQ(checks[0].detail, "");
  EXPECT_EQ(kernel_check_text(checks[0]), "held");
  EXPECT_EQ(checks[1].verdict, KernelVerdict::kHeldByOther);
  EXPECT_EQ(kernel_check_text(checks[1]), "held by b");
  EXPECT_EQ(checks[2].verdict, KernelVerdict::kNotHeld);
  EXPECT_EQ(kernel_check_text(checks[2]), "not held");
  EXPECT_EQ(checks[3].verdict, KernelVerdict::kHeld);
  EXPECT_EQ(kernel_check_text(checks[3]), "held (also by b)");
  EXPECT_EQ(checks[4].verdict, KernelVerdict::kUnknown);
  EXPECT_NE(checks[4].detail.find("attached without a pid"), std::string::npos) << checks[4].detail;
  EXPECT_EQ(checks[5].verdict, KernelVerdict::kUnknown);
  EXPECT_EQ(checks[6].verdict, KernelVerdict::kUnknown);
  EXPECT_NE(checks[6].detail.find("held by a"), std::string::npos) << checks[6].detail;
  EXPECT_EQ(kernel_check_text(KernelVerdict::kUnknown, "why"), "unknown: why");
}

// Two workers attached in one process share one tree: neither is "another
// holder" of the other's ports.
TEST(ProcFds, WorkersSharingAProcessAreOneTree) {
  auto ch = make_channel();
  ASSERT_TRUE(ch);
  std::vector<HolderProcess> workers{{"a", ::getpid()}, {"b", ::getpid()}};
  std::vector<PortToCheck> ports{{"a", ::getpid(), ch->first.inode()}};
  auto checks = check_holders(workers, ports);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].verdict, KernelVerdict::kHeld);
  EXPECT_EQ(checks[0].detail, "");
}

}  // namespace
}  // namespace capsa::supervisor
