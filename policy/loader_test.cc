// Policy files: each error class is reported with its message at the exact
// line:column of the value at fault; a bad file reports all its errors.
#include "policy/loader.h"

#include <gtest/gtest.h>

#include "policy/builtin_apis.h"
#include "policy/test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::policy {
namespace {

using testing::has_diag;
using testing::pos_of;
using testing::TempDir;

class LoaderTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::string bin = (dir.executable("wc"), dir.path());
  std::string texts = dir.mkdir("texts");
  const std::string file = "p.json";

  LoadOptions options() const {
    LoadOptions o;
    o.defines["bin"] = bin;
    o.defines["texts"] = texts;
    return o;
  }

  Checked<Policy> load(std::string_view text) const {
    return load_policy_text(text, file, builtin_api_catalog(), options());
  }

  // Loads `text`, expects failure with exactly one diagnostic at the first
  // occurrence of `at` containing `fragment`.
  void expect_one(std::string_view text, std::string_view at, std::string_view fragment) {
    capsa::testing::FdLeakCheck fds;
    auto p = load(text);
    ASSERT_FALSE(p) << text;
    std::string where = pos_of(file, text, at);
    EXPECT_TRUE(has_diag(p.error(), where, fragment))
        << "want " << where << ": " << fragment << "\ngot:\n" << format_diagnostics(p.error());
    EXPECT_EQ(p.error().size(), 1u) << format_diagnostics(p.error());
    EXPECT_EQ(fds.leaked(), 0);
  }
};

// A valid policy; cases below change one thing in it.
constexpr std::string_view kValid = R"({
  // two workers and a channel
  "workers": [
    {
      "name": "asker",
      "program": "${bin}/wc",
      "limits": { "memory": "64M", "cpu_seconds": 5 },
      "grants": [
        { "name": "texts", "api": "fs.Directory", "rights": ["Open", "List"],
          "constraints": { "root": "${texts}", "read_only": true } },
        { "name": "log", "api": "log.Sink", "rights": ["*"] }
      ]
    },
    { "name": "counter", "program": "${bin}/wc" }
  ],
  "channels": [
    { "name": "wordcount", "interface": "demo.WordCount", "client": "asker", "server": "counter" }
  ]
})";

std::string replace(std::string_view text, std::string_view from, std::string_view to) {
  std::string s(text);
  auto at = s.find(from);
  if (at == std::string::npos) std::abort();
  return s.replace(at, from.size(), to);
}

TEST_F(LoaderTest, ValidPolicyLoads) {
  capsa::testing::FdLeakCheck fds;
  auto p = load(kValid);
  ASSERT_TRUE(p) << format_diagnostics(p.error());
  ASSERT_EQ(p->workers.size(), 2u);
  EXPECT_EQ(p->workers[0].program, bin + "/wc");
  EXPECT_EQ(p->workers[0].limits.memory, 64u << 20);
  EXPECT_EQ(p->workers[0].limits.cpu_seconds, 5u);
  EXPECT_EQ(std::get<std::string>(*p->workers[0].grants[0].constraint("root")), texts);
  EXPECT_EQ(p->workers[0].grants[1].rights, std::vector<std::string>{"Write"});
  ASSERT_EQ(p->channels.size(), 1u);
  EXPECT_EQ(p->channels[0].server, "counter");
  EXPECT_EQ(fds.leaked(), 0);
}

// One change to kValid, one error: its message at the value at fault.
struct OneError {
  const char* name;
  std::string_view from, to;  // replace the first `from` in kValid by `to`
  std::string_view at;        // the diagnostic is at the first `at` of the result
  std::string_view fragment;  // and contains this
};

