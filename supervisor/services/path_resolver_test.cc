#include "supervisor/services/path_resolver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/fd_count.h"

namespace capsa::supervisor::services {
namespace {

void expect_denied(const Result<void>& r, std::string_view why) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kDenied);
  EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
}

TEST(CheckRelativePath, AcceptsOrdinaryRelativePaths) {
  for (std::string_view ok : {".", "a", "a/b/c.txt", "./a", "a//b", "a/./b", "a/", "...", "..a", "a..", ".hidden"}) {
    EXPECT_TRUE(check_relative_path(ok).has_value()) << ok;
  }
}

TEST(CheckRelativePath, RefusesEachMalformedPathInWords) {
  expect_denied(check_relative_path(""), "empty path");
  expect_denied(check_relative_path("/etc/passwd"), "absolute path");
  expect_denied(check_relative_path(".."), "\"..\" component");
  expect_denied(check_relative_path("../x"), "\"..\" component");
  expect_denied(check_relative_path("a/../b"), "\"..\" component");
  expect_denied(check_relative_path("a/.."), "\"..\" component");
  expect_denied(check_relative_path(std::string_view("a\0/../../x", 10)), "NUL byte");
  expect_denied(check_relative_path(std::string_view("a\0", 2)), "NUL byte");
}

TEST(CheckRelativePath, LengthLimitIsInclusive) {
  std::string at_limit(kMaxPathBytes, 'a');
  EXPECT_TRUE(check_relative_path(at_limit).has_value());
  expect_denied(check_relative_path(at_limit + "a"), "longer than 1024 bytes");
}

// Layer 2 on its own: even a path that skipped the lexical checks cannot
// leave the root, because the kernel refuses it during the walk.
class KernelLayer : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/capsa-resolve-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    std::filesystem::create_directory(base_ + "/root");
    std::ofstream(base_ + "/outside.txt") << "secret";
    std::ofstream(base_ + "/root/inside.txt") << "fine";
    std::filesystem::create_symlink("/etc/passwd", base_ + "/root/abs_link");
    root_ = Fd(::open((base_ + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_.valid());
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  void expect_kernel_refuses(std::string_view path, Errc code, int err) {
    auto fd = openat2_beneath(root_, path, O_PATH);
    ASSERT_FALSE(fd.has_value()) << path;
    EXPECT_EQ(fd.error().code, code) << path << ": " << fd.error().to_string();
    EXPECT_EQ(fd.error().sys_errno, err) << path;
  }

  std::string base_;
  Fd root_;
};

TEST_F(KernelLayer, DotDotAndAbsolutePathsAreRefusedByTheKernel) {
  capsa::testing::FdLeakCheck leaks;
  expect_kernel_refuses("../outside.txt", Errc::kDenied, EXDEV);
  expect_kernel_refuses("/etc/passwd", Errc::kDenied, EXDEV);
  expect_kernel_refuses("abs_link", Errc::kDenied, ELOOP);
  expect_kernel_refuses("missing", Errc::kNotFound, ENOENT);
  expect_kernel_refuses("inside.txt/x", Errc::kNotFound, ENOTDIR);
  expect_kernel_refuses(std::string(300, 'n'), Errc::kDenied, ENAMETOOLONG);
  // And the root still serves.
  auto fd = openat2_beneath(root_, "inside.txt", O_RDONLY);
  ASSERT_TRUE(fd.has_value());
  char buf[8] = {};
  EXPECT_EQ(::read(fd->get(), buf, sizeof(buf)), 4);
  EXPECT_STREQ(buf, "fine");
  fd->reset();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(KernelLayer, ResolveRunsBothLayersAndReturnsAnOPathFd) {
  auto fd = resolve(root_, "inside.txt");
  ASSERT_TRUE(fd.has_value());
  EXPECT_NE(::fcntl(fd->get(), F_GETFL) & O_PATH, 0);
  EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
  auto up = resolve(root_, "../outside.txt");
  ASSERT_FALSE(up.has_value());
  EXPECT_EQ(up.error().code, Errc::kDenied);
  EXPECT_EQ(up.error().sys_errno, 0);  // stopped by layer 1, before any syscall
}

}  // namespace
}  // namespace capsa::supervisor::services
