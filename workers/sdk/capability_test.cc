// The worker SDK against a real bootstrap peer over real sockets
// (testdata/test_peer.h): grants, typed calls, exact errors, revocation,
// attenuation, and no fd leaks.
#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include "tests/support/fd_count.h"
#include "tests/support/result_matchers.h"
#include "tests/support/temp_dir.h"
#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"
#include "fs_directory_generated.h"
#include "workers/sdk/testdata/test_peer.h"

namespace capsa::worker::testing {
namespace {

using capsa::testing::ErrorIs;
using capsa::testing::IsOk;

class SdkTest : public ::testing::Test {
 protected:
  SdkTest() {
    root_dir_.write("a.txt", "hello capsa");
    root_dir_.mkdir("sub");
  }
  capsa::testing::TempDir root_dir_{"capsa-sdk"};
  const std::string& root_ = root_dir_.path();
};

TEST_F(SdkTest, GetDirectoryListOpenFileAndRead) {
  capsa::testing::FdLeakCheck leaks;
  {
    TestSupervisor sup(root_);
    auto ctx = Context::from_port(sup.take_worker_end());
    ASSERT_TRUE(ctx) << ctx.error().to_string();
    auto docs = Directory::get(*ctx, "docs");
    ASSERT_TRUE(docs) << docs.error().to_string();
    auto listing = docs->list("");
    ASSERT_TRUE(listing) << listing.error().to_string();
    ASSERT_EQ(listing->entries.size(), 2u);
    EXPECT_EQ(listing->entries[0].name, "a.txt");
    EXPECT_EQ(listing->entries[0].type, EntryType::kRegular);
    EXPECT_EQ(listing->entries[0].size, 11u);
    EXPECT_EQ(listing->entries[1].name, "sub");
    EXPECT_EQ(listing->entries[1].type, EntryType::kDirectory);

    auto fd = docs->open_file("a.txt");
    ASSERT_TRUE(fd) << fd.error().to_string();
    char buf[32] = {};
    EXPECT_EQ(::read(fd->get(), buf, sizeof buf), 11);
    EXPECT_STREQ(buf, "hello capsa");
    EXPECT_EQ(::write(fd->get(), "x", 1), -1) << "the file handle is read-only";

    auto file = docs->open(*ctx, "a.txt");
    ASSERT_TRUE(file) << file.error().to_string();
    auto bytes = file->read(5, 6);
    ASSERT_TRUE(bytes) << bytes.error().to_string();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()), "capsa");
    EXPECT_EQ(file->size().value_or(0), 11u);
    // offset -1: at the position, which advances.
    auto first = file->read(6);
    auto rest = file->read(100);
    ASSERT_TRUE(first && rest);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(first->data()), first->size()), "hello ");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(rest->data()), rest->size()), "capsa");
    EXPECT_THAT(file->read(0), ErrorIs(Errc::kInvalidArgument));
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(SdkTest, ListNamesEveryGrantWithItsInterface) {
  TestSupervisor sup(root_);
  auto ctx = Context::from_port(sup.take_worker_end());
  ASSERT_TRUE(ctx);
  auto grants = ctx->list();
  ASSERT_TRUE(grants) << grants.error().to_string();
  ASSERT_EQ(grants->size(), 4u);
  EXPECT_EQ((*grants)[0].name, "docs");
  EXPECT_EQ((*grants)[0].interface, "fs.Directory");
  EXPECT_EQ((*grants)[1].rights, right_of(2));
  EXPECT_EQ((*grants)[2].interface, "log.Sink");
}