constexpr OneError kOneError[] = {
    {"UnknownField", "\"limits\": {", "\"limts\": {", "\"limts\"", "unknown field \"limts\" in Worker (did you mean \"limits\"?); allowed: "},
    {"UnknownNestedField", "\"cpu_seconds\": 5", "\"cpu\": 5", "\"cpu\"",
     "unknown field \"cpu\" in Limits; allowed: calls_in_flight, cpu_seconds"},
    {"UnknownApi", "\"api\": \"log.Sink\"", "\"api\": \"log.Sunk\"", "\"log.Sunk\"",
     "unknown API \"log.Sunk\" (did you mean \"log.Sink\"?); known: demo.WordCount, fs.Directory"},
    // Nothing within two edits of "Delete": no suggestion.
    {"MethodNotInApi", "[\"Open\", \"List\"]", "[\"Open\", \"Delete\"]", "\"Delete\"",
     "method \"Delete\" is not in fs.Directory; its methods: Open, OpenFile, List, Stat"},
    {"RelativeProgram", "\"${bin}/wc\" }", "\"bin/wc\" }", "\"bin/wc\"", "program \"bin/wc\" must be an absolute path"},
    {"BindPathDoesNotExist", "\"limits\":", "\"sandbox\": { \"ro_binds\": [\"/nonexistent/x\"] }, \"limits\":",
     "\"/nonexistent/x\"", "read-only bind /nonexistent/x does not exist"},
    {"CpuLimitOutOfRange", "\"cpu_seconds\": 5", "\"cpu_seconds\": 100000", "100000",
     "limits.cpu_seconds = 100000 is out of range; allowed 1..86400"},
    {"MemoryLimitOutOfRange", "\"64M\"", "\"8M\"", "\"8M\"", "limits.memory = 8388608 is out of range; allowed 16M..64G"},
    {"NegativeLimit", "\"cpu_seconds\": 5", "\"cpu_seconds\": -5", "-5", "cpu_seconds must be an integer >= 0"},
    {"LimitOver64Bits", "\"cpu_seconds\": 5", "\"cpu_seconds\": 99999999999999999999", "9999",
     "cpu_seconds must be an integer >= 0, found 99999999999999999999 (more than 2^64-1)"},
    {"ChannelNamesUnknownWorker", "\"server\": \"counter\"", "\"server\": \"countr\"", "\"countr\"",
     "channel \"wordcount\" names unknown worker \"countr\" (did you mean \"counter\"?); workers: asker, counter"},
    {"UnreadableSeccompProfile", "\"limits\":",
     "\"sandbox\": { \"seccomp_profile\": \"/nonexistent/p.json\" }, \"limits\":", "\"/nonexistent/p.json\"",
     "seccomp profile /nonexistent/p.json: No such file or directory"},
    {"UndefinedVariable", "\"${bin}/wc\" }", "\"${prefix}/wc\" }", "\"${prefix}/wc\"",
     "undefined variable ${prefix} in \"${prefix}/wc\"; define it with --define prefix=VALUE"},
    {"ConstraintOfWrongType", "\"read_only\": true", "\"read_only\": \"yes\"", "\"yes\"",
     "constraint read_only of fs.Directory must be a boolean"},
    {"UnknownEnumName", "\"limits\":", "\"on_bad_message\": \"explode\", \"limits\":", "\"explode\"",
     "on_bad_message must be one of: reply_error, close_port, kill; found \"explode\""},
    {"NumberForString", "\"${bin}/wc\" }", "42 }", "42", "program must be a string, found a number"},
    {"StringForArray", "\"rights\": [\"*\"]", "\"rights\": \"*\"", "\"*\"", "rights must be an array, found a string"},
    {"NumberInStringArray", "\"rights\": [\"*\"]", "\"rights\": [7]", "7]", "rights must be a string, found a number"},
    {"Null", "\"cpu_seconds\": 5", "\"cpu_seconds\": null", "null", "null is not allowed"},
    // What was found, what is allowed, and the closest name within two edits.
    {"StringForInteger", "\"cpu_seconds\": 5", "\"cpu_seconds\": \"5\"", "\"5\"",
     "cpu_seconds must be an integer >= 0, found a string (\"5\"); write 5 without quotes"},
    {"SizeWithUnknownSuffix", "\"64M\"", "\"128MB\"", "\"128MB\"",
     "memory must be an integer >= 0 (bytes) or a size, found \"128MB\"; a size is digits with an "
     "optional suffix K, M, G or T (powers of 1024: \"64K\", \"16M\", \"1G\") and nothing else"},
    {"MisspeltLimit", "\"cpu_seconds\": 5", "\"cpu_secnods\": 5", "\"cpu_secnods\"",
     "unknown field \"cpu_secnods\" in Limits (did you mean \"cpu_seconds\"?)"},
    {"ApiInTheWrongCase", "\"api\": \"log.Sink\"", "\"api\": \"log.sink\"", "\"log.sink\"",
     "unknown API \"log.sink\" (did you mean \"log.Sink\"?)"},
    {"RightInSnakeCase", "[\"Open\", \"List\"]", "[\"Open\", \"open_file\"]", "\"open_file\"",
     "method \"open_file\" is not in fs.Directory (did you mean \"OpenFile\"?); its methods: "},
    {"EnumNearMiss", "\"limits\":", "\"on_bad_message\": \"kil\", \"limits\":", "\"kil\"",
     "on_bad_message must be one of: reply_error, close_port, kill; found \"kil\" (did you mean \"kill\"?)"},
    {"RepeatedRight", "[\"Open\", \"List\"]", "[\"Open\", \"Open\"]", "\"Open\"]",
     "right \"Open\" is listed twice (first defined at p.json:"},
    // What the sandbox refuses when it starts the worker, refused here first.
    {"BindOverTheSandboxTmp", "\"limits\":", "\"sandbox\": { \"ro_binds\": [\"/tmp\"] }, \"limits\":",
     "\"/tmp\"", "read-only bind \"/tmp\" is at or below a mount point the sandbox makes itself "
     "(/, /proc, /dev, /tmp, /.capsa); bind a directory elsewhere"},
    {"BindBelowProc", "\"limits\":", "\"sandbox\": { \"ro_binds\": [\"/proc/self\"] }, \"limits\":",
     "\"/proc/self\"", "read-only bind \"/proc/self\" is at or below a mount point"},
    {"BindWithDotDot", "\"limits\":", "\"sandbox\": { \"ro_binds\": [\"/usr/../etc\"] }, \"limits\":",
     "\"/usr/../etc\"", "read-only bind \"/usr/../etc\" has a \".\" or \"..\" component"},
    {"TmpfsBelowTheSandboxMinimum", "\"limits\":", "\"sandbox\": { \"tmpfs_size\": \"512K\" }, \"limits\":",
     "\"512K\"", "sandbox.tmpfs_size = 524288 is out of range; allowed 1M..4G"},
};

