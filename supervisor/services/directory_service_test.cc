// fs.Directory through the real supervisor: Open (a minted fs.File),
// OpenFile (a file handle), List (bounded, sorted, truncated), Stat, every
// escape attempt refused with its exact error while the grant keeps
// serving, revocation reaching the files opened through it, no fd leaks.
#include "supervisor/services/directory_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <gtest/gtest.h>

#include "capabilities/interfaces/builtin.h"
#include "fs_directory_generated.h"
#include "supervisor/services/path_resolver.h"
#include "supervisor/services/services_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor::services {
namespace {

using namespace capsa::supervisor::services::testing;
using worker::EntryType;

// One fs.Directory call with a raw path (the SDK has no Stat wrapper, and
// the tests need to send what a hostile worker would). The four requests
// are the same table shape: one `path` string.
Result<Message> dir_call(worker::Directory& d, std::string_view method, std::string_view path) {
  auto& cap = d.capability();
  auto& fbb = cap.payload_builder();
  auto s = fbb.CreateString(path.data(), path.size());
  if (method == "Open") fbb.Finish(fs::CreateOpenRequest(fbb, s));
  if (method == "OpenFile") fbb.Finish(fs::CreateOpenFileRequest(fbb, s));
  if (method == "List") fbb.Finish(fs::CreateListRequest(fbb, s));
  if (method == "Stat") fbb.Finish(fs::CreateStatRequest(fbb, s));
  return cap.call(method, cap.payload_bytes());
}

struct StatResult {
  fs::EntryType type = fs::EntryType::Unknown;
  std::uint64_t size = 0;
  std::int64_t modified_ns = 0;
};

Result<StatResult> stat_of(worker::Directory& d, std::string_view path) {
  auto reply = dir_call(d, "Stat", path);
  if (!reply) return std::unexpected(reply.error());
  const auto* r = reply->payload_as<fs::StatReply>();
  return StatResult{r->type(), r->size(), r->modified_ns()};
}

std::vector<std::string> names_of(const worker::Listing& l) {
  std::vector<std::string> out;
  for (const auto& e : l.entries) out.push_back(e.name);
  return out;
}

// The tree every test starts from:
//   secret.txt                (outside the root: must stay unreachable)
//   root/hello.txt            "hello world"
//   root/sub/inner.txt        "inner"
//   root/fifo                 nobody writes to it
//   root/link_in  -> hello.txt
//   root/link_out -> /etc/passwd
//   root/link_up  -> ../secret.txt
//   root/dirlink  -> sub
class DirectoryServiceTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    std::ofstream(dir_.path() + "/secret.txt") << "secret";
    write_file("hello.txt", "hello world");
    std::filesystem::create_directory(root_ + "/sub");
    write_file("sub/inner.txt", "inner");
    ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
    std::filesystem::create_symlink("hello.txt", root_ + "/link_in");
    std::filesystem::create_symlink("/etc/passwd", root_ + "/link_out");
    std::filesystem::create_symlink("../secret.txt", root_ + "/link_up");
    std::filesystem::create_symlink("sub", root_ + "/dirlink");
  }

  Result<worker::Directory> docs() { return worker::Directory::get(ctx(), "docs"); }
};

