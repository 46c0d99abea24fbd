// The program cache (program_copy.h) on its own, without spawning: what a
// copy is (contents, mode, directory), when a new one is made, the bound,
// and a cache whose files were removed under it. The worker's view of it is
// tested with real sandboxes in tests/sandbox/host_files_test.cc.
#include "sandbox/program_copy.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/host_file.h"
#include "tests/support/fd_count.h"

namespace capsa::sandbox::detail {
namespace {

namespace fs = std::filesystem;

class ProgramCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/capsa-copy-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    EXPECT_EQ(fds_.leaked(), 0) << capsa::testing::describe_open_fds();
  }
  // A script `name` that exits with `code`, opened as spawn() opens it.
  Fd program(const std::string& name, int code, const std::string& pad = "") {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::trunc) << "#!/bin/sh\nexit " << code << pad << "\n";
    EXPECT_EQ(::chmod(path.c_str(), 0755), 0);
    auto fd = open_host_file(HostFileUse::kProgram, path, sandbox_identity());
    EXPECT_TRUE(fd) << fd.error().to_string();
    return fd ? std::move(*fd) : Fd();
  }
  static ino_t ino(const Fd& fd) {
    struct stat st {};
    return ::fstat(fd.get(), &st) == 0 ? st.st_ino : 0;
  }
  // The inodes of the copies (p<N>) in the cache's directory.
  static std::set<ino_t> copies() {
    std::set<ino_t> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(program_copies_dir(), ec)) {
      if (e.path().filename().string().starts_with("p")) {
        struct stat st {};
        if (::stat(e.path().c_str(), &st) == 0) out.insert(st.st_ino);
      }
    }
    return out;
  }
  std::string dir_;
  capsa::testing::FdLeakCheck fds_;
};

TEST_F(ProgramCopyTest, ACopyIsTheOpenedFileUnderANeutralNameReadOnlyForAll) {
  Fd p = program("operator-kestrel-tool", 3);
  auto c = program_copy(p, dir_ + "/operator-kestrel-tool");
  ASSERT_TRUE(c) << c.error().to_string();
  const std::string where = fs::read_symlink("/proc/self/fd/" + std::to_string(c->fd.get()));
  const std::string cache = program_copies_dir();
  EXPECT_EQ(where.substr(0, where.rfind('/')), cache);
  EXPECT_EQ(where.find("kestrel"), std::string::npos) << where;
  EXPECT_TRUE(where.substr(where.rfind('/') + 1).starts_with("p")) << where;
  struct stat st {}, dst {};
  ASSERT_EQ(::stat(where.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  ASSERT_EQ(::stat(cache.c_str(), &dst), 0);
  EXPECT_EQ(dst.st_mode & 07777, 0700u);
  EXPECT_EQ(dst.st_uid, ::geteuid());
  std::ifstream in(where);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "#!/bin/sh\nexit 3\n");
}

// Same version: the same copy. Replaced by rename (a new inode) or
// rewritten in place (another size): a new copy.
TEST_F(ProgramCopyTest, OneCopyPerVersionOfTheFile) {
  Fd first = program("tool", 1);
  auto a = program_copy(first, "tool");
  auto b = program_copy(first, "tool");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(ino(a->fd), ino(b->fd));
  Fd renamed = program("tool.new", 2);
  fs::rename(dir_ + "/tool.new", dir_ + "/tool");
  auto c = program_copy(renamed, "tool");
  ASSERT_TRUE(c);
  EXPECT_NE(ino(c->fd), ino(a->fd));
  Fd again = program("tool", 2, " # longer");  // the same inode, rewritten
  EXPECT_EQ(ino(again), ino(renamed));
  auto d = program_copy(again, "tool");
  ASSERT_TRUE(d);
  EXPECT_NE(ino(d->fd), ino(c->fd));
}

// kMaxProgramCopies copies at most: one more drops the least recently used.
TEST_F(ProgramCopyTest, PastTheBoundTheLeastRecentlyUsedCopyGoes) {
  std::vector<Fd> progs;
  std::vector<ino_t> made;
  for (std::size_t i = 0; i <= kMaxProgramCopies; ++i) {
    progs.push_back(program("t" + std::to_string(i), static_cast<int>(i % 200)));
  }
  for (std::size_t i = 0; i < kMaxProgramCopies; ++i) {
    auto c = program_copy(progs[i], "t");
    ASSERT_TRUE(c) << c.error().to_string();
    made.push_back(ino(c->fd));
  }
  ASSERT_TRUE(program_copy(progs[0], "t"));  // t0 used again: t1 is the oldest now
  auto last = program_copy(progs[kMaxProgramCopies], "t");
  ASSERT_TRUE(last);
  const std::set<ino_t> now = copies();
  EXPECT_LE(now.size(), kMaxProgramCopies);
  EXPECT_EQ(now.count(made[0]), 1u);
  EXPECT_EQ(now.count(made[1]), 0u) << "the least recently used copy is still there";
  EXPECT_EQ(now.count(ino(last->fd)), 1u);
}

// Someone with root's powers cleaned up under a running supervisor: a copy
// gone, then the whole directory. Each spawn makes what is missing again.
TEST_F(ProgramCopyTest, CopiesRemovedUnderTheCacheAreMadeAgain) {
  Fd p = program("tool", 4);
  auto a = program_copy(p, "tool");
  ASSERT_TRUE(a);
  const std::string where = fs::read_symlink("/proc/self/fd/" + std::to_string(a->fd.get()));
  a->fd.reset();
  ASSERT_EQ(::unlink(where.c_str()), 0);
  auto c = program_copy(p, "tool");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_TRUE(fs::exists(fs::read_symlink("/proc/self/fd/" + std::to_string(c->fd.get()))));
  const std::string old_dir = program_copies_dir();
  c->fd.reset();
  std::error_code ec;
  fs::remove_all(old_dir, ec);
  auto d = program_copy(p, "tool");
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_NE(program_copies_dir(), old_dir);
  EXPECT_TRUE(fs::exists(program_copies_dir()));
}

}  // namespace
}  // namespace capsa::sandbox::detail
