#include "capabilities/handle.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "capabilities/port.h"
#include "tests/support/fd_count.h"

namespace capsa {
namespace {

std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A temporary regular file, removed at the end of the test.
class TempFile {
 public:
  TempFile() {
    char name[] = "/tmp/capsa-handle-XXXXXX";
    Fd fd(::mkstemp(name));
    path_ = name;
    ::write(fd.get(), "data", 4);
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void expect_refused(const Fd& fd, HandleKind kind, std::string_view what) {
  auto r = check_handle_kind(fd, kind);
  ASSERT_FALSE(r) << "accepted " << what << " as " << handle_kind_name(kind);
  EXPECT_EQ(r.error().code, Errc::kBadMessage);
  EXPECT_NE(r.error().message.find(what), std::string::npos) << r.error().message;
}

TEST(HandleKind, PortMustBeAUnixSeqpacketSocket) {
  testing::FdLeakCheck leaks;
  {
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    EXPECT_TRUE(check_handle_kind(ch->first.fd(), HandleKind::kPort));

    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    Fd r(p[0]), w(p[1]);
    expect_refused(r, HandleKind::kPort, "a pipe");

    Fd ev(::eventfd(0, EFD_CLOEXEC));
    expect_refused(ev, HandleKind::kPort, "eventfd");

    TempFile tmp;
    auto file = open_file_handle(tmp.path());
    ASSERT_TRUE(file);
    expect_refused(*file, HandleKind::kPort, "a regular file");

    int s[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    Fd s0(s[0]), s1(s[1]);
    expect_refused(s0, HandleKind::kPort, "SOCK_STREAM");

    // A listening SEQPACKET socket is the right type but no port.
    Fd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string name = "capsa-handle-test-" + std::to_string(::getpid());
    std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    expect_refused(listener, HandleKind::kPort, "a listening socket");

    Fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (udp.valid()) expect_refused(udp, HandleKind::kPort, "non-AF_UNIX");
  }
  EXPECT_EQ(leaks.leaked(), 0) << testing::describe_open_fds();
}

TEST(HandleKind, FileMustBeARegularFileOpenReadOnly) {
  TempFile tmp;
  auto ro = open_file_handle(tmp.path());
  ASSERT_TRUE(ro);
  EXPECT_TRUE(check_handle_kind(*ro, HandleKind::kFile));

  Fd rw(::open(tmp.path().c_str(), O_RDWR | O_CLOEXEC));
  expect_refused(rw, HandleKind::kFile, "open for writing");
  Fd wo(::open(tmp.path().c_str(), O_WRONLY | O_CLOEXEC));
  expect_refused(wo, HandleKind::kFile, "open for writing");
  Fd path_only(::open(tmp.path().c_str(), O_PATH | O_CLOEXEC));
  expect_refused(path_only, HandleKind::kFile, "O_PATH");
  Fd dir(::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  expect_refused(dir, HandleKind::kFile, "a directory");
  Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  expect_refused(null, HandleKind::kFile, "a character device");
}

TEST(HandleKind, BlobMustBeASealedMemfd) {
  auto blob = make_blob(as_bytes("sealed contents"), "test");
  ASSERT_TRUE(blob);
  EXPECT_TRUE(check_handle_kind(*blob, HandleKind::kBlob));

  Fd unsealed(::memfd_create("unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ::write(unsealed.get(), "x", 1);
  expect_refused(unsealed, HandleKind::kBlob, "without the write, grow and shrink seals");

  Fd partly(::memfd_create("partly", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ::fcntl(partly.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
  expect_refused(partly, HandleKind::kBlob, "without the write, grow and shrink seals");

  TempFile tmp;
  auto file = open_file_handle(tmp.path());
  ASSERT_TRUE(file);
  expect_refused(*file, HandleKind::kBlob, "not a memfd");
}

TEST(HandleKind, ReadOnlyTmpfsFileIsAFile) {
  // tmpfs files answer F_GET_SEALS too; only memfds are held to the seals.
  std::string path = "/dev/shm/capsa-handle-" + std::to_string(::getpid());
  { Fd w(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)); ASSERT_TRUE(w.valid()); }
  auto ro = open_file_handle(path);
  ::unlink(path.c_str());
  ASSERT_TRUE(ro) << ro.error().to_string();
  auto ok = check_handle_kind(*ro, HandleKind::kFile);
  EXPECT_TRUE(ok) << ok.error().to_string();
}

TEST(HandleKind, WritableMemfdIsNotAFile) {
  Fd memfd(::memfd_create("rw", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  // Reopen read-only through /proc: the creator keeps a writable fd.
  std::string path = "/proc/self/fd/" + std::to_string(memfd.get());
  Fd ro(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro.valid());
  expect_refused(ro, HandleKind::kFile, "an unsealed memfd");
}

TEST(Blob, ContentsCannotChangeAfterSealing) {
  auto blob = make_blob(as_bytes("frozen"), "test");
  ASSERT_TRUE(blob);
  EXPECT_EQ(::write(blob->get(), "x", 1), -1);
  EXPECT_EQ(::ftruncate(blob->get(), 0), -1);
  EXPECT_EQ(::mmap(nullptr, 6, PROT_READ | PROT_WRITE, MAP_SHARED, blob->get(), 0), MAP_FAILED);
  auto view = BlobView::map(*blob);
  ASSERT_TRUE(view);
  std::string got(reinterpret_cast<const char*>(view->bytes().data()), view->bytes().size());
  EXPECT_EQ(got, "frozen");
}

TEST(Blob, SizeLimitAtLimitAndOnePast) {
  auto blob = make_blob(as_bytes("0123456789"), "sized");
  ASSERT_TRUE(blob);
  EXPECT_TRUE(BlobView::map(*blob, 10));
  auto over = BlobView::map(*blob, 9);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::kBadMessage);
  EXPECT_NE(over.error().message.find("exceeds the limit"), std::string::npos);
}

TEST(Blob, EmptyBlobMapsToNothing) {
  auto blob = make_blob({}, "empty");
  ASSERT_TRUE(blob);
  auto view = BlobView::map(*blob);
  ASSERT_TRUE(view);
  EXPECT_TRUE(view->bytes().empty());
}

TEST(FileHandle, RefusesSymlinksAndNonRegularFiles) {
  EXPECT_FALSE(open_file_handle("/dev/null"));
  EXPECT_FALSE(open_file_handle("/tmp"));
  TempFile tmp;
  std::string link = tmp.path() + ".link";
  ASSERT_EQ(::symlink(tmp.path().c_str(), link.c_str()), 0);
  auto r = open_file_handle(link);
  ::unlink(link.c_str());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, ELOOP);
}

}  // namespace
}  // namespace capsa