TEST_F(DirectoryServiceTest, OpenGivesAFileCapabilityMintedUnderTheDirectory) {
  capsa::testing::FdLeakCheck leaks;
  start_with_docs();
  {
    auto d = docs();
    ASSERT_TRUE(d) << d.error().to_string();
    auto file = d->open(ctx(), "hello.txt");
    ASSERT_TRUE(file) << file.error().to_string();
    auto first = file->read(5);
    ASSERT_TRUE(first) << first.error().to_string();
    EXPECT_EQ(text_of(*first), "hello");
    auto rest = file->read(100);
    ASSERT_TRUE(rest) << rest.error().to_string();
    EXPECT_EQ(text_of(*rest), " world");
    auto size = file->size();
    ASSERT_TRUE(size);
    EXPECT_EQ(*size, 11u);

    // The grant table: the file is a child of the directory grant, with
    // every fs.File right, and the port the worker holds is its port.
    auto dir_grant = grant_named("docs");
    ASSERT_TRUE(dir_grant);
    std::optional<GrantView> file_grant;
    for (auto& g : grants()) {
      if (g.interface == "fs.File") file_grant = g;
    }
    ASSERT_TRUE(file_grant);
    EXPECT_EQ(file_grant->parent, dir_grant->id);
    EXPECT_EQ(file_grant->origin, GrantOrigin::kReturned);
    EXPECT_EQ(file_grant->worker, "w");
    EXPECT_EQ(file_grant->rights, (std::vector<std::string>{"Read", "Seek", "Stat"}));
    EXPECT_EQ(file_grant->state, GrantState::kLive);
  }
  // The worker closed both ports: both grants are released.
  auto live = grants();
  EXPECT_TRUE(std::none_of(live.begin(), live.end(), [](const GrantView& g) {
    return g.interface == "fs.File" || g.interface == "fs.Directory";
  }));
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(DirectoryServiceTest, OpenFileGivesAReadOnlyFileHandleAndItsSize) {
  capsa::testing::FdLeakCheck leaks;
  start_with_docs();
  {
    auto d = docs();
    ASSERT_TRUE(d);
    auto fd = d->open_file("sub/inner.txt");
    ASSERT_TRUE(fd) << fd.error().to_string();
    int flags = ::fcntl(fd->get(), F_GETFL);
    EXPECT_EQ(flags & O_ACCMODE, O_RDONLY);
    char buf[16] = {};
    EXPECT_EQ(::pread(fd->get(), buf, sizeof(buf), 0), 5);
    EXPECT_EQ(std::string(buf, 5), "inner");
    // A write through it fails: the kernel says so, not our good will.
    EXPECT_EQ(::write(fd->get(), "x", 1), -1);

    auto reply = dir_call(*d, "OpenFile", "hello.txt");
    ASSERT_TRUE(reply) << reply.error().to_string();
    EXPECT_EQ(reply->payload_as<fs::OpenFileReply>()->size(), 11u);
  }
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(DirectoryServiceTest, OpenFileChargesTheWholeFileToTheByteBudget) {
  const std::string mib(1 << 20, 'x');
  write_file("big.bin", mib);
  // Room for one whole file (plus the small payloads), not for two.
  start([&](policy::WorkerBuilder& w) {
    w.grant("docs", "fs.Directory").all_rights().constraint("root", root_).byte_budget(3 << 19);
  });
  auto d = docs();
  ASSERT_TRUE(d);
  auto first = d->open_file("big.bin");
  ASSERT_TRUE(first) << first.error().to_string();
  auto second = d->open_file("big.bin");
  EXPECT_TRUE(fails_with(second, Errc::kOverloaded, "budget"));
  // A small file still fits.
  EXPECT_TRUE(d->open_file("hello.txt"));
}

TEST_F(DirectoryServiceTest, ListIsSortedAndShowsEntriesAsThemselves) {
  start_with_docs();
  auto d = docs();
  ASSERT_TRUE(d);
  auto l = d->list(".");
  ASSERT_TRUE(l) << l.error().to_string();
  EXPECT_FALSE(l->truncated);
  std::vector<std::string> got;
  for (const auto& e : l->entries) {
    got.push_back(e.name + ":" + std::to_string(static_cast<int>(e.type)) + ":" + std::to_string(e.size));
  }
  const auto t = [](EntryType type) { return std::to_string(static_cast<int>(type)); };
  EXPECT_EQ(got, (std::vector<std::string>{
                     "dirlink:" + t(EntryType::kSymlink) + ":0", "fifo:" + t(EntryType::kOther) + ":0",
                     "hello.txt:" + t(EntryType::kRegular) + ":11", "link_in:" + t(EntryType::kSymlink) + ":0",
                     "link_out:" + t(EntryType::kSymlink) + ":0", "link_up:" + t(EntryType::kSymlink) + ":0",
                     "sub:" + t(EntryType::kDirectory) + ":0"}));
  // An empty path names the root (fs_directory.fbs).
  auto empty = d->list("");
  ASSERT_TRUE(empty) << empty.error().to_string();
  EXPECT_EQ(names_of(*empty), names_of(*l));
  auto sub = d->list("sub");
  ASSERT_TRUE(sub);
  EXPECT_EQ(names_of(*sub), std::vector<std::string>{"inner.txt"});
}

TEST_F(DirectoryServiceTest, ListHoldsAtMost512EntriesAndSaysWhenThereAreMore) {
  std::filesystem::create_directory(root_ + "/exact");
  std::filesystem::create_directory(root_ + "/over");
  std::vector<std::string> all;
  for (int i = 0; i < 600; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "f%03d", (i * 7) % 600);  // not created in order
    if (i < 512) write_file(std::string("exact/") + name, "");
    write_file(std::string("over/") + name, "");
  }
  for (int i = 0; i < 600; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "f%03d", i);
    all.emplace_back(name);
  }
  start_with_docs();
  auto d = docs();
  ASSERT_TRUE(d);
  auto exact = d->list("exact");
  ASSERT_TRUE(exact) << exact.error().to_string();
  EXPECT_EQ(exact->entries.size(), interfaces::kMaxListEntries);
  EXPECT_FALSE(exact->truncated);
  auto over = d->list("over");
  ASSERT_TRUE(over) << over.error().to_string();
  EXPECT_TRUE(over->truncated);
  // The first 512 by name, whatever order the filesystem keeps them in.
  EXPECT_EQ(names_of(*over), std::vector<std::string>(all.begin(), all.begin() + 512));
}

