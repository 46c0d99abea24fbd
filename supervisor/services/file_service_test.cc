// fs.File through the real supervisor (opened with fs.Directory.Open):
// positional and explicit-offset reads, eof, the Read bounds, Seek bounds,
// Stat "now", attenuated copies with their own position, revocation.
#include "supervisor/services/file_service.h"

#include <sys/stat.h>

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "capabilities/interfaces/builtin.h"
#include "fs_file_generated.h"
#include "supervisor/services/services_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor::services {
namespace {

using namespace capsa::supervisor::services::testing;

struct ReadOut {
  std::string data;
  bool eof = false;
};

// Raw calls: the SDK refuses bad bounds locally, a hostile worker does not.
Result<ReadOut> raw_read(worker::File& f, std::int64_t offset, std::uint32_t max_bytes) {
  auto& cap = f.capability();
  auto& fbb = cap.payload_builder();
  fbb.Finish(fs::CreateReadRequest(fbb, offset, max_bytes));
  auto reply = cap.call("Read", cap.payload_bytes());
  if (!reply) return std::unexpected(reply.error());
  const auto* r = reply->payload_as<fs::ReadReply>();
  ReadOut out;
  if (r->data() != nullptr) out.data.assign(reinterpret_cast<const char*>(r->data()->data()), r->data()->size());
  out.eof = r->eof();
  return out;
}

Result<std::uint64_t> raw_seek(worker::File& f, std::int64_t offset, std::uint8_t whence) {
  auto& cap = f.capability();
  auto& fbb = cap.payload_builder();
  fbb.Finish(fs::CreateSeekRequest(fbb, offset, static_cast<fs::Whence>(whence)));
  auto reply = cap.call("Seek", cap.payload_bytes());
  if (!reply) return std::unexpected(reply.error());
  return reply->payload_as<fs::SeekReply>()->position();
}

struct FileStat {
  std::uint64_t size = 0;
  std::int64_t modified_ns = 0;
};

Result<FileStat> raw_stat(worker::File& f) {
  auto& cap = f.capability();
  auto& fbb = cap.payload_builder();
  fbb.Finish(fs::CreateFileStatRequest(fbb));
  auto reply = cap.call("Stat", cap.payload_bytes());
  if (!reply) return std::unexpected(reply.error());
  const auto* r = reply->payload_as<fs::FileStatReply>();
  return FileStat{r->size(), r->modified_ns()};
}

constexpr std::uint8_t kSet = 0, kCurrent = 1, kEnd = 2;

class FileServiceTest : public ServiceTest {
 protected:
  // Starts with a "docs" grant and opens `name` as an fs.File.
  worker::File open(const std::string& name) {
    if (!sup_) start_with_docs();
    auto d = worker::Directory::get(ctx(), "docs");
    EXPECT_TRUE(d) << d.error().to_string();
    auto f = d->open(ctx(), name);
    EXPECT_TRUE(f) << f.error().to_string();
    return std::move(*f);
  }
};

TEST_F(FileServiceTest, PositionalReadsAdvanceAndOffsetReadsDoNot) {
  write_file("digits.txt", "0123456789");
  worker::File f = open("digits.txt");
  auto a = raw_read(f, -1, 3);
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->data, "012");
  EXPECT_FALSE(a->eof);
  // An explicit offset reads there and leaves the position alone.
  auto b = raw_read(f, 8, 5);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->data, "89");
  EXPECT_TRUE(b->eof);
  auto c = raw_read(f, -1, 3);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->data, "345");
  // eof is exact: a read that ends at the last byte reached the end...
  auto d = raw_read(f, -1, 4);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->data, "6789");
  EXPECT_TRUE(d->eof);
  // ...and one that ends before it did not.
  auto e = raw_read(f, 0, 9);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->eof);
  auto at_end = raw_read(f, -1, 10);
  ASSERT_TRUE(at_end);
  EXPECT_EQ(at_end->data, "");
  EXPECT_TRUE(at_end->eof);
  // Past the end, and at the largest offset there is: empty, eof.
  auto past = raw_read(f, 1 << 20, 10);
  ASSERT_TRUE(past);
  EXPECT_EQ(past->data, "");
  EXPECT_TRUE(past->eof);
  auto far = raw_read(f, std::numeric_limits<std::int64_t>::max(), interfaces::kMaxReadBytes);
  ASSERT_TRUE(far) << far.error().to_string();
  EXPECT_EQ(far->data, "");
  EXPECT_TRUE(far->eof);
}