void PrintTo(const OneError& c, std::ostream* os) { *os << c.name; }

class LoaderOneError : public LoaderTest, public ::testing::WithParamInterface<OneError> {};

TEST_P(LoaderOneError, IsReportedAloneAtTheValueAtFault) {
  const OneError& c = GetParam();
  expect_one(replace(kValid, c.from, c.to), c.at, c.fragment);
}

INSTANTIATE_TEST_SUITE_P(Policy, LoaderOneError, ::testing::ValuesIn(kOneError),
                         [](const ::testing::TestParamInfo<OneError>& p) { return p.param.name; });

TEST_F(LoaderTest, DuplicateWorkerName) {
  std::string t = replace(kValid, "\"name\": \"counter\"", "\"name\": \"asker\"");
  // Reported at the second definition, naming the first.
  auto p = load(t);
  ASSERT_FALSE(p);
  ASSERT_EQ(p.error().size(), 2u) << format_diagnostics(p.error());
  EXPECT_EQ(p.error()[0].to_string(),
            pos_of(file, t, "\"asker\", \"program\"") + ": error: duplicate worker name \"asker\" (first defined at " +
                pos_of(file, t, "\"asker\"") + ")");
  // ... and the channel's server "counter" no longer exists.
  EXPECT_TRUE(has_diag(p.error(), pos_of(file, t, "\"counter\""), "unknown worker \"counter\""));
}