TEST_F(DirectoryServiceTest, ListOfLongNamesIsCutToFitOnePacket) {
  std::filesystem::create_directory(root_ + "/long");
  std::vector<std::string> all;
  for (int i = 0; i < 400; ++i) {
    char prefix[16];
    std::snprintf(prefix, sizeof(prefix), "%03d", i);
    all.push_back(prefix + std::string(250, 'n'));  // 253 bytes: near NAME_MAX
    write_file("long/" + all.back(), "");
  }
  start_with_docs();
  auto d = docs();
  ASSERT_TRUE(d);
  auto l = d->list("long");
  ASSERT_TRUE(l) << l.error().to_string();
  EXPECT_TRUE(l->truncated);
  ASSERT_GT(l->entries.size(), 100u);  // 400 * 253 bytes would be ~100 KiB
  ASSERT_LT(l->entries.size(), 400u);
  EXPECT_EQ(names_of(*l), std::vector<std::string>(all.begin(), all.begin() + static_cast<long>(l->entries.size())));
}

TEST(ListReply, TheSizeBoundHoldsForTheWorstCase) {
  // The longest names a Linux filesystem allows, more than fit: the reply
  // must stay within its budget.
  Listing worst;
  for (int i = 0; i < 600; ++i) {
    worst.entries.push_back(DirEntry{std::string(255, static_cast<char>('a' + i % 26)), EntryInfo{}});
  }
  flatbuffers::FlatBufferBuilder fbb;
  build_list_reply(fbb, worst);
  EXPECT_LE(fbb.GetSize(), kListReplyBudget);
  auto verifier = flatbuffers::Verifier(fbb.GetBufferPointer(), fbb.GetSize());
  ASSERT_TRUE(verifier.VerifyBuffer<fs::ListReply>(nullptr));
  const auto* r = flatbuffers::GetRoot<fs::ListReply>(fbb.GetBufferPointer());
  EXPECT_TRUE(r->truncated());
  ASSERT_NE(r->entries(), nullptr);
  // Not cut much more than needed: the bound is close to the real size.
  EXPECT_GT(fbb.GetSize(), kListReplyBudget * 9 / 10);

  // Short names: the count limit is what cuts.
  Listing many;
  for (int i = 0; i < 600; ++i) many.entries.push_back(DirEntry{std::to_string(i), EntryInfo{}});
  fbb.Clear();
  build_list_reply(fbb, many);
  r = flatbuffers::GetRoot<fs::ListReply>(fbb.GetBufferPointer());
  EXPECT_EQ(r->entries()->size(), interfaces::kMaxListEntries);
  EXPECT_TRUE(r->truncated());

  // Exactly the limit: nothing cut, not truncated.
  many.entries.resize(interfaces::kMaxListEntries);
  fbb.Clear();
  build_list_reply(fbb, many);
  r = flatbuffers::GetRoot<fs::ListReply>(fbb.GetBufferPointer());
  EXPECT_EQ(r->entries()->size(), interfaces::kMaxListEntries);
  EXPECT_FALSE(r->truncated());
}