TEST_F(FileServiceTest, AWholeFileReadsBackExactlyInMaximalReads) {
  std::string content;
  for (int i = 0; i < 200'000; ++i) content += static_cast<char>('a' + (i * 31) % 26);
  write_file("big.txt", content);
  worker::File f = open("big.txt");
  std::string got;
  for (;;) {
    auto r = raw_read(f, -1, interfaces::kMaxReadBytes);
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_LE(r->data.size(), interfaces::kMaxReadBytes);
    got += r->data;
    if (r->eof) break;
    // Short only at the end.
    ASSERT_EQ(r->data.size(), interfaces::kMaxReadBytes);
  }
  EXPECT_EQ(got.size(), content.size());
  EXPECT_TRUE(got == content);
  // Through the SDK wrapper too.
  auto w = f.read(10, 0);
  ASSERT_TRUE(w);
  EXPECT_EQ(text_of(*w), content.substr(0, 10));
}

TEST_F(FileServiceTest, ReadBoundsAreBadMessagesAndTheFileKeepsServing) {
  write_file("digits.txt", "0123456789");
  worker::File f = open("digits.txt");
  ASSERT_TRUE(raw_read(f, -1, 2));  // position 2
  EXPECT_TRUE(fails_with(raw_read(f, -1, 0), Errc::kBadMessage, "max_bytes is 0"));
  EXPECT_TRUE(fails_with(raw_read(f, -1, interfaces::kMaxReadBytes + 1), Errc::kBadMessage,
                         "max_bytes is 61441; it must be 1..61440"));
  EXPECT_TRUE(fails_with(raw_read(f, -1, std::numeric_limits<std::uint32_t>::max()), Errc::kBadMessage,
                         "max_bytes"));
  EXPECT_TRUE(fails_with(raw_read(f, -2, 1), Errc::kBadMessage, "offset is -2"));
  EXPECT_TRUE(fails_with(raw_read(f, std::numeric_limits<std::int64_t>::min(), 1), Errc::kBadMessage,
                         "offset"));
  // The limits themselves are fine, and no refusal moved the position.
  auto one = raw_read(f, -1, 1);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->data, "2");
  auto max = raw_read(f, 0, interfaces::kMaxReadBytes);
  ASSERT_TRUE(max);
  EXPECT_EQ(max->data, "0123456789");
  EXPECT_EQ(f.capability().state(), worker::CapabilityState::kLive);
}

TEST_F(FileServiceTest, SeekMovesWithinTheFileAndRefusesTheRest) {
  write_file("digits.txt", "0123456789");
  worker::File f = open("digits.txt");
  auto p = raw_seek(f, 4, kSet);
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(*p, 4u);
  EXPECT_EQ(raw_read(f, -1, 2)->data, "45");
  EXPECT_EQ(*raw_seek(f, -3, kCurrent), 3u);
  EXPECT_EQ(raw_read(f, -1, 1)->data, "3");
  EXPECT_EQ(*raw_seek(f, 0, kEnd), 10u);  // the end itself is allowed
  auto at_end = raw_read(f, -1, 5);
  EXPECT_EQ(at_end->data, "");
  EXPECT_TRUE(at_end->eof);
  EXPECT_EQ(*raw_seek(f, -10, kEnd), 0u);
  EXPECT_EQ(*raw_seek(f, 7, kSet), 7u);

  const char* outside = "outside 0..10";
  EXPECT_TRUE(fails_with(raw_seek(f, 11, kSet), Errc::kBadMessage, outside));
  EXPECT_TRUE(fails_with(raw_seek(f, -1, kSet), Errc::kBadMessage, outside));
  EXPECT_TRUE(fails_with(raw_seek(f, 1, kEnd), Errc::kBadMessage, outside));
  EXPECT_TRUE(fails_with(raw_seek(f, -11, kEnd), Errc::kBadMessage, outside));
  EXPECT_TRUE(fails_with(raw_seek(f, 4, kCurrent), Errc::kBadMessage, outside));
  // int64 overflow of position + offset, both ways.
  EXPECT_TRUE(fails_with(raw_seek(f, std::numeric_limits<std::int64_t>::max(), kCurrent),
                         Errc::kBadMessage, outside));
  EXPECT_TRUE(fails_with(raw_seek(f, std::numeric_limits<std::int64_t>::min(), kEnd),
                         Errc::kBadMessage, outside));
  EXPECT_TRUE(fails_with(raw_seek(f, 0, 3), Errc::kBadMessage, "whence 3 is not Set, Current or End"));
  EXPECT_TRUE(fails_with(raw_seek(f, 0, 255), Errc::kBadMessage, "whence 255"));
  // Every refusal left the position where it was.
  EXPECT_EQ(raw_read(f, -1, 1)->data, "7");
}