TEST_F(SdkTest, ExactErrorsForMissingWrongAndUnknownGrantsThenStillServes) {
  capsa::testing::FdLeakCheck leaks;
  {
    TestSupervisor sup(root_);
    auto ctx = Context::from_port(sup.take_worker_end());
    ASSERT_TRUE(ctx);
    EXPECT_THAT(ctx->get("nope", "fs.Directory"), ErrorIs(Errc::kNotFound, "no grant named nope"));
    EXPECT_THAT(Directory::get(*ctx, "logs"),
                ErrorIs(Errc::kNotFound, "grant logs is log.Sink, not fs.Directory"));
    EXPECT_THAT(ctx->get("alien", "x.Unknown"),
                ErrorIs(Errc::kNotFound, "grant alien is interface x.Unknown, which this worker SDK does not know"));
    EXPECT_THAT(ctx->get("portless", "fs.Directory"),
                ErrorIs(Errc::kBadMessage, "bootstrap reply for portless carries no port"));

    auto outside = Directory::get(*ctx, "docs");
    ASSERT_TRUE(outside);
    EXPECT_THAT(outside->open_file("../etc/passwd"), ErrorIs(Errc::kDenied));
    EXPECT_THAT(outside->open_file("missing.txt"), ErrorIs(Errc::kNotFound));
    // Still serving after every refusal.
    EXPECT_TRUE(outside->open_file("a.txt"));
    EXPECT_EQ(outside->capability().state(), CapabilityState::kLive);
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(SdkTest, MethodOutsideRightsIsDeniedLocallyAndOthersWork) {
  TestSupervisor sup(root_);
  auto ctx = Context::from_port(sup.take_worker_end());
  ASSERT_TRUE(ctx);
  auto ro = Directory::get(*ctx, "ro_docs");
  ASSERT_TRUE(ro);
  EXPECT_FALSE(ro->capability().allows("OpenFile"));
  EXPECT_THAT(ro->open_file("a.txt"),
              ErrorIs(Errc::kDenied, "method OpenFile is not in the rights of grant ro_docs"));
  EXPECT_TRUE(ro->list(""));
}

TEST_F(SdkTest, RevokedMidCallFailsWithRevokedAndRunsTheCallbackOnce) {
  capsa::testing::FdLeakCheck leaks;
  {
    TestSupervisor sup(root_);
    auto ctx = Context::from_port(sup.take_worker_end());
    ASSERT_TRUE(ctx);
    auto log = LogSink::get(*ctx, "logs");
    ASSERT_TRUE(log) << log.error().to_string();
    int callbacks = 0;
    CapabilityState seen = CapabilityState::kLive;
    log->capability().on_closed([&](CapabilityState s, const Error&) {
      ++callbacks;
      seen = s;
    });
    ASSERT_TRUE(log->write(LogSink::Level::kInfo, "first line"));
    EXPECT_THAT(log->write(LogSink::Level::kInfo, "revoke-me"), ErrorIs(Errc::kRevoked));
    EXPECT_EQ(log->capability().state(), CapabilityState::kRevoked);
    EXPECT_EQ(callbacks, 1);
    EXPECT_EQ(seen, CapabilityState::kRevoked);
    EXPECT_THAT(log->write(LogSink::Level::kInfo, "after"), ErrorIs(Errc::kRevoked));
    EXPECT_EQ(callbacks, 1);
    EXPECT_EQ(sup.log_lines(), (std::vector<std::string>{"first line", "revoke-me"}));
    // The bootstrap still serves.
    EXPECT_TRUE(LogSink::get(*ctx, "logs"));
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(SdkTest, RevokeWhileIdleIsObservableAfterTheFact) {
  TestSupervisor sup(root_);
  auto ctx = Context::from_port(sup.take_worker_end());
  ASSERT_TRUE(ctx);
  auto docs = Directory::get(*ctx, "docs");
  ASSERT_TRUE(docs);
  EXPECT_EQ(docs->capability().state(), CapabilityState::kLive);
  sup.revoke_all();
  // No call in flight: the state is read from the port (POLLHUP).
  EXPECT_EQ(docs->capability().state(), CapabilityState::kRevoked);
  EXPECT_THAT(docs->list(""), ErrorIs(Errc::kRevoked));
}

TEST_F(SdkTest, AsyncSubmitCompletesFromOnReadable) {
  TestSupervisor sup(root_);
  auto ctx = Context::from_port(sup.take_worker_end());
  ASSERT_TRUE(ctx);
  auto docs = Directory::get(*ctx, "docs");
  ASSERT_TRUE(docs);
  auto& cap = docs->capability();
  std::vector<std::uint64_t> sizes;
  for (int i = 0; i < 3; ++i) {
    auto& fbb = cap.payload_builder();
    fbb.Finish(fs::CreateListRequest(fbb, fbb.CreateString("")));
    auto id = cap.submit("List", cap.payload_bytes(), {}, [&](Result<Message> m) {
      ASSERT_TRUE(m) << m.error().to_string();
      sizes.push_back(m->payload_as<fs::ListReply>()->entries()->size());
    });
    ASSERT_TRUE(id) << id.error().to_string();
    EXPECT_EQ(*id, static_cast<std::uint64_t>(i + 1));
  }
  EXPECT_EQ(cap.in_flight(), 3u);
  while (cap.in_flight() > 0) ASSERT_TRUE(cap.on_readable());
  EXPECT_EQ(sizes, (std::vector<std::uint64_t>{2, 2, 2}));
}

TEST_F(SdkTest, AttenuateNarrowsRights) {
  capsa::testing::FdLeakCheck leaks;
  {
    TestSupervisor sup(root_);
    auto ctx = Context::from_port(sup.take_worker_end());
    ASSERT_TRUE(ctx);
    auto docs = ctx->get("docs", "fs.Directory");
    ASSERT_TRUE(docs);
    std::string_view only_list[] = {"List"};
    auto narrow = ctx->attenuate(std::move(*docs), only_list);
    ASSERT_TRUE(narrow) << narrow.error().to_string();
    EXPECT_EQ(narrow->rights(), right_of(2));
    auto dir = Directory::wrap(std::move(*narrow));
    ASSERT_TRUE(dir);
    EXPECT_TRUE(dir->list(""));
    EXPECT_EQ(dir->open_file("a.txt").error().code, Errc::kDenied);

    auto docs2 = ctx->get("docs", "fs.Directory");
    ASSERT_TRUE(docs2);
    std::string_view bogus[] = {"Delete"};
    EXPECT_THAT(ctx->attenuate(std::move(*docs2), bogus),
                ErrorIs(Errc::kNotFound, "fs.Directory has no method Delete"));
  }
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST(SdkDirectory, ListReplyWhoseEntriesShareOneLongNameIsRefused) {
  capsa::testing::FdLeakCheck leaks;
  {
    auto boot = make_channel();
    ASSERT_TRUE(boot);
    auto ctx = Context::from_port(std::move(boot->first));
    ASSERT_TRUE(ctx) << ctx.error().to_string();
    auto ch = make_channel();
    ASSERT_TRUE(ch);
    auto server = ctx->serve(std::move(ch->second), "fs.Directory");
    ASSERT_TRUE(server);
    // A hostile directory server: 1,000 entries pointing at one entry with a
    // 50 KB name. Valid flatbuffers; copying every name would be 50 MB.
    ASSERT_TRUE((*server)->on("List", [](Message&, Reply& reply) -> Result<void> {
      auto& fbb = reply.builder();
      auto one = fs::CreateEntry(fbb, fbb.CreateString(std::string(50'000, 'n')), fs::EntryType::Regular, 1);
      std::vector<flatbuffers::Offset<fs::Entry>> v(1000, one);
      fbb.Finish(fs::CreateListReply(fbb, fbb.CreateVector(v), false));
      return {};
    }));
    std::thread serving([&] { (void)(*server)->run(); });
    auto cap = ctx->adopt(std::move(ch->first), "fs.Directory");
    ASSERT_TRUE(cap);
    auto dir = Directory::wrap(std::move(*cap));
    ASSERT_TRUE(dir);
    EXPECT_THAT(dir->list(""),
                ErrorIs(Errc::kBadMessage, "fs.Directory.List reply names more bytes than it holds"));
    dir = std::unexpected(Error{});  // closes the client end: the server's run() returns
    serving.join();
  }
  EXPECT_EQ(leaks.leaked(), 0);
}

TEST(SdkContext, FromFdRefusesAnFdThatIsNotAPortAndClosesIt) {
  capsa::testing::FdLeakCheck leaks;
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  EXPECT_THAT(Context::from_fd(p[0]),
              ErrorIs(Errc::kInvalidArgument, ::testing::HasSubstr("is not a capsa port")));
  EXPECT_EQ(::fcntl(p[0], F_GETFD), -1) << "the refused fd was closed";
  EXPECT_EQ(leaks.leaked(), 0);
  EXPECT_THAT(Context::from_fd(999), ErrorIs(Errc::kInvalidArgument));
}

}  // namespace
}  // namespace capsa::worker::testing
