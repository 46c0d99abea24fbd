// The validator's handle rules, with real fds of every kind through a real
// channel: references, kinds against the kernel object, counts.
#include <sys/eventfd.h>

#include "capabilities/testdata/wire_test_util.h"
#include "capabilities/validator.h"

namespace capsa::testing {
namespace {

using ValidatorHandles = WireTest;
constexpr const char* kPut = "capsa.test.PutRequest";

std::vector<Fd> fds_of(Fd a) {
  std::vector<Fd> v;
  v.push_back(std::move(a));
  return v;
}

TEST_F(ValidatorHandles, EveryKindIsDeliveredAndCanBeTaken) {
  {
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    std::vector<Fd> fds;
    fds.push_back(ch->first.release_fd());
    fds.push_back(readonly_file());
    fds.push_back(memfd_blob("one"));
    fds.push_back(memfd_blob("two"));
    auto m = deliver(envelope(call(1, kPut), put_request(0, 1, {3, 2}),
                              {HandleKind::kPort, HandleKind::kFile, HandleKind::kBlob,
                               HandleKind::kBlob}),
                     std::move(fds));
    ASSERT_TRUE(m) << m.error().to_string();
    ASSERT_EQ(m->handle_count(), 4u);
    EXPECT_EQ(m->handle_kind(0), HandleKind::kPort);
    EXPECT_EQ(m->handle_kind(3), HandleKind::kBlob);
    const auto* req = m->payload_as<test::PutRequest>();
    Fd blob = m->take_handle(req->blobs()->Get(0));
    auto view = BlobView::map(blob);
    ASSERT_TRUE(view);
    // blobs[0] is handle 3, "two" (handle 2 is "one", the same length).
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(view->bytes().data()), view->bytes().size()), "two");
    EXPECT_FALSE(m->take_handle(3).valid()) << "a handle can be taken once";
    EXPECT_FALSE(m->take_handle(9).valid());
  }
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorHandles, IndexOutOfRange) {
  expect_refused(deliver(envelope(call(1, kPut), put_request(std::nullopt, 3, {}),
                                  {HandleKind::kFile}),
                         fds_of(readonly_file())),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Put: field file refers to handle 3 but 1 handles are declared");
  expect_refused(deliver(envelope(call(1, kPut), put_request(std::nullopt, std::nullopt,
                                                             {0xffffffffu}),
                                  {HandleKind::kBlob}),
                         fds_of(memfd_blob("x"))),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Put: field blobs refers to handle 4294967295 but 1 handles are "
                 "declared");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorHandles, OneHandleReferencedTwice) {
  std::vector<Fd> fds;
  fds.push_back(memfd_blob("a"));
  fds.push_back(memfd_blob("b"));
  expect_refused(deliver(envelope(call(1, kPut), put_request(std::nullopt, std::nullopt, {1, 1}),
                                  {HandleKind::kBlob, HandleKind::kBlob}),
                         std::move(fds)),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Put: handle 1 is referenced twice (again by blobs)");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorHandles, HandleNeverReferenced) {
  std::vector<Fd> fds;
  fds.push_back(memfd_blob("a"));
  fds.push_back(memfd_blob("b"));
  expect_refused(deliver(envelope(call(1, kPut), put_request(std::nullopt, std::nullopt, {0}),
                                  {HandleKind::kBlob, HandleKind::kBlob}),
                         std::move(fds)),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Put: handle 1 (blob) is not referenced by any handle field");
  // A method without handle fields, with a declared handle.
  expect_refused(deliver(envelope(call(0, "capsa.test.EchoRequest"), echo_request("x"),
                                  {HandleKind::kBlob}),
                         fds_of(memfd_blob("a"))),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Echo: handle 0 (blob) is not referenced by any handle field");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorHandles, FieldKindDiffersFromDeclaredKind) {
  expect_refused(deliver(envelope(call(1, kPut), put_request(std::nullopt, 0, {}),
                                  {HandleKind::kBlob}),
                         fds_of(memfd_blob("a"))),
                 Errc::kBadMessage,
                 "capsa.test.Echo.Put: field file takes a file but handle 0 is declared blob");
  expect_refused(deliver(envelope(call(1, kPut), put_request(std::nullopt, 0, {}),
                                  {static_cast<HandleKind>(9)}),
                         fds_of(readonly_file())),
                 Errc::kBadMessage, "capsa.test.Echo.Put: handle 0 has unknown kind 9");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorHandles, FewerFdsThanDeclared) {
  expect_refused(deliver(envelope(call(1, kPut), put_request(std::nullopt, 0, {}),
                                  {HandleKind::kFile})),
                 Errc::kBadMessage, "capsa.test.Echo.Put: 1 handles declared but 0 fds attached");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorHandles, SurplusFdIsRefused) {
  expect_refused(deliver(envelope(call(0, "capsa.test.EchoRequest"), echo_request("x")),
                         fds_of(memfd_blob("surplus"))),
                 Errc::kBadMessage, "capsa.test.Echo.Echo: 1 fds attached but 0 handles declared");
  expect_still_works_and_no_leak();
}

// The wrong kernel object behind a declared kind.
struct WrongObject {
  const char* name;
  HandleKind declared;
  Fd (*make)();
  const char* verdict;
};

class ValidatorWrongObject : public WireTest,
                             public ::testing::WithParamInterface<WrongObject> {};

Fd pipe_end() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Fd();
  Fd keep(p[0]);
  ::close(p[1]);
  return keep;
}
Fd an_eventfd() { return Fd(::eventfd(0, EFD_CLOEXEC)); }
Fd stream_socket() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Fd();
  ::close(sv[1]);
  return Fd(sv[0]);
}

TEST_P(ValidatorWrongObject, IsRefusedWithWhatItIs) {
  const WrongObject& w = GetParam();
  auto payload = w.declared == HandleKind::kPort   ? put_request(0, std::nullopt, {})
                 : w.declared == HandleKind::kFile ? put_request(std::nullopt, 0, {})
                                                   : put_request(std::nullopt, std::nullopt, {0});
  Fd fd = w.make();
  ASSERT_TRUE(fd.valid());
  expect_refused(deliver(envelope(call(1, kPut), payload, {w.declared}), fds_of(std::move(fd))),
                 Errc::kBadMessage, std::string("capsa.test.Echo.Put: handle 0: ") + w.verdict);
  expect_still_works_and_no_leak();
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ValidatorWrongObject,
    ::testing::Values(
        WrongObject{"PortButPipe", HandleKind::kPort, pipe_end,
                    "declared port but the fd is a pipe"},
        WrongObject{"PortButEventfd", HandleKind::kPort, an_eventfd,
                    "declared port but the fd is an anon_inode:[eventfd]"},
        WrongObject{"PortButRegularFile", HandleKind::kPort, readonly_file,
                    "declared port but the fd is a regular file"},
        WrongObject{"PortButStreamSocket", HandleKind::kPort, stream_socket,
                    "declared port but the fd is an AF_UNIX SOCK_STREAM socket"},
        WrongObject{"FileButWritable", HandleKind::kFile, writable_file,
                    "declared file but the fd is open for writing"},
        WrongObject{"BlobButUnsealedMemfd", HandleKind::kBlob, unsealed_memfd,
                    "declared blob but the fd is a memfd without the write, grow and shrink "
                    "seals"},
        WrongObject{"BlobButPlainFile", HandleKind::kBlob, readonly_file,
                    "declared blob but the fd is not a memfd"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(ValidatorHandles, HandleCountAtLimitAndOnePast) {
  std::vector<std::uint32_t> idx;
  std::vector<HandleKind> kinds;
  std::vector<Fd> fds;
  for (std::uint32_t i = 0; i < kMaxHandlesPerMessage; ++i) {
    idx.push_back(i);
    kinds.push_back(HandleKind::kBlob);
    fds.push_back(memfd_blob("b"));
  }
  {
    auto m = deliver(envelope(call(1, kPut), put_request(std::nullopt, std::nullopt, idx), kinds),
                     std::move(fds));
    ASSERT_TRUE(m) << m.error().to_string();
    EXPECT_EQ(m->handle_count(), kMaxHandlesPerMessage);
  }
  // One more declared than the limit (with the limit's worth of fds).
  idx.push_back(16);
  kinds.push_back(HandleKind::kBlob);
  fds.clear();
  for (std::size_t i = 0; i < kMaxHandlesPerMessage; ++i) fds.push_back(memfd_blob("b"));
  expect_refused(
      deliver(envelope(call(1, kPut), put_request(std::nullopt, std::nullopt, idx), kinds),
              std::move(fds)),
      Errc::kBadMessage, "17 handles declared (limit 16)");
  expect_still_works_and_no_leak();
}

TEST_F(ValidatorHandles, TwoHundredFiftyFdsAreAllClosed) {
  std::vector<Fd> fds;
  for (int i = 0; i < 250; ++i) fds.push_back(memfd_blob("b"));
  auto r = deliver(envelope(call(0, "capsa.test.EchoRequest"), echo_request("x")),
                   std::move(fds));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kBadMessage);
  EXPECT_EQ(r.error().message,
            "control data truncated: more than 16 handles attached; all were closed");
  expect_still_works_and_no_leak();
}

}  // namespace
}  // namespace capsa::testing