TEST_F(FileServiceTest, StatIsOfTheFileNow) {
  write_file("grow.txt", "abc");
  worker::File f = open("grow.txt");
  struct stat host {};
  ASSERT_EQ(::stat((root_ + "/grow.txt").c_str(), &host), 0);
  auto s = raw_stat(f);
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->size, 3u);
  EXPECT_EQ(s->modified_ns, host.st_mtim.tv_sec * 1'000'000'000LL + host.st_mtim.tv_nsec);
  // Someone on the host appends: Stat, Seek and Read see it.
  std::ofstream(root_ + "/grow.txt", std::ios::app) << "defg";
  EXPECT_EQ(raw_stat(f)->size, 7u);
  EXPECT_EQ(*raw_seek(f, 0, kEnd), 7u);
  EXPECT_EQ(raw_read(f, 3, 10)->data, "defg");
  auto size = f.size();
  ASSERT_TRUE(size);
  EXPECT_EQ(*size, 7u);
}

TEST_F(FileServiceTest, AnAttenuatedCopyHasItsOwnPositionAndOnlyItsRights) {
  capsa::testing::FdLeakCheck leaks;
  write_file("digits.txt", "0123456789");
  {
    worker::File f = open("digits.txt");
    ASSERT_TRUE(raw_read(f, -1, 4));  // the original is at 4
    const std::string_view read_only[] = {"Read"};
    auto narrow = ctx().attenuate(std::move(f.capability()), read_only);
    ASSERT_TRUE(narrow) << narrow.error().to_string();
    auto copy = worker::File::wrap(std::move(*narrow));
    ASSERT_TRUE(copy);
    // The copy starts at 0: it does not inherit (or reveal) the original's
    // position.
    EXPECT_EQ(raw_read(*copy, -1, 3)->data, "012");
    EXPECT_EQ(raw_read(*copy, -1, 3)->data, "345");
    EXPECT_TRUE(fails_with(raw_seek(*copy, 0, kSet), Errc::kDenied, ""));
    std::optional<GrantView> copy_grant;
    for (auto& g : grants()) {
      if (g.interface == "fs.File") copy_grant = g;
    }
    ASSERT_TRUE(copy_grant);
    EXPECT_EQ(copy_grant->origin, GrantOrigin::kAttenuated);
    EXPECT_EQ(copy_grant->rights, std::vector<std::string>{"Read"});
  }
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(FileServiceTest, RevokingTheFileLeavesTheDirectoryServing) {
  capsa::testing::FdLeakCheck leaks;
  write_file("digits.txt", "0123456789");
  {
    start_with_docs();
    auto d = worker::Directory::get(ctx(), "docs");
    ASSERT_TRUE(d);
    auto f = d->open(ctx(), "digits.txt");
    ASSERT_TRUE(f);
    std::optional<GrantView> file_grant;
    for (auto& g : grants()) {
      if (g.interface == "fs.File") file_grant = g;
    }
    ASSERT_TRUE(file_grant);
    auto revoked = loop_->on_loop([&] { return sup_->revoke(file_grant->id, "test"); });
    ASSERT_TRUE(revoked) << revoked.error().to_string();
    EXPECT_EQ(*revoked, std::vector<GrantId>{file_grant->id});
    EXPECT_TRUE(fails_with(f->read(1), Errc::kRevoked, ""));
    auto again = d->open(ctx(), "digits.txt");
    ASSERT_TRUE(again) << again.error().to_string();
    EXPECT_EQ(text_of(*again->read(3)), "012");
  }
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

}  // namespace
}  // namespace capsa::supervisor::services