TEST_F(DirectoryServiceTest, StatReportsTypesSizesAndTimesWithoutFollowing) {
  start_with_docs();
  auto d = docs();
  ASSERT_TRUE(d);
  struct stat host {};
  ASSERT_EQ(::stat((root_ + "/hello.txt").c_str(), &host), 0);
  auto file = stat_of(*d, "hello.txt");
  ASSERT_TRUE(file) << file.error().to_string();
  EXPECT_EQ(file->type, fs::EntryType::Regular);
  EXPECT_EQ(file->size, 11u);
  EXPECT_EQ(file->modified_ns, host.st_mtim.tv_sec * 1'000'000'000LL + host.st_mtim.tv_nsec);
  auto root = stat_of(*d, "");
  ASSERT_TRUE(root) << root.error().to_string();
  EXPECT_EQ(root->type, fs::EntryType::Directory);
  EXPECT_EQ(stat_of(*d, "sub")->type, fs::EntryType::Directory);
  EXPECT_EQ(stat_of(*d, "fifo")->type, fs::EntryType::Other);  // never opened: no block
  // A symlink is reported as itself, wherever it points (.fbs: "reported,
  // not followed"); its target's size is not leaked.
  for (std::string_view link : {"link_in", "link_out", "link_up", "dirlink"}) {
    auto s = stat_of(*d, link);
    ASSERT_TRUE(s) << link << ": " << s.error().to_string();
    EXPECT_EQ(s->type, fs::EntryType::Symlink) << link;
    EXPECT_EQ(s->size, 0u) << link;
  }
}

// Every way out of the root, through every method, gets its exact error,
// never a host path in the text, and the grant keeps serving after each.
TEST_F(DirectoryServiceTest, EveryEscapeIsRefusedWithItsExactError) {
  capsa::testing::FdLeakCheck leaks;
  start_with_docs();
  {
    auto d = docs();
    ASSERT_TRUE(d);
    struct Case {
      std::string path;
      Errc code;
      std::string fragment;
    };
    const std::string at_wire_limit = std::string(interfaces::kMaxPathBytes - 10, 'a') + "/hello.txt";
    ASSERT_EQ(at_wire_limit.size(), interfaces::kMaxPathBytes);
    const std::vector<Case> cases = {
        {"..", Errc::kDenied, "\"..\" component"},
        {"../secret.txt", Errc::kDenied, "\"..\" component"},
        {"sub/../../secret.txt", Errc::kDenied, "\"..\" component"},
        {"sub/../hello.txt", Errc::kDenied, "\"..\" component"},  // even one that stays inside
        {"/etc/passwd", Errc::kDenied, "absolute path"},
        {"//etc/passwd", Errc::kDenied, "absolute path"},
        {"dirlink/inner.txt", Errc::kDenied, "symlink"},
        {"link_up/x", Errc::kDenied, "symlink"},
        {"link_out/x", Errc::kDenied, "symlink"},
        {std::string("hello.txt\0/../../secret.txt", 27), Errc::kDenied, "NUL byte"},
        {std::string("\0", 1), Errc::kDenied, "NUL byte"},
        // Over the wire limit: a bad message. Between the resolver's
        // tighter limit and the wire's: denied by rule.
        {std::string(interfaces::kMaxPathBytes + 1, 'a'), Errc::kBadMessage, "the limit is 4096"},
        {at_wire_limit + "x", Errc::kBadMessage, "the limit is 4096"},
        {at_wire_limit, Errc::kDenied, "longer than 1024 bytes"},
        {std::string(kMaxPathBytes + 1, 'a'), Errc::kDenied, "longer than 1024 bytes"},
        {"missing.txt", Errc::kNotFound, "no such file"},
        {"hello.txt/x", Errc::kNotFound, "no such file"},
    };
    for (std::string_view method : {"Open", "OpenFile", "List", "Stat"}) {
      for (const Case& c : cases) {
        auto r = dir_call(*d, method, c.path);
        EXPECT_TRUE(fails_with(r, c.code, c.fragment))
            << method << "(\"" << c.path.substr(0, 40) << "\")";
        if (!r) {
          EXPECT_EQ(r.error().message.find(dir_.path()), std::string::npos) << r.error().message;
        }
      }
      // A symlink as the last component: refused for what opens, reported
      // (as a symlink) by Stat.
      for (std::string_view link : {"link_in", "link_out", "link_up", "dirlink"}) {
        auto r = dir_call(*d, method, link);
        if (method == "Stat") {
          EXPECT_TRUE(r) << link;
        } else {
          EXPECT_TRUE(fails_with(r, Errc::kDenied, "symlink")) << method << " " << link;
        }
      }
    }
    // Types: only regular files open, only directories list.
    EXPECT_TRUE(fails_with(dir_call(*d, "Open", "sub"), Errc::kDenied, "not a regular file: it is a directory"));
    EXPECT_TRUE(fails_with(dir_call(*d, "OpenFile", "fifo"), Errc::kDenied, "not a regular file: it is a fifo"));
    EXPECT_TRUE(fails_with(dir_call(*d, "Open", ""), Errc::kDenied, "it is a directory"));
    EXPECT_TRUE(fails_with(dir_call(*d, "List", "hello.txt"), Errc::kDenied, "not a directory"));

    // Still serving, the worker still running, nothing opened by mistake.
    auto fd = d->open_file("hello.txt");
    ASSERT_TRUE(fd) << fd.error().to_string();
    EXPECT_EQ(d->capability().state(), worker::CapabilityState::kLive);
    auto ws = loop_->on_loop([&] { return sup_->workers(); });
    ASSERT_EQ(ws.size(), 1u);
    EXPECT_TRUE(ws[0].running);
    EXPECT_EQ(ws[0].bad_messages, 0u);  // refusals by the service, not protocol errors
    auto live = grants();
    EXPECT_TRUE(std::none_of(live.begin(), live.end(),
                             [](const GrantView& g) { return g.interface == "fs.File"; }));
  }
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(DirectoryServiceTest, RevokingTheDirectoryRevokesTheFilesOpenedThroughIt) {
  capsa::testing::FdLeakCheck leaks;
  start_with_docs();
  {
    auto d = docs();
    ASSERT_TRUE(d);
    auto file = d->open(ctx(), "hello.txt");
    ASSERT_TRUE(file) << file.error().to_string();
    ASSERT_TRUE(file->read(5));
    // A file handle given out by OpenFile is not revocable (documented):
    // it keeps working; the capability does not.
    auto handle = d->open_file("hello.txt");
    ASSERT_TRUE(handle);

    auto dir_grant = grant_named("docs");
    ASSERT_TRUE(dir_grant);
    auto revoked = loop_->on_loop([&] { return sup_->revoke(dir_grant->id, "test"); });
    ASSERT_TRUE(revoked) << revoked.error().to_string();
    ASSERT_EQ(revoked->size(), 2u);
    EXPECT_EQ((*revoked)[0], dir_grant->id);

    EXPECT_TRUE(fails_with(file->read(5), Errc::kRevoked, ""));
    EXPECT_EQ(file->capability().state(), worker::CapabilityState::kRevoked);
    EXPECT_TRUE(fails_with(d->list("."), Errc::kRevoked, ""));
    char c = 0;
    EXPECT_EQ(::pread(handle->get(), &c, 1, 0), 1);

    auto ended = grants(/*include_ended=*/true);
    for (const auto& g : ended) {
      if (g.interface == "fs.File" || g.interface == "fs.Directory") {
        EXPECT_EQ(g.state, GrantState::kRevoked) << g.interface;
      }
    }
  }
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(DirectoryServiceTest, AMissingRootStopsTheWorkerFromStartingWithTheReason) {
  policy::PolicyBuilder b(Supervisor::api_catalog());
  b.worker("w").program("/bin/true").grant("docs", "fs.Directory").all_rights().constraint("root", root_);
  auto p = b.try_build();
  ASSERT_TRUE(p) << policy::format_diagnostics(p.error());
  std::filesystem::remove_all(root_);  // gone between the check and the start
  SupervisorOptions o;
  o.audit_log_path = dir_.path() + "/audit.jsonl";
  auto s = Supervisor::create(std::move(*p), std::move(o));
  ASSERT_TRUE(s) << s.error().to_string();
  auto port = (*s)->attach("w");
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().code, Errc::kNotFound) << port.error().to_string();
  EXPECT_NE(port.error().message.find("grant 'docs'"), std::string::npos) << port.error().message;
  EXPECT_NE(port.error().message.find("cannot open the fs.Directory root " + root_), std::string::npos)
      << port.error().message;
}

TEST(DirectoryServiceFactory, DeclaresTheConstraintsThePolicyChecks) {
  auto catalog = Supervisor::api_catalog();
  const auto* api = catalog.find("fs.Directory");
  ASSERT_NE(api, nullptr);
  ASSERT_EQ(api->constraints.size(), 2u);
  EXPECT_EQ(api->constraints[0].name, "root");
  EXPECT_EQ(api->constraints[0].type, policy::ConstraintType::kHostDir);
  EXPECT_TRUE(api->constraints[0].required);
  EXPECT_EQ(api->constraints[1].name, "read_only");
  EXPECT_EQ(api->constraints[1].type, policy::ConstraintType::kBool);
  EXPECT_EQ(api->constraints[1].default_value, "true");
  // A directory grant without a root is refused by the checker.
  policy::PolicyBuilder b(catalog);
  b.worker("w").program("/bin/true").grant("docs", "fs.Directory").all_rights();
  EXPECT_FALSE(b.try_build());
}

}  // namespace
}  // namespace capsa::supervisor::services
