#include "supervisor/services/directory.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "capabilities/handle.h"
#include "supervisor/services/path_resolver.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor::services {
namespace {

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// A real tree with every kind of trap in it:
//   base/outside.txt                 the secret a worker must not reach
//   base/root/file.txt               "hello"
//   base/root/a                      (so "a\0..." would open something if truncated)
//   base/root/sub/inner.txt          "inner"
//   base/root/sub/deeper/
//   base/root/link_in  -> file.txt   symlinks: inside, absolute, upward,
//   base/root/link_out -> /etc/passwd           to a directory, to /proc
//   base/root/link_up  -> ../outside.txt
//   base/root/dirlink  -> sub
//   base/root/proc_link -> /proc/self/root
//   base/root/fifo                   a named pipe nobody writes to
class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/capsa-dir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    std::string root = base_ + "/root";
    std::filesystem::create_directories(root + "/sub/deeper");
    std::ofstream(base_ + "/outside.txt") << "secret";
    std::ofstream(root + "/file.txt") << "hello";
    std::ofstream(root + "/a") << "a";
    std::ofstream(root + "/sub/inner.txt") << "inner";
    std::filesystem::create_symlink("file.txt", root + "/link_in");
    std::filesystem::create_symlink("/etc/passwd", root + "/link_out");
    std::filesystem::create_symlink("../outside.txt", root + "/link_up");
    std::filesystem::create_symlink("sub", root + "/dirlink");
    std::filesystem::create_symlink("/proc/self/root", root + "/proc_link");
    ASSERT_EQ(::mkfifo((root + "/fifo").c_str(), 0600), 0);
    auto scope = DirectoryScope::open(root);
    ASSERT_TRUE(scope.has_value()) << scope.error().to_string();
    scope_.emplace(std::move(*scope));
  }
  void TearDown() override { std::filesystem::remove_all(base_); }

  std::string read_file(std::string_view path) {
    auto fd = scope_->open_file(path);
    EXPECT_TRUE(fd.has_value()) << path << ": " << fd.error().to_string();
    if (!fd) return "<error>";
    char buf[64] = {};
    ssize_t n = ::read(fd->get(), buf, sizeof(buf));
    return n < 0 ? "<read error>" : std::string(buf, static_cast<std::size_t>(n));
  }

  std::string base_;
  std::optional<DirectoryScope> scope_;
};

template <typename T>
void expect_error(const Result<T>& r, Errc code, std::string_view why, std::string_view path) {
  ASSERT_FALSE(r.has_value()) << "\"" << path << "\" was allowed";
  EXPECT_EQ(r.error().code, code) << path << ": " << r.error().to_string();
  EXPECT_NE(r.error().message.find(why), std::string::npos) << path << ": " << r.error().message;
}

TEST_F(DirectoryTest, OpensRegularFilesAsReadOnlyFileHandles) {
  capsa::testing::FdLeakCheck leaks;
  EXPECT_EQ(read_file("file.txt"), "hello");
  EXPECT_EQ(read_file("sub/inner.txt"), "inner");
  EXPECT_EQ(read_file("./sub//inner.txt"), "inner");
  auto fd = scope_->open_file("file.txt");
  ASSERT_TRUE(fd.has_value());
  int fl = ::fcntl(fd->get(), F_GETFL);
  EXPECT_EQ(fl & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fl & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0);
  // What the port layer will check before sending it.
  EXPECT_TRUE(check_handle_kind(*fd, HandleKind::kFile).has_value());
  fd->reset();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(DirectoryTest, EveryEscapeAndForbiddenObjectIsRefusedAndTheGrantStillServes) {
  capsa::testing::FdLeakCheck leaks;
  struct Case {
    std::string path;
    Errc code;
    std::string_view why;
  };
  const std::string symlink = "goes through a symlink";
  std::vector<Case> cases = {
      {"../outside.txt", Errc::kDenied, "\"..\" component"},
      {"sub/../../outside.txt", Errc::kDenied, "\"..\" component"},
      {"sub/../file.txt", Errc::kDenied, "\"..\" component"},
      {"/etc/passwd", Errc::kDenied, "absolute path"},
      {base_ + "/outside.txt", Errc::kDenied, "absolute path"},
      {"link_in", Errc::kDenied, symlink},
      {"link_out", Errc::kDenied, symlink},
      {"link_up", Errc::kDenied, symlink},
      {"dirlink/inner.txt", Errc::kDenied, symlink},
      {"proc_link/etc/passwd", Errc::kDenied, symlink},
      {std::string("a\0/../../outside.txt", 20), Errc::kDenied, "NUL byte"},
      {std::string("file.txt\0", 9), Errc::kDenied, "NUL byte"},
      {"", Errc::kDenied, "empty path"},
      {repeat("./", 508) + "/file.txt", Errc::kDenied, "longer than 1024 bytes"},
      {"fifo", Errc::kDenied, "not a regular file: it is a fifo"},
      {"sub", Errc::kDenied, "not a regular file: it is a directory"},
      {".", Errc::kDenied, "not a regular file: it is a directory"},
      {"missing.txt", Errc::kNotFound, "no such file"},
      {"file.txt/x", Errc::kNotFound, "no such file"},
  };
  for (const auto& c : cases) expect_error(scope_->open_file(c.path), c.code, c.why, c.path);
  expect_error(scope_->open_file("file.txt", Access::kWrite), Errc::kDenied, "read-only", "write file.txt");
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
  EXPECT_EQ(read_file("file.txt"), "hello");
}

TEST_F(DirectoryTest, PathLengthLimitIsInclusive) {
  std::string at_limit = repeat("./", 508) + "file.txt";
  ASSERT_EQ(at_limit.size(), kMaxPathBytes);
  EXPECT_EQ(read_file(at_limit), "hello");
  expect_error(scope_->open_file("/" + at_limit.substr(1)), Errc::kDenied, "absolute", "abs");
  expect_error(scope_->open_file("./" + at_limit), Errc::kDenied, "longer than", "limit + 2");
  expect_error(scope_->open_file(repeat("./", 508) + "/file.txt"), Errc::kDenied, "longer than", "limit + 1");
}

TEST(DirectoryDevices, DevicesAreRefusedBeforeTheyAreOpened) {
  auto dev = DirectoryScope::open("/dev");
  ASSERT_TRUE(dev.has_value());
  expect_error(dev->open_file("null"), Errc::kDenied, "a character device", "/dev/null");
  auto info = dev->stat("null");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->type, EntryType::kOther);
}

