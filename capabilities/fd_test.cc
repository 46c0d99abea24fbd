#include "capabilities/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/support/fd_count.h"

namespace capsa {
namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(Fd, ClosesOnDestruction) {
  int raw = -1;
  {
    Fd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    raw = fd.get();
    EXPECT_TRUE(is_open(raw));
  }
  EXPECT_FALSE(is_open(raw));
}

TEST(Fd, MoveTransfersOwnership) {
  testing::FdLeakCheck leaks;
  Fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = a.get();
  Fd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): asserting moved-from state
  EXPECT_EQ(b.get(), raw);
  Fd c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  c = Fd();
  EXPECT_FALSE(is_open(raw));
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(Fd, ReleaseGivesUpOwnership) {
  Fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int raw = a.release();
  EXPECT_FALSE(a.valid());
  EXPECT_TRUE(is_open(raw));
  Fd again(raw);  // owned again so the test itself leaks nothing
}

TEST(Fd, ResetClosesThePrevious) {
  Fd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int first = a.get();
  a.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(a.valid());
  // The new fd was opened while `first` was still open, so it is another
  // number, and `first` must now be closed.
  EXPECT_NE(a.get(), first);
  EXPECT_FALSE(is_open(first));
}

}  // namespace
}  // namespace capsa
