// The metrics text (metrics.h) parsed strictly (metrics_test_util.h): every
// line, every value, the escapes, the histogram's buckets.
#include "supervisor/metrics.h"

#include <chrono>

#include <gtest/gtest.h>

#include "supervisor/metrics_test_util.h"

namespace capsa::supervisor {
namespace {

using namespace std::chrono_literals;
using testing::ParsedMetrics;
using testing::parse_metrics;

MetricsSnapshot sample_snapshot() {
  MetricsSnapshot s;
  s.workers.push_back({"alpha", true, 12, 3, 1, 2, 4, 4096});
  // Not a name a policy allows; escaped all the same.
  s.workers.push_back({"b\\e\"t\na\rx", false, 0, 0, 0, 0, 0, 0});
  s.workers_running = 1;
  s.live_grants = 4;
  s.channels = 2;
  MethodLatency open{"fs.Directory", "Open", {}};
  open.histogram.observe(5us);     // <= 10 us
  open.histogram.observe(10us);    // <= 10 us (le is inclusive)
  open.histogram.observe(10001ns); // <= 25 us
  open.histogram.observe(3ms);     // <= 5 ms
  open.histogram.observe(2s);      // +Inf only
  s.latency.push_back(open);
  MethodLatency write{"log.Sink", "Write", {}};
  write.histogram.observe(1s);  // <= 1 s exactly
  s.latency.push_back(write);
  return s;
}

TEST(MetricsText, EveryLineParsesWithItsHelpTypeAndExactValues) {
  const std::string text = render_metrics(sample_snapshot());
  ParsedMetrics m;
  parse_metrics(text, m);
  ASSERT_FALSE(::testing::Test::HasFailure()) << text;

  EXPECT_EQ(m.at("capsa_worker_running{worker=\"alpha\"}"), 1);
  EXPECT_EQ(m.at("capsa_worker_calls_total{worker=\"alpha\"}"), 12);
  EXPECT_EQ(m.at("capsa_worker_denials_total{worker=\"alpha\"}"), 3);
  EXPECT_EQ(m.at("capsa_worker_bad_messages_total{worker=\"alpha\"}"), 1);
  EXPECT_EQ(m.at("capsa_worker_seccomp_violations_total{worker=\"alpha\"}"), 2);
  EXPECT_EQ(m.at("capsa_worker_live_grants{worker=\"alpha\"}"), 4);
  EXPECT_EQ(m.at("capsa_worker_payload_bytes_total{worker=\"alpha\"}"), 4096);
  // The parser unescaped \\, \" and \n back; the \r became '?'.
  EXPECT_EQ(m.at("capsa_worker_running{worker=\"b\\e\"t\na?x\"}"), 0);
  EXPECT_NE(text.find("worker=\"b\\\\e\\\"t\\na?x\""), std::string::npos) << text;
  EXPECT_EQ(m.at("capsa_workers_running"), 1);
  EXPECT_EQ(m.at("capsa_live_grants"), 4);
  EXPECT_EQ(m.at("capsa_channels"), 2);

  EXPECT_EQ(m.types.at("capsa_worker_calls_total"), "counter");
  EXPECT_EQ(m.types.at("capsa_worker_live_grants"), "gauge");
  EXPECT_EQ(m.types.at("capsa_call_duration_seconds"), "histogram");
  EXPECT_EQ(m.types.size(), 11u);
  EXPECT_EQ(m.helps.size(), 11u);

  // Keys list labels sorted by name (metrics_test_util.h): le before method.
  const std::string open = "interface=\"fs.Directory\",method=\"Open\"";
  auto bucket = [&](const std::string& labels, const std::string& le) {
    const auto comma = labels.find(',');
    return m.at("capsa_call_duration_seconds_bucket{" + labels.substr(0, comma) + ",le=\"" + le +
                "\"" + labels.substr(comma) + "}");
  };
  EXPECT_EQ(bucket(open, "0.00001"), 2);
  EXPECT_EQ(bucket(open, "0.000025"), 3);
  EXPECT_EQ(bucket(open, "0.0025"), 3);
  EXPECT_EQ(bucket(open, "0.005"), 4);
  EXPECT_EQ(bucket(open, "1"), 4);
  EXPECT_EQ(bucket(open, "+Inf"), 5);
  EXPECT_EQ(m.at("capsa_call_duration_seconds_count{" + open + "}"), 5);
  EXPECT_DOUBLE_EQ(m.at("capsa_call_duration_seconds_sum{" + open + "}"), 2.003025001);
  const std::string write = "interface=\"log.Sink\",method=\"Write\"";
  EXPECT_EQ(bucket(write, "0.5"), 0);
  EXPECT_EQ(bucket(write, "1"), 1);
  EXPECT_EQ(m.at("capsa_call_duration_seconds_count{" + write + "}"), 1);
  EXPECT_EQ(m.at("capsa_call_duration_seconds_sum{" + write + "}"), 1);
  // 11 families of HELP + TYPE, 7 x 2 worker samples, 3 gauges, 2 x (17
  // buckets + sum + count).
  EXPECT_EQ(m.lines, 22u + 14u + 3u + 38u);
}

TEST(MetricsText, AnEmptySupervisorStillDescribesEveryFamily) {
  ParsedMetrics m;
  parse_metrics(render_metrics(MetricsSnapshot{}), m);
  ASSERT_FALSE(::testing::Test::HasFailure());
  EXPECT_EQ(m.types.size(), 11u);
  EXPECT_EQ(m.samples.size(), 3u);  // the three supervisor-wide gauges, 0
  EXPECT_EQ(m.at("capsa_live_grants"), 0);
}

TEST(MetricsText, TheHistogramBoundsAreInclusiveAndOverflowGoesToInfOnly) {
  LatencyHistogram h;
  h.observe(0ns);
  h.observe(-5ns);  // a clock that went backwards counts as 0
  h.observe(1000000001ns);
  EXPECT_EQ(h.counts[0], 2u);
  EXPECT_EQ(h.counts.back(), 1u);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.sum_ns, 1000000001u);
}

TEST(MetricsText, LabelEscapes) {
  EXPECT_EQ(escape_label_value("plain-name_1.x"), "plain-name_1.x");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value(std::string_view("\0\x7f\t", 3)), "???");
}

}  // namespace
}  // namespace capsa::supervisor
