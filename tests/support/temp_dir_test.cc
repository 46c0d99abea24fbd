// TempDir makes a private directory and removes all of it, read-only parts
// included, so a test cannot leave scratch files behind.
#include "tests/support/temp_dir.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

#include <gtest/gtest.h>

namespace capsa::testing {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(TempDir, IsPrivateAndRemovedWithItsTree) {
  std::string path;
  {
    TempDir dir("capsa-tempdir-test");
    path = dir.path();
    EXPECT_NE(path.find("/capsa-tempdir-test-"), std::string::npos) << path;
    struct stat st{};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u) << "other users must not see into it";
    EXPECT_EQ(dir.write("a/b/c.txt", "hello"), path + "/a/b/c.txt");
    EXPECT_EQ(read(path + "/a/b/c.txt"), "hello");
    EXPECT_EQ(dir.write("a/b/c.txt", "hi"), path + "/a/b/c.txt");
    EXPECT_EQ(read(path + "/a/b/c.txt"), "hi") << "write replaces";
    // A read-only directory with content: remove_all alone would fail here.
    std::string locked = dir.mkdir("locked/inner");
    dir.write("locked/inner/f", "x");
    ASSERT_EQ(::chmod(locked.c_str(), 0500), 0);
    ASSERT_EQ(::chmod(dir.file("locked").c_str(), 0000), 0);
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << path;
}

TEST(TempDir, ExecutableRunsAndMovedFromOwnsNothing) {
  TempDir dir;
  std::string prog = dir.executable("bin/ok", "#!/bin/sh\nexit 3\n");
  EXPECT_EQ(::access(prog.c_str(), X_OK), 0);
  EXPECT_EQ(WEXITSTATUS(std::system(prog.c_str())), 3);
  TempDir moved(std::move(dir));
  EXPECT_TRUE(dir.path().empty());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(moved.file("bin/ok"), prog);
  EXPECT_EQ(moved.mkdir("x/y"), moved.path() + "/x/y");
  EXPECT_TRUE(std::filesystem::is_directory(moved.path() + "/x/y"));
}

}  // namespace
}  // namespace capsa::testing