TEST_F(LoaderTest, DuplicateGrantName) {
  std::string t = replace(kValid, "\"name\": \"log\"", "\"name\": \"texts\"");
  auto p = load(t);
  ASSERT_FALSE(p);
  std::string second = pos_of(file, t, "\"texts\", \"api\": \"log.Sink\"");
  EXPECT_TRUE(has_diag(p.error(), second, "duplicate grant name \"texts\" in worker \"asker\""))
      << format_diagnostics(p.error());
  EXPECT_EQ(p.error().size(), 1u);
}

TEST_F(LoaderTest, MissingProgram) {
  std::string t = replace(kValid, "\"${bin}/wc\" }", "\"${bin}/nothere\" }");
  expect_one(t, "\"${bin}/nothere\"", "program " + bin + "/nothere does not exist");
}

TEST_F(LoaderTest, MalformedSeccompProfileNamesItsOwnPosition) {
  std::string profile = dir.write("profile.json", "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [ { \"names\": [\"read\"] } ]\n}\n");
  std::string t = replace(kValid, "\"limits\":", "\"sandbox\": { \"seccomp_profile\": \"" + profile + "\" }, \"limits\":");
  auto p = load(t);
  ASSERT_FALSE(p);
  EXPECT_TRUE(has_diag(p.error(), profile + ":3:17", "syscalls entry without \"action\""))
      << format_diagnostics(p.error());
  EXPECT_TRUE(has_diag(p.error(), profile + ":3:17", "named at " + pos_of(file, t, "\"" + profile)))
      << format_diagnostics(p.error());
  // Syntax errors in the profile too.
  std::string broken = dir.write("broken.json", "{ \"defaultAction\": }");
  t = replace(kValid, "\"limits\":", "\"sandbox\": { \"seccomp_profile\": \"" + broken + "\" }, \"limits\":");
  p = load(t);
  ASSERT_FALSE(p);
  EXPECT_TRUE(has_diag(p.error(), broken + ":1:20", "expected a value")) << format_diagnostics(p.error());
}

TEST_F(LoaderTest, RequireCgroupIsABoolean) {
  auto p = load(replace(kValid, "\"limits\":", "\"sandbox\": { \"require_cgroup\": true }, \"limits\":"));
  ASSERT_TRUE(p) << format_diagnostics(p.error());
  EXPECT_TRUE(p->workers[0].sandbox.require_cgroup);
  auto absent = load(kValid);
  ASSERT_TRUE(absent) << format_diagnostics(absent.error());
  EXPECT_FALSE(absent->workers[0].sandbox.require_cgroup);
  auto wrong = load(replace(kValid, "\"limits\":", "\"sandbox\": { \"require_cgroup\": \"yes\" }, \"limits\":"));
  ASSERT_FALSE(wrong);
}

TEST_F(LoaderTest, PoolIsACountUpTo64) {
  auto p = load(replace(kValid, "\"limits\":", "\"pool\": 4, \"limits\":"));
  ASSERT_TRUE(p) << format_diagnostics(p.error());
  EXPECT_EQ(p->workers[0].pool, 4u);
  EXPECT_EQ(p->workers[1].pool, 0u);  // absent: none
  expect_one(replace(kValid, "\"limits\":", "\"pool\": 65, \"limits\":"), "65",
             "pool = 65 is out of range; allowed 0..64");
  expect_one(replace(kValid, "\"limits\":", "\"pool\": \"many\", \"limits\":"), "\"many\"",
             "pool");
  expect_one(replace(kValid, "\"limits\":", "\"pool\": -1, \"limits\":"), "-1", "pool");
}