TEST(DirectoryProc, MagicLinksAreNeverFollowed) {
  capsa::testing::FdLeakCheck leaks;
  {
    auto proc = DirectoryScope::open("/proc/self");
    ASSERT_TRUE(proc.has_value());
    for (std::string_view magic : {"cwd", "root/etc/passwd", "exe", "fd/0", "cwd/x"}) {
      expect_error(proc->open_file(magic), Errc::kDenied, "symlink", magic);
    }
    auto status = proc->open_file("status");  // a plain proc file is fine
    ASSERT_TRUE(status.has_value()) << status.error().to_string();
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(DirectoryScopeOpen, MissingRootIsNotFound) {
  auto scope = DirectoryScope::open("/nonexistent-capsa-root");
  ASSERT_FALSE(scope.has_value());
  EXPECT_EQ(scope.error().code, Errc::kNotFound);
}

TEST_F(DirectoryTest, ListsNamesTypesAndSizesWithoutFollowingAnything) {
  auto listing = scope_->list(".");
  ASSERT_TRUE(listing.has_value()) << listing.error().to_string();
  EXPECT_FALSE(listing->truncated);
  std::vector<std::string> names;
  for (const auto& e : listing->entries) names.push_back(e.name + ":" + std::string(entry_type_name(e.info.type)));
  EXPECT_EQ(names, (std::vector<std::string>{"a:file", "dirlink:symlink", "fifo:other", "file.txt:file",
                                             "link_in:symlink", "link_out:symlink", "link_up:symlink",
                                             "proc_link:symlink", "sub:directory"}));
  EXPECT_EQ(listing->entries[3].info.size, 5u);
  auto sub = scope_->list("sub");
  ASSERT_TRUE(sub.has_value());
  ASSERT_EQ(sub->entries.size(), 2u);
  EXPECT_EQ(sub->entries[0].name, "deeper");
  EXPECT_EQ(sub->entries[1].name, "inner.txt");
}

TEST_F(DirectoryTest, ListRefusesWhatOpenRefuses) {
  capsa::testing::FdLeakCheck leaks;
  expect_error(scope_->list("file.txt"), Errc::kDenied, "not a directory: it is a regular file", "file.txt");
  expect_error(scope_->list("fifo"), Errc::kDenied, "not a directory: it is a fifo", "fifo");
  expect_error(scope_->list(".."), Errc::kDenied, "\"..\" component", "..");
  expect_error(scope_->list("dirlink"), Errc::kDenied, "symlink", "dirlink");
  expect_error(scope_->list("proc_link"), Errc::kDenied, "symlink", "proc_link");
  expect_error(scope_->list("nope"), Errc::kNotFound, "no such file", "nope");
  expect_error(scope_->list(""), Errc::kDenied, "empty path", "");
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
  EXPECT_TRUE(scope_->list("sub/deeper").has_value());
}

TEST_F(DirectoryTest, ListIsBoundedAtTheLimit) {
  std::string big = base_ + "/root/big";
  std::filesystem::create_directory(big);
  for (std::size_t i = 0; i < kMaxListEntries; ++i) std::ofstream(big + "/f" + std::to_string(i));
  auto at_limit = scope_->list("big");
  ASSERT_TRUE(at_limit.has_value());
  EXPECT_EQ(at_limit->entries.size(), kMaxListEntries);
  EXPECT_FALSE(at_limit->truncated);
  std::ofstream(big + "/one-more");
  auto over = scope_->list("big");
  ASSERT_TRUE(over.has_value());
  EXPECT_EQ(over->entries.size(), kMaxListEntries);
  EXPECT_TRUE(over->truncated);
  auto small = scope_->list("sub", 1);
  ASSERT_TRUE(small.has_value());
  ASSERT_EQ(small->entries.size(), 1u);
  EXPECT_EQ(small->entries[0].name, "deeper");  // the first by name, not by disk order
  EXPECT_TRUE(small->truncated);
  auto none = scope_->list("sub", 0);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->entries.empty());
  EXPECT_TRUE(none->truncated);
}

TEST_F(DirectoryTest, TruncatedListIsTheSortedPrefix) {
  std::string many = base_ + "/root/many";
  std::filesystem::create_directory(many);
  std::vector<std::string> all;
  for (int i = 0; i < 300; ++i) {
    // Names whose creation order differs from their sorted order.
    std::string name = "n" + std::to_string((i * 7919) % 1000);
    std::ofstream(many + "/" + name);
    all.push_back(name);
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  for (std::size_t limit : {std::size_t{1}, std::size_t{17}, std::size_t{299}}) {
    auto part = scope_->list("many", limit);
    ASSERT_TRUE(part.has_value());
    EXPECT_TRUE(part->truncated);
    std::vector<std::string> names;
    for (const auto& e : part->entries) names.push_back(e.name);
    EXPECT_EQ(names, std::vector<std::string>(all.begin(), all.begin() + static_cast<long>(limit)))
        << "limit " << limit;
  }
  auto whole = scope_->list("many", all.size());
  ASSERT_TRUE(whole.has_value());
  EXPECT_FALSE(whole->truncated);
  EXPECT_EQ(whole->entries.size(), all.size());
}

TEST_F(DirectoryTest, StatReportsSymlinksWithoutFollowingThem) {
  capsa::testing::FdLeakCheck leaks;
  auto file = scope_->stat("file.txt");
  ASSERT_TRUE(file.has_value());
  EXPECT_EQ(file->type, EntryType::kFile);
  EXPECT_EQ(file->size, 5u);
  struct stat host {};
  ASSERT_EQ(::stat((base_ + "/root/file.txt").c_str(), &host), 0);
  EXPECT_EQ(file->mtime_sec, host.st_mtim.tv_sec);
  EXPECT_EQ(file->mtime_nsec, host.st_mtim.tv_nsec);
  EXPECT_EQ(file->modified_ns(), host.st_mtim.tv_sec * 1'000'000'000LL + host.st_mtim.tv_nsec);
  EXPECT_EQ(scope_->stat("sub")->type, EntryType::kDirectory);
  EXPECT_EQ(scope_->stat("fifo")->type, EntryType::kOther);  // stat never opens the fifo
  // A symlink as the last component is reported as itself, whatever it
  // points at (inside, outside, /proc): its target is never looked at.
  for (std::string_view link : {"link_in", "link_out", "link_up", "dirlink", "proc_link"}) {
    auto info = scope_->stat(link);
    ASSERT_TRUE(info.has_value()) << link << ": " << info.error().to_string();
    EXPECT_EQ(info->type, EntryType::kSymlink) << link;
    EXPECT_EQ(info->size, 0u) << link;
  }
  // ...but never walked through.
  expect_error(scope_->stat("dirlink/inner.txt"), Errc::kDenied, "symlink", "dirlink/inner.txt");
  expect_error(scope_->stat("proc_link/etc"), Errc::kDenied, "symlink", "proc_link/etc");
  expect_error(scope_->stat("../outside.txt"), Errc::kDenied, "\"..\"", "..");
  expect_error(scope_->stat("/etc/passwd"), Errc::kDenied, "absolute", "absolute");
  expect_error(scope_->stat("missing"), Errc::kNotFound, "no such file", "missing");
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(DirectoryProc, StatOfAMagicLinkReportsTheLinkItself) {
  auto proc = DirectoryScope::open("/proc/self");
  ASSERT_TRUE(proc.has_value());
  auto cwd = proc->stat("cwd");
  ASSERT_TRUE(cwd.has_value()) << cwd.error().to_string();
  EXPECT_EQ(cwd->type, EntryType::kSymlink);
  expect_error(proc->stat("cwd/."), Errc::kDenied, "symlink", "cwd/.");
}

TEST(EntryInfoTime, ModifiedNsSaturatesInsteadOfWrapping) {
  EntryInfo info;
  info.mtime_sec = 1;
  info.mtime_nsec = 5;
  EXPECT_EQ(info.modified_ns(), 1'000'000'005);
  info.mtime_sec = -2;
  info.mtime_nsec = 999'999'999;  // the kernel's form of -1.000000001 s
  EXPECT_EQ(info.modified_ns(), -1'000'000'001);
  info.mtime_sec = std::numeric_limits<std::int64_t>::max() / 1'000'000'000;
  info.mtime_nsec = 999'999'999;
  EXPECT_EQ(info.modified_ns(), std::numeric_limits<std::int64_t>::max());
  info.mtime_sec = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(info.modified_ns(), std::numeric_limits<std::int64_t>::max());
  info.mtime_sec = std::numeric_limits<std::int64_t>::min();
  info.mtime_nsec = 0;
  EXPECT_EQ(info.modified_ns(), std::numeric_limits<std::int64_t>::min());
}

}  // namespace
}  // namespace capsa::supervisor::services
