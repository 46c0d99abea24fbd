// The builder used from C++: every check applies without a file, and a bad
// policy reports all of its problems at once.
#include "policy/builder.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "policy/builtin_apis.h"
#include "policy/test_util.h"

namespace capsa::policy {
namespace {

using testing::TempDir;

std::string messages(const Diagnostics& d) { return format_diagnostics(d); }

bool mentions(const Diagnostics& d, std::string_view fragment) {
  return messages(d).find(fragment) != std::string::npos;
}

class BuilderTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string program = dir.executable("worker");
  std::string texts = dir.mkdir("texts");
};

TEST_F(BuilderTest, BuildsAValidPolicyWithDefaults) {
  PolicyBuilder b(builtin_api_catalog());
  auto& w = b.worker("wc").program(program).arg("-v").env("LANG", "C");
  w.limit(LimitKind::kMemory, 64 << 20);
  w.grant("texts", "fs.Directory").right("Open").right("List").constraint("root", texts);
  w.grant("log", "log.Sink").all_rights().rate(5).byte_budget(1 << 20);
  auto p = b.try_build();
  ASSERT_TRUE(p) << messages(p.error());
  ASSERT_EQ(p->workers.size(), 1u);
  const WorkerProfile& wp = p->workers[0];
  EXPECT_EQ(wp.program, program);
  EXPECT_EQ(wp.args, std::vector<std::string>{"-v"});
  EXPECT_EQ(wp.limits.memory, 64u << 20);
  EXPECT_EQ(wp.limits.message_bytes, 65536u);  // default
  EXPECT_EQ(wp.on_bad_message, BadMessageAction::kKill);  // default
  EXPECT_EQ(wp.sandbox.tmpfs_bytes, kDefaultTmpfsBytes);
  const Grant* dirg = wp.find_grant("texts");
  ASSERT_NE(dirg, nullptr);
  EXPECT_EQ(dirg->rights, (std::vector<std::string>{"Open", "List"}));
  EXPECT_FALSE(dirg->transferable);
  // read_only was not given: the catalog's default (true) is filled in.
  ASSERT_NE(dirg->constraint("read_only"), nullptr);
  EXPECT_EQ(std::get<bool>(*dirg->constraint("read_only")), true);
  const Grant* log = wp.find_grant("log");
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(log->all_rights);
  EXPECT_EQ(log->rights, std::vector<std::string>{"Write"});
  EXPECT_EQ(log->rate, 5u);
}

TEST_F(BuilderTest, EachErrorClassWithoutAFile) {
  struct Case {
    const char* what;
    void (*build)(PolicyBuilder&, const std::string& program);
    const char* fragment;
  } cases[] = {
      {"unknown API", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "fs.Dir").right("Open");
       }, "unknown API \"fs.Dir\"; known: demo.WordCount, fs.Directory, fs.File, log.Sink"},
      {"method not in API", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "log.Sink").right("Delete");
       }, "method \"Delete\" is not in log.Sink; its methods: Write"},
      {"no rights", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "log.Sink");
       }, "grant \"g\" lists no rights"},
      {"not served", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "fs.File").all_rights();
       }, "fs.File is not served by the supervisor (a File comes from fs.Directory.Open); it can be the interface of a channel between workers"},
      {"bootstrap", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "capsa.Bootstrap").all_rights();
       }, "capsa.Bootstrap is given to every worker implicitly"},
      {"duplicate worker", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p);
         b.worker("w").program(p);
       }, "duplicate worker name \"w\""},
      {"duplicate grant", [](PolicyBuilder& b, const std::string& p) {
         auto& w = b.worker("w").program(p);
         w.grant("g", "log.Sink").all_rights();
         w.grant("g", "log.Sink").all_rights();
       }, "duplicate grant name \"g\" in worker \"w\""},
      {"relative program", [](PolicyBuilder& b, const std::string&) {
         b.worker("w").program("bin/wc");
       }, "program \"bin/wc\" must be an absolute path"},
      {"missing program", [](PolicyBuilder& b, const std::string&) {
         b.worker("w").program("/nonexistent/wc");
       }, "program /nonexistent/wc does not exist"},
      {"no program", [](PolicyBuilder& b, const std::string&) { b.worker("w"); },
       "worker \"w\" has no program"},
      {"bind missing", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).ro_bind("/nonexistent/data");
       }, "read-only bind /nonexistent/data does not exist"},
      {"limit low", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).limit(LimitKind::kOpenFiles, 7);
       }, "limits.open_files = 7 is out of range; allowed 8..65536"},
      {"limit high", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).limit(LimitKind::kMessageBytes, (16u << 20) + 1);
       }, "limits.message_bytes = 16777217 is out of range; allowed 256..16M"},
      {"unknown syscall", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).allow_syscall("opne");
       }, "unknown syscall \"opne\""},
      {"channel unknown worker", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p);
         b.channel("c").interface("demo.WordCount").client("w").server("nobody");
       }, "channel \"c\" names unknown worker \"nobody\"; workers: w"},
      {"channel to itself", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p);
         b.channel("c").interface("demo.WordCount").client("w").server("w");
       }, "connects worker \"w\" to itself"},
      {"unknown constraint", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "log.Sink").all_rights().constraint("root", std::string("/"));
       }, "unknown constraint \"root\" for log.Sink; it has none"},
      {"constraint type", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "fs.Directory").right("List")
             .constraint("root", std::string("/")).constraint("read_only", std::string("yes"));
       }, "constraint read_only of fs.Directory must be a boolean"},
      {"required constraint", [](PolicyBuilder& b, const std::string& p) {
         b.worker("w").program(p).grant("g", "fs.Directory").right("List");
       }, "needs constraint root"},
      {"bad name", [](PolicyBuilder& b, const std::string& p) { b.worker("../x").program(p); },
       "worker name \"../x\" is invalid"},
      {"NUL in program", [](PolicyBuilder& b, const std::string&) {
         b.worker("w").program(std::string("/bin/true\0x", 11));
       }, "program contains a NUL byte"},
      {"no workers", [](PolicyBuilder&, const std::string&) {}, "the policy defines no workers"},
  };
  for (const Case& c : cases) {
    PolicyBuilder b(builtin_api_catalog());
    c.build(b, program);
    auto p = b.try_build();
    ASSERT_FALSE(p) << c.what;
    EXPECT_TRUE(mentions(p.error(), c.fragment)) << c.what << ":\n" << messages(p.error());
    EXPECT_EQ(p.error().size(), 1u) << c.what << ":\n" << messages(p.error());
  }
}