TEST_F(LoaderTest, SeccompProfileImportsAllowedNames) {
  std::string profile = dir.write("profile.json", R"({"defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [{"names": ["getrandom", "futex"], "action": "SCMP_ACT_ALLOW"}]})");
  std::string t = replace(kValid, "\"limits\":", "\"sandbox\": { \"seccomp_profile\": \"" + profile +
                                                    "\", \"allow_syscalls\": [\"uname\"] }, \"limits\":");
  auto p = load(t);
  ASSERT_TRUE(p) << format_diagnostics(p.error());
  EXPECT_EQ(p->workers[0].sandbox.extra_syscalls(), (std::vector<std::string>{"futex", "getrandom", "uname"}));
}

TEST_F(LoaderTest, DollarDollarIsALiteralDollar) {
  std::string t = replace(kValid, "\"${bin}/wc\" }", "\"${bin}/wc\", \"args\": [\"$${HOME}\", \"a$b\"] }");
  auto p = load(t);
  ASSERT_TRUE(p) << format_diagnostics(p.error());
  EXPECT_EQ(p->workers[1].args, (std::vector<std::string>{"${HOME}", "a$b"}));
}

// Every model value loads from its own name: the names agree with the
// schema's (the values are static_asserted in policy/model.cc).
TEST_F(LoaderTest, EachBadMessageActionLoadsFromItsName) {
  for (BadMessageAction a :
       {BadMessageAction::kReplyError, BadMessageAction::kClosePort, BadMessageAction::kKill}) {
    const std::string name(to_string(a));
    auto p = load(replace(kValid, "\"limits\":", "\"on_bad_message\": \"" + name + "\", \"limits\":"));
    ASSERT_TRUE(p) << name << ": " << format_diagnostics(p.error());
    EXPECT_EQ(p->workers[0].on_bad_message, a) << name;
  }
}

TEST_F(LoaderTest, EachViolationFloodActionAndOutputModeLoadsFromItsName) {
  auto p = load(kValid);
  ASSERT_TRUE(p) << format_diagnostics(p.error());
  EXPECT_EQ(p->workers[0].on_violation_flood, ViolationFloodAction::kKill);  // the defaults
  EXPECT_EQ(p->workers[0].output, OutputMode::kSupervisor);
  for (ViolationFloodAction a : {ViolationFloodAction::kKill, ViolationFloodAction::kReport}) {
    const std::string name(to_string(a));
    auto q = load(replace(kValid, "\"limits\":", "\"on_violation_flood\": \"" + name + "\", \"limits\":"));
    ASSERT_TRUE(q) << name << ": " << format_diagnostics(q.error());
    EXPECT_EQ(q->workers[0].on_violation_flood, a) << name;
  }
  for (OutputMode m : {OutputMode::kSupervisor, OutputMode::kInherit, OutputMode::kDiscard}) {
    const std::string name(to_string(m));
    auto q = load(replace(kValid, "\"limits\":", "\"output\": \"" + name + "\", \"limits\":"));
    ASSERT_TRUE(q) << name << ": " << format_diagnostics(q.error());
    EXPECT_EQ(q->workers[0].output, m) << name;
  }
  auto bad = load(replace(kValid, "\"limits\":", "\"output\": \"terminal\", \"limits\":"));
  ASSERT_FALSE(bad);
  EXPECT_NE(format_diagnostics(bad.error()).find("output must be one of: supervisor, inherit, discard"),
            std::string::npos)
      << format_diagnostics(bad.error());
}

TEST_F(LoaderTest, SyntaxErrorIsTheOnlyErrorWithItsPosition) {
  std::string t = replace(kValid, "\"log.Sink\",", "\"log.Sink\" ");
  auto p = load(t);
  ASSERT_FALSE(p);
  ASSERT_EQ(p.error().size(), 1u);
  EXPECT_EQ(p.error()[0].where.to_string(), pos_of(file, t, "\"rights\": [\"*\"]"));
}

