// The example plugins as real processes, each with its bootstrap port on
// fd 3 served by a PluginHost (a real capsa.Bootstrap and real services
// over sockets). No sandbox and no supervisor here: what those add (the
// filesystem view, seccomp, the audit log, killing on a bad message) is
// checked by the end-to-end tests under `capsa run`.
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "capabilities/interface_registry.h"
#include "tests/support/temp_dir.h"
#include "workers/examples/asker/texts.h"
#include "workers/examples/testdata/plugin_checks.h"
#include "workers/examples/testdata/plugin_host.h"
#include "workers/examples/wordcount/count.h"

namespace capsa::examples::testing {
namespace {

std::string plugin(const char* name) { return std::string(CAPSA_PLUGIN_DIR) + "/" + name; }

int exit_code(const PluginResult& r) { return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1; }

PluginResult run(PluginHost& host, const char* name, const std::vector<std::string>& args = {}) {
  auto p = start_plugin(plugin(name), args, host.start());
  if (!p) {
    ADD_FAILURE() << "cannot start " << name << ": " << p.error().to_string();
    return {};
  }
  return finish_plugin(std::move(*p));
}

using capsa::testing::TempDir;

// Rights bit of a method ordinal (capsa_bootstrap.fbs): fs.Directory is
// Open 0, OpenFile 1, List 2, Stat 3.
constexpr Rights kOpenFile = right_of(1);
constexpr Rights kList = right_of(2);
constexpr Rights kStat = right_of(3);

TEST(WordcountPlugin, LogsTheExpectedReportForTheSampleTexts) {
  PluginHost host;
  host.add_directory("texts", CAPSA_EXAMPLE_TEXTS_DIR, kOpenFile | kList | kStat);
  host.add_log("log");
  auto r = run(host, "wordcount", {"--texts", "texts"});
  EXPECT_EQ(exit_code(r), 0) << r.err;
  EXPECT_EQ(r.err, "");

  std::ifstream in(std::filesystem::path(CAPSA_EXAMPLE_TEXTS_DIR) / "expected_top10.out");
  std::stringstream expected;
  expected << in.rdbuf();
  ASSERT_FALSE(expected.str().empty());
  EXPECT_EQ(host.log_lines(), split_lines(expected.str()));
  EXPECT_EQ(host.refusals(), Lines{});
}

TEST(WordcountPlugin, CountsOnlyRegularTxtFiles) {
  TempDir dir;
  dir.write("a.txt", "Ports, not paths. Ports!");
  dir.write("empty.txt", "");
  dir.write("notes.md", "paths paths paths paths");     // not .txt
  dir.write("b.txt.bak", "paths paths paths paths");    // not .txt either
  dir.mkdir("sub.txt");                                   // a directory
  std::filesystem::create_symlink("a.txt", dir.file("link.txt"));  // listed as a symlink
  PluginHost host;
  host.add_directory("docs", dir.path());
  host.add_log("log");
  auto r = run(host, "wordcount", {"--texts", "docs"});
  EXPECT_EQ(exit_code(r), 0) << r.err;
  EXPECT_EQ(host.log_lines(), (Lines{"top 1: ports 2", "top 2: not 1", "top 3: paths 1",
                                     "summary: files 2, words 4, distinct 3"}));
}

TEST(WordcountPlugin, MissingGrantIsAClearErrorAndExitOne) {
  PluginHost host;
  host.add_log("log");
  auto r = run(host, "wordcount", {"--texts", "texts"});
  EXPECT_EQ(exit_code(r), 1);
  EXPECT_NE(r.err.find("wordcount: grant \"texts\": not found"), std::string::npos) << r.err;
  EXPECT_EQ(host.log_lines(), Lines{});
  EXPECT_EQ(host.refusals(), Lines{"not found: texts"});
}

TEST(WordcountPlugin, GrantWithoutListIsRefusedBeforeAnythingIsSent) {
  PluginHost host;
  host.add_directory("texts", CAPSA_EXAMPLE_TEXTS_DIR, kOpenFile);
  host.add_log("log");
  auto r = run(host, "wordcount", {"--texts", "texts"});
  EXPECT_EQ(exit_code(r), 1);
  EXPECT_NE(r.err.find("wordcount: List of \"texts\": denied"), std::string::npos) << r.err;
  // The SDK refused locally: the service never saw a List.
  EXPECT_EQ(host.refusals(), Lines{});
}

TEST(WordcountPlugin, BadArgumentsExitTwo) {
  PluginHost host;
  auto r = run(host, "wordcount", {"--text", "texts"});
  EXPECT_EQ(exit_code(r), 2);
  EXPECT_NE(r.err.find("usage: wordcount --texts GRANT"), std::string::npos) << r.err;
}

std::string stats_text(const TextStats& s) {
  return std::to_string(s.words) + " words, " + std::to_string(s.lines) + " lines, " +
         std::to_string(s.bytes) + " bytes";
}

// asker and counter, each with its own bootstrap, joined by one channel
// whose ends they Get as "wordcount" (examples/pair.json).
TEST(PairPlugins, AskerAndCounterTalkOverTheirChannel) {
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  const auto client_inode = channel->first.inode();
  const auto server_inode = channel->second.inode();
  auto asker_host = std::make_unique<PluginHost>();
  asker_host->add_log("log");
  asker_host->add_channel_end("wordcount", "demo.WordCount", std::move(channel->first));
  PluginHost counter_host;
  counter_host.add_log("log");
  counter_host.add_channel_end("wordcount", "demo.WordCount", std::move(channel->second));

  auto counter = start_plugin(plugin("counter"), {}, counter_host.start());
  ASSERT_TRUE(counter) << counter.error().to_string();
  auto asker = start_plugin(plugin("asker"), {}, asker_host->start());
  ASSERT_TRUE(asker) << asker.error().to_string();
  auto asker_result = finish_plugin(std::move(*asker));
  // Closes the asker's channel end if it never took it, so the counter
  // cannot wait forever when the asker failed.
  auto asker_log = asker_host->log_lines();
  asker_host.reset();
  auto counter_result = finish_plugin(std::move(*counter));

  EXPECT_EQ(exit_code(asker_result), 0) << asker_result.err;
  EXPECT_EQ(exit_code(counter_result), 0) << counter_result.err;

  namespace texts = capsa::examples::asker;
  const auto s1 = text_stats(texts::kShortText);
  const auto s2 = text_stats(texts::kPoem);
  const std::string big = texts::blob_text();
  const auto s3 = text_stats(big);
  ASSERT_GT(big.size(), 64u * 1024) << "the blob text must not fit one message";
  EXPECT_EQ(asker_log,
            (Lines{"\"wordcount\" came from the bootstrap Get as a demo.WordCount port (socket "
                   "inode " + std::to_string(client_inode) +
                       "); the Count calls below go over that port, not through the bootstrap "
                       "port",
                   "answer 1 (inline text, " + std::to_string(s1.bytes) +
                       " bytes sent): " + stats_text(s1),
                   "answer 2 (inline text, " + std::to_string(s2.bytes) +
                       " bytes sent): " + stats_text(s2),
                   "answer 3 (sealed blob, " + std::to_string(s3.bytes) +
                       " bytes sent): " + stats_text(s3),
                   "done: 3 answers; closing the channel"}));
  EXPECT_EQ(counter_host.log_lines(),
            (Lines{"serving demo.WordCount on the \"wordcount\" port from the bootstrap Get "
                   "(socket inode " + std::to_string(server_inode) +
                       "); requests arrive on that port, not through the bootstrap port",
                   "served Count #1 (inline text): " + stats_text(s1),
                   "served Count #2 (inline text): " + stats_text(s2),
                   "served Count #3 (sealed blob): " + stats_text(s3),
                   "the asker closed the channel after 3 requests; exiting"}));
  // Hand-checked, so a wrong text_stats cannot make both sides agree.
  EXPECT_EQ(s1, (TextStats{11, 1, 73}));
  EXPECT_EQ(s3.words, 12u * texts::kBlobLines);
  EXPECT_EQ(s3.lines, texts::kBlobLines);
}

TEST(PairPlugins, CounterExitsWhenTheAskerNeverCalls) {
  auto channel = make_channel();
  ASSERT_TRUE(channel);
  PluginHost counter_host;
  counter_host.add_log("log");
  counter_host.add_channel_end("wordcount", "demo.WordCount", std::move(channel->second));
  auto counter = start_plugin(plugin("counter"), {}, counter_host.start());
  ASSERT_TRUE(counter);
  channel->first = Port();  // the other side goes away without a word
  auto r = finish_plugin(std::move(*counter));
  EXPECT_EQ(exit_code(r), 0) << r.err;
  auto log = counter_host.log_lines();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1], "the asker closed the channel after 0 requests; exiting");
}

