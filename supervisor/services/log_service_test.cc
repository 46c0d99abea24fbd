// log.Sink: the sanitizer on its own (every class of dangerous input), then
// Write through the real supervisor: lines arrive attributed and sanitized
// at SupervisorOptions::log_output, and bad writes are refused with nothing
// logged while the sink keeps serving.
#include "supervisor/services/log_service.h"

#include <gtest/gtest.h>

#include "capabilities/interfaces/builtin.h"
#include "capabilities/interfaces/log_sink.h"
#include "supervisor/services/services_test_util.h"
#include "tests/support/fd_count.h"

namespace capsa::supervisor::services {
namespace {

using namespace capsa::supervisor::services::testing;
using Level = interfaces::log_sink::Level;

const std::string kR = "\xEF\xBF\xBD";  // U+FFFD

TEST(SanitizeLogText, KeepsTextAndTabs) {
  EXPECT_EQ(sanitize_log_text(""), "");
  EXPECT_EQ(sanitize_log_text("plain text, 100% [ok] ~"), "plain text, 100% [ok] ~");
  EXPECT_EQ(sanitize_log_text("a\tb"), "a\tb");
  // Well-formed UTF-8 of every length is kept: é, €, 𝄞, and U+10FFFF.
  const std::string utf8 = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E \xF4\x8F\xBF\xBF";
  EXPECT_EQ(sanitize_log_text(utf8), utf8);
  // Right-to-left text without explicit controls is kept (Hebrew shalom).
  EXPECT_EQ(sanitize_log_text("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D"), "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D");
}

TEST(SanitizeLogText, ReplacesEverythingThatCouldForgeALineOrDriveATerminal) {
  struct Case {
    std::string in;
    std::string out;
  } cases[] = {
      {"line\nfake line", "line" + kR + "fake line"},
      {"a\r[other] forged", "a" + kR + "[other] forged"},
      {"\x1b[2J\x1b]0;title\x07", kR + "[2J" + kR + "]0;title" + kR},
      {std::string("nul\0byte", 8), "nul" + kR + "byte"},
      {"del\x7f", "del" + kR},
      {"\x01\x1f", kR + kR},
      // C1 controls in UTF-8: U+0085 (NEL, a line break) and U+009B (CSI).
      {"a\xC2\x85" "b\xC2\x9B" "31m", "a" + kR + "b" + kR + "31m"},
      // U+2028 / U+2029: line breaks in some viewers.
      {"x\xE2\x80\xA8y\xE2\x80\xA9z", "x" + kR + "y" + kR + "z"},
      // Bidi override and isolate: make the rest of a line read otherwise.
      {"\xE2\x80\xAEgnp.exe", kR + "gnp.exe"},
      {"\xE2\x81\xA6x\xE2\x81\xA9", kR + "x" + kR},
      // A raw C1 byte (CSI for 8-bit terminals) is not UTF-8: replaced.
      {"\x9b" "31m", kR + "31m"},
  };
  for (const auto& c : cases) EXPECT_EQ(sanitize_log_text(c.in), c.out) << c.in;
}

TEST(SanitizeLogText, ReplacesIllFormedUtf8ByteByByte) {
  struct Case {
    std::string in;
    std::string out;
  } cases[] = {
      {"\x80", kR},                           // stray continuation byte
      {"\xC0\xAF", kR + kR},                  // overlong '/'
      {"\xE0\x80\xAF", kR + kR + kR},         // overlong '/', 3 bytes
      {"\xC3", kR},                           // truncated at the end
      {"\xC3" "A", kR + "A"},                 // truncated: the next byte survives
      {"\xE2\x82", kR + kR},                  // truncated 3-byte sequence
      {"\xED\xA0\x80", kR + kR + kR},         // a UTF-16 surrogate
      {"\xF4\x90\x80\x80", kR + kR + kR + kR},  // above U+10FFFF
      {"\xF8\x88\x80\x80\x80", kR + kR + kR + kR + kR},  // 5-byte form
      {"\xFF\xFE", kR + kR},
      // A broken sequence must not swallow a newline after it.
      {"\xE2\x82\n", kR + kR + kR},
  };
  for (const auto& c : cases) EXPECT_EQ(sanitize_log_text(c.in), c.out) << c.in.size();
}

class LogServiceTest : public ServiceTest {
 protected:
  void start_with_log() {
    start([](policy::WorkerBuilder& w) { w.grant("log", "log.Sink").all_rights(); });
  }
};

TEST_F(LogServiceTest, LinesArriveAttributedSanitizedAndInOrder) {
  capsa::testing::FdLeakCheck leaks;
  start_with_log();
  {
    auto sink = worker::LogSink::get(ctx(), "log");
    ASSERT_TRUE(sink) << sink.error().to_string();
    ASSERT_TRUE(sink->write(Level::kInfo, "started\twith a tab"));
    ASSERT_TRUE(sink->write(Level::kWarning, "\x1b[31mred\n[admin] forged line\r"));
    ASSERT_TRUE(sink->write(Level::kError, ""));
    ASSERT_TRUE(sink->write(Level::kDebug, std::string(interfaces::kMaxLogTextBytes, 'x')));
    auto lines = logged();
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0].worker, "w");
    EXPECT_EQ(lines[0].level, LogLevel::kInfo);
    EXPECT_EQ(lines[0].text, "started\twith a tab");
    EXPECT_EQ(lines[1].level, LogLevel::kWarning);
    EXPECT_EQ(lines[1].text, kR + "[31mred" + kR + "[admin] forged line" + kR);
    EXPECT_EQ(lines[2].level, LogLevel::kError);
    EXPECT_EQ(lines[2].text, "");
    EXPECT_EQ(lines[3].level, LogLevel::kDebug);
    EXPECT_EQ(lines[3].text.size(), interfaces::kMaxLogTextBytes);
    for (const auto& l : lines) {
      EXPECT_EQ(l.text.find('\n'), std::string::npos);
      EXPECT_EQ(l.text.find('\x1b'), std::string::npos);
    }
  }
  stop();
  EXPECT_EQ(leaks.leaked(), 0) << capsa::testing::describe_open_fds();
}