TEST_F(BuilderTest, ReportsEveryErrorNotOnlyTheFirst) {
  PolicyBuilder b(builtin_api_catalog());
  auto& w = b.worker("w").program("relative");
  w.limit(LimitKind::kCpuSeconds, 0);
  w.grant("g", "nope.Api").all_rights();
  w.grant("h", "log.Sink").right("Read");
  b.channel("c").interface("demo.WordCount").client("w").server("ghost");
  auto p = b.try_build();
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().size(), 5u) << messages(p.error());
}

TEST_F(BuilderTest, RangeLimitsAtTheEdges) {
  for (const LimitSpec& s : limit_specs()) {
    for (std::uint64_t v : {s.min, s.max}) {
      PolicyBuilder b(builtin_api_catalog());
      b.worker("w").program(program).limit(s.kind, v);
      EXPECT_TRUE(b.try_build()) << s.name << "=" << v;
    }
    for (std::uint64_t v : {s.min - 1, s.max + 1}) {
      PolicyBuilder b(builtin_api_catalog());
      b.worker("w").program(program).limit(s.kind, v);
      auto p = b.try_build();
      ASSERT_FALSE(p) << s.name << "=" << v;
      EXPECT_TRUE(mentions(p.error(), "limits." + std::string(s.name))) << messages(p.error());
    }
  }
}

TEST_F(BuilderTest, FilesystemChecksCanBeTurnedOffButAbsolutePathsCannot) {
  BuildOptions no_fs{.check_filesystem = false};
  PolicyBuilder b(builtin_api_catalog(), no_fs);
  b.worker("w").program("/elsewhere/bin/wc").ro_bind("/elsewhere/data")
      .grant("d", "fs.Directory").right("List").constraint("root", std::string("/elsewhere/texts"));
  EXPECT_TRUE(b.try_build());

  PolicyBuilder rel(builtin_api_catalog(), no_fs);
  rel.worker("w").program("wc");
  EXPECT_FALSE(rel.try_build());
}