// Outside the sandbox, steps a and b may well succeed (the host has an
// /etc/passwd and a network): only their presence is checked here. Steps
// c, d and e depend on capabilities alone and must come out exactly so.
TEST(HostilePlugin, EveryAttemptIsReportedAndRefusedByTheServingSide) {
  PluginHost host;
  add_hostile_grants(host, CAPSA_EXAMPLE_TEXTS_DIR);
  auto r = run(host, "hostile");
  EXPECT_EQ(exit_code(r), 0) << r.err;  // this host closes the port, it does not kill
  auto out = split_lines(r.out);
  expect_hostile_capability_steps(out);
  ASSERT_EQ(out.size(), 7u) << r.out;
  EXPECT_TRUE(out[0].starts_with("hostile: a read /etc/passwd: ")) << out[0];
  EXPECT_TRUE(out[1].starts_with("hostile: b socket(AF_INET, SOCK_STREAM): ")) << out[1];
  EXPECT_EQ(out[3], "hostile: d List on \"texts\" through the SDK: refused (denied), nothing sent");
  EXPECT_EQ(out[5],
            "hostile: e malformed message on a log port: sending (on_bad_message decides: "
            "under \"kill\" this is the last line)");
  // The same lines went to the log, without the prefix.
  auto log = host.log_lines();
  ASSERT_EQ(log.size(), out.size());
  for (std::size_t i = 0; i < log.size(); ++i) EXPECT_EQ("hostile: " + log[i], out[i]);
  // What the serving side saw: the ungranted name, the List outside the
  // rights (only the bypass reached it), the malformed message.
  EXPECT_EQ(host.refusals(), (Lines{"not found: secrets", "denied: texts", "bad message: log"}));
}

TEST(HostilePlugin, WithoutATextsGrantStepDIsSkipped) {
  PluginHost host;
  host.add_log("log");
  auto r = run(host, "hostile");
  EXPECT_EQ(exit_code(r), 0) << r.err;
  auto out = split_lines(r.out);
  ASSERT_GE(out.size(), 4u) << r.out;
  EXPECT_EQ(out[3], "hostile: d List on \"texts\": skipped: Get \"texts\" refused (not found)");
}

}  // namespace
}  // namespace capsa::examples::testing