TEST_F(LogServiceTest, BadWritesAreRefusedAndNothingIsLogged) {
  start_with_log();
  auto sink = worker::LogSink::get(ctx(), "log");
  ASSERT_TRUE(sink);
  worker::Capability& cap = sink->capability();
  // Raw payloads: the SDK refuses an oversized text before sending.
  auto write_raw = [&](auto&& fill) {
    auto& fbb = cap.payload_builder();
    fill(fbb);
    return cap.call("Write", cap.payload_bytes());
  };
  auto too_long = write_raw([](flatbuffers::FlatBufferBuilder& fbb) {
    interfaces::log_sink::build_write_request(fbb, Level::kInfo,
                                              std::string(interfaces::kMaxLogTextBytes + 1, 'x'));
  });
  EXPECT_TRUE(fails_with(too_long, Errc::kBadMessage, "text is 4097 bytes; the limit is 4096"));
  auto missing = write_raw([](flatbuffers::FlatBufferBuilder& fbb) {
    auto start = fbb.StartTable();
    fbb.AddElement<std::uint8_t>(interfaces::log_sink::kLevelField, 2, 1);
    fbb.Finish(flatbuffers::Offset<flatbuffers::Table>(fbb.EndTable(start)));
  });
  EXPECT_TRUE(fails_with(missing, Errc::kBadMessage, "text is missing"));
  auto bad_level = write_raw([](flatbuffers::FlatBufferBuilder& fbb) {
    interfaces::log_sink::build_write_request(fbb, static_cast<Level>(9), "hi");
  });
  EXPECT_TRUE(fails_with(bad_level, Errc::kBadMessage, "level 9 is not"));
  EXPECT_TRUE(logged().empty());

  // The sink still serves, and the worker was not treated as hostile: a
  // refused write is an answer, not a protocol violation.
  ASSERT_TRUE(sink->write(Level::kInfo, "still here"));
  ASSERT_EQ(logged().size(), 1u);
  EXPECT_EQ(logged()[0].text, "still here");
  auto ws = loop_->on_loop([&] { return sup_->workers(); });
  ASSERT_EQ(ws.size(), 1u);
  EXPECT_TRUE(ws[0].running);
  EXPECT_EQ(ws[0].bad_messages, 0u);
}

TEST_F(LogServiceTest, AnAttenuatedCopyLogsUnderTheSameWorker) {
  start_with_log();
  auto sink = worker::LogSink::get(ctx(), "log");
  ASSERT_TRUE(sink);
  const std::string_view write_only[] = {"Write"};
  auto copy = ctx().attenuate(std::move(sink->capability()), write_only);
  ASSERT_TRUE(copy) << copy.error().to_string();
  auto copy_sink = worker::LogSink::wrap(std::move(*copy));
  ASSERT_TRUE(copy_sink);
  ASSERT_TRUE(copy_sink->write(Level::kInfo, "from the copy"));
  ASSERT_EQ(logged().size(), 1u);
  EXPECT_EQ(logged()[0].worker, "w");
  EXPECT_EQ(logged()[0].text, "from the copy");
}

}  // namespace
}  // namespace capsa::supervisor::services