TEST_F(LoaderTest, SeveralErrorsAreAllReportedInFileOrder) {
  std::string t(kValid);
  t = replace(t, "\"limits\": {", "\"limts\": {");              // unknown field
  t = replace(t, "\"Open\", \"List\"", "\"Open\", \"Lst\"");     // method not in API
  t = replace(t, "\"log.Sink\"", "\"log.Snk\"");                  // unknown API
  t = replace(t, "\"name\": \"counter\"", "\"name\": \"asker\"");  // duplicate worker
  t = replace(t, "\"client\": \"asker\"", "\"client\": \"nobody\"");  // unknown worker
  auto p = load(t);
  ASSERT_FALSE(p);
  const Diagnostics& d = p.error();
  ASSERT_EQ(d.size(), 6u) << format_diagnostics(d);
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"limts\""), "unknown field"));
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"Lst\""), "not in fs.Directory"));
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"log.Snk\""), "unknown API"));
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"asker\", \"program\""), "duplicate worker name"));
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"nobody\""), "unknown worker \"nobody\""));
  // The channel now connects "asker" (the duplicate name) to... "counter" is gone.
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"counter\""), "unknown worker \"counter\""));
  for (std::size_t i = 1; i < d.size(); ++i) {
    EXPECT_LE(d[i - 1].where.line, d[i].where.line) << format_diagnostics(d);
  }
}

// A duplicate key does not hide what follows it: the first value is kept,
// and the errors after it are all reported.
TEST_F(LoaderTest, ErrorsAfterADuplicateKeyAreReported) {
  std::string t = replace(kValid, "\"name\": \"asker\",", "\"name\": \"asker\", \"name\": \"again\",");
  t = replace(t, "\"log.Sink\"", "\"log.Snk\"");
  t = replace(t, "\"Open\", \"List\"", "\"Open\", \"Open\"");
  auto p = load(t);
  ASSERT_FALSE(p);
  const Diagnostics& d = p.error();
  EXPECT_EQ(d.size(), 3u) << format_diagnostics(d);
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"name\": \"again\""), "duplicate key \"name\" (first at line 5)"))
      << format_diagnostics(d);
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"Open\"]"), "right \"Open\" is listed twice"));
  EXPECT_TRUE(has_diag(d, pos_of(file, t, "\"log.Snk\""), "unknown API"));
}

// The sandbox's own checks run on every worker that passed the policy's:
// an argument list the launcher would refuse is refused by the check.
TEST_F(LoaderTest, WhatTheSandboxRefusesIsAPolicyError) {
  std::string big(300 * 1024, 'a');
  std::string t = replace(kValid, "\"program\": \"${bin}/wc\",", "\"program\": \"${bin}/wc\", \"args\": [\"" + big + "\"],");
  auto p = load(t);
  ASSERT_FALSE(p);
  ASSERT_EQ(p.error().size(), 1u) << format_diagnostics(p.error());
  EXPECT_TRUE(has_diag(p.error(), pos_of(file, t, "\"asker\""),
                       "the sandbox would refuse worker \"asker\": argv+env: more than"))
      << format_diagnostics(p.error());
}

TEST_F(LoaderTest, FileErrorsAndPolicyDir) {
  capsa::testing::FdLeakCheck fds;
  auto missing = load_policy_file(dir.path() + "/none.json", builtin_api_catalog(), options());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error()[0].message.find("cannot read policy " + dir.path() + "/none.json"), std::string::npos);
  // ${policy_dir} is the absolute directory of the file.
  std::string t = replace(kValid, "\"${texts}\"", "\"${policy_dir}/texts\"");
  std::string path = dir.write("p.json", t);
  auto p = load_policy_file(path, builtin_api_catalog(), options());
  ASSERT_TRUE(p) << format_diagnostics(p.error());
  EXPECT_EQ(std::get<std::string>(*p->workers[0].grants[0].constraint("root")), dir.path() + "/texts");
  EXPECT_EQ(fds.leaked(), 0);
}

}  // namespace
}  // namespace capsa::policy