TEST_F(BuilderTest, DirectoryRootMustBeADirectory) {
  PolicyBuilder b(builtin_api_catalog());
  b.worker("w").program(program).grant("d", "fs.Directory").right("List").constraint("root", program);
  auto p = b.try_build();
  ASSERT_FALSE(p);
  EXPECT_TRUE(mentions(p.error(), "root " + program + " is not a directory")) << messages(p.error());
}

// Executable for the uid the sandbox runs as (65534 when we are root, else
// ours), the same check and words as spawn() (sandbox/host_file_test.cc has
// every case).
TEST_F(BuilderTest, ProgramMustBeExecutableByTheSandbox) {
  std::string plain = dir.write("plain", "data");
  ASSERT_EQ(::chmod(plain.c_str(), 0644), 0);
  PolicyBuilder b(builtin_api_catalog());
  b.worker("w").program(plain);
  auto p = b.try_build();
  ASSERT_FALSE(p);
  const bool root = ::geteuid() == 0;
  std::string owner = std::to_string(::geteuid()) + ":" + std::to_string(::getegid());
  ASSERT_EQ(p.error().size(), 1u) << messages(p.error());
  EXPECT_EQ(p.error()[0].message,
            "program " + plain + " (mode 0644, owner " + owner +
                ") cannot be executed by the sandbox's uid " +
                (root ? std::string("65534") : std::to_string(::geteuid())) + " (the \"" +
                (root ? "other" : "owner") + "\" permission bits apply): chmod " +
                (root ? "o" : "u") + "+x " + plain);
}

// Each bind is one fd and one mount on the way into the sandbox: bounded,
// at the limit and one past it.
TEST_F(BuilderTest, ReadOnlyBindsAtMost64) {
  for (std::size_t n : {std::size_t{64}, std::size_t{65}}) {
    PolicyBuilder b(builtin_api_catalog());
    auto& w = b.worker("w").program(program);
    // Not a temporary directory: /tmp is the sandbox's own mount point.
    for (std::size_t i = 0; i < n; ++i) w.ro_bind("/usr/share");
    auto p = b.try_build();
    if (n == 64) {
      EXPECT_TRUE(p) << messages(p.error());
    } else {
      ASSERT_FALSE(p);
      ASSERT_EQ(p.error().size(), 1u) << messages(p.error());
      EXPECT_EQ(p.error()[0].message, "65 read-only binds; at most 64");
    }
  }
}

TEST_F(BuilderTest, CatalogConstraintTypesIncludingSizes) {
  ApiCatalog catalog = builtin_api_catalog();
  catalog.add({.name = "kv.Store", .methods = {"Get", "Put"},
               .constraints = {{"quota", ConstraintType::kUnsigned, false, "1M"},
                               {"prefix", ConstraintType::kString, true, ""}},
               .grantable = true, .served = true, .served_note = ""});
  PolicyBuilder b(catalog);
  auto& w = b.worker("w").program(program);
  w.grant("a", "kv.Store").right("Get").constraint("prefix", std::string("p/"))
      .constraint("quota", std::string("64K"));
  w.grant("b", "kv.Store").right("Put").constraint("prefix", std::string("q/"));
  auto p = b.try_build();
  ASSERT_TRUE(p) << messages(p.error());
  EXPECT_EQ(std::get<std::uint64_t>(*p->workers[0].grants[0].constraint("quota")), 64u << 10);
  EXPECT_EQ(std::get<std::uint64_t>(*p->workers[0].grants[1].constraint("quota")), 1u << 20);

  PolicyBuilder bad(catalog);
  bad.worker("w").program(program).grant("a", "kv.Store").right("Get")
      .constraint("prefix", std::string("p/")).constraint("quota", std::string("lots"));
  auto q = bad.try_build();
  ASSERT_FALSE(q);
  EXPECT_TRUE(mentions(q.error(), "constraint quota of kv.Store must be an integer >= 0")) << messages(q.error());
}

TEST_F(BuilderTest, ChannelNameMustNotShadowAGrant) {
  PolicyBuilder b(builtin_api_catalog());
  b.worker("a").program(program).grant("wc", "log.Sink").all_rights();
  b.worker("b").program(program);
  b.channel("wc").interface("demo.WordCount").client("a").server("b");
  auto p = b.try_build();
  ASSERT_FALSE(p);
  EXPECT_TRUE(mentions(p.error(), "same name as a grant of worker \"a\"")) << messages(p.error());
}

}  // namespace
}  // namespace capsa::policy
