#include "sandbox/launcher_protocol.h"

#include <gtest/gtest.h>

#include <thread>

#include "sandbox/seccomp_policy.h"
#include "sandbox/testdata/test_limits.h"

namespace capsa::sandbox::detail {
namespace {

Spec sample() {
  Limits limits = testing::sandbox_test_limits();
  limits.cpu_seconds = 7;  // distinct values, so a swapped pair would show
  limits.max_processes = 5;
  auto s = SpecBuilder().name("w").program("/bin/echo").args({"echo", "hi"}).env("K", "V")
               .allow_syscall("socket").limits(limits).build();
  EXPECT_TRUE(s);
  return *s;
}

CompiledFilter sample_filter() {
  auto f = compile_filter({"socket"});
  EXPECT_TRUE(f) << f.error().to_string();
  return f ? *f : CompiledFilter{};
}

bool same_program(const std::vector<sock_filter>& a, const std::vector<sock_filter>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].code != b[i].code || a[i].jt != b[i].jt || a[i].jf != b[i].jf || a[i].k != b[i].k) {
      return false;
    }
  }
  return true;
}

// Offset of the filter length: magic, version, 5 limits, action, program
// (always "/.capsa/program"), argv ("echo", "hi"), env ("K=V").
std::size_t filter_offset() {
  return 4 + 4 + 5 * 8 + 4 + (4 + 15) + (4 + 4 + 4 + 4 + 2) + (4 + 4 + 3);
}

TEST(LauncherConfig, RoundTrips) {
  CompiledFilter filter = sample_filter();
  auto bytes = encode_config(sample(), filter);
  auto c = decode_config(bytes);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->program, "/.capsa/program");  // the bound copy, not the host path
  EXPECT_EQ(c->argv, (std::vector<std::string>{"echo", "hi"}));
  EXPECT_EQ(c->env, std::vector<std::string>{"K=V"});
  const Limits sent = sample().limits;
  EXPECT_EQ(c->limits.address_space_bytes, sent.address_space_bytes);
  EXPECT_EQ(c->limits.cpu_seconds, 7u);
  EXPECT_EQ(c->limits.max_processes, 5u);
  EXPECT_EQ(c->limits.max_open_files, sent.max_open_files);
  EXPECT_EQ(c->limits.max_file_size_bytes, sent.max_file_size_bytes);
  EXPECT_TRUE(same_program(c->filter.program, filter.program));
  EXPECT_EQ(c->filter.exec_hi, filter.exec_hi);
  EXPECT_EQ(c->filter.exec_lo, filter.exec_lo);
}

TEST(LauncherConfig, RefusesEveryTruncationAndTrailingBytes) {
  auto bytes = encode_config(sample(), sample_filter());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto c = decode_config(std::span(bytes).first(n));
    EXPECT_FALSE(c) << "accepted a config truncated to " << n << " bytes";
  }
  bytes.push_back(0);
  EXPECT_FALSE(decode_config(bytes));
}

TEST(LauncherConfig, RefusesHugeCountsAndBadAction) {
  auto bytes = encode_config(sample(), sample_filter());
  // The argv count sits after magic, version, 5 limits, action and program.
  std::size_t argv_count = 4 + 4 + 5 * 8 + 4 + 4 + std::string("/.capsa/program").size();
  auto huge = bytes;
  huge[argv_count + 3] = 0x7f;
  EXPECT_FALSE(decode_config(huge));
  auto bad_action = bytes;
  bad_action[4 + 4 + 5 * 8] = 9;
  EXPECT_FALSE(decode_config(bad_action));
}

TEST(LauncherConfig, RefusesFilterLengthsOutsideTheKernelLimitAndBadIndices) {
  CompiledFilter filter = sample_filter();
  auto bytes = encode_config(sample(), filter);
  const std::size_t at = filter_offset();
  ASSERT_EQ(static_cast<std::size_t>(bytes[at] | bytes[at + 1] << 8), filter.program.size());
  auto too_long = bytes;
  too_long[at] = 0x01;
  too_long[at + 1] = 0x10;  // 4097 > BPF_MAXINSNS
  too_long[at + 2] = too_long[at + 3] = 0;
  EXPECT_FALSE(decode_config(too_long));
  // The two indices are the 8 bytes before the pooled flag (the last 4).
  auto out_of_range = bytes;
  out_of_range[bytes.size() - 12] = 0xfe;
  out_of_range[bytes.size() - 11] = 0xff;
  EXPECT_FALSE(decode_config(out_of_range));
  auto same = bytes;
  for (std::size_t i = 0; i < 4; ++i) same[bytes.size() - 8 + i] = same[bytes.size() - 12 + i];
  EXPECT_FALSE(decode_config(same));
}

TEST(LauncherConfig, CarriesThePooledFlagAndRefusesAnyOtherValue) {
  auto cold = decode_config(encode_config(sample(), sample_filter()));
  ASSERT_TRUE(cold) << cold.error().to_string();
  EXPECT_FALSE(cold->pooled);
  auto bytes = encode_config(sample(), sample_filter(), /*pooled=*/true);
  auto pooled = decode_config(bytes);
  ASSERT_TRUE(pooled) << pooled.error().to_string();
  EXPECT_TRUE(pooled->pooled);
  bytes[bytes.size() - 4] = 2;
  auto bad = decode_config(bytes);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "config: bad pooled flag");
}

TEST(CompiledFilter, PinsTheExecveRuleExactlyOnce) {
  CompiledFilter filter = sample_filter();
  ASSERT_NE(filter.exec_hi, kNoExecRule);
  ASSERT_NE(filter.exec_lo, kNoExecRule);
  auto before = filter.program;
  const std::uint64_t pointer = 0x00007f12'3456'7898ull;
  ASSERT_TRUE(pin_exec_pointer(filter, pointer));
  EXPECT_EQ(filter.program[filter.exec_hi].k, 0x00007f12u);
  EXPECT_EQ(filter.program[filter.exec_lo].k, 0x34567898u);
  int changed = 0;
  for (std::size_t i = 0; i < before.size(); ++i) {
    changed += before[i].k != filter.program[i].k || before[i].code != filter.program[i].code;
  }
  EXPECT_EQ(changed, 2);
  // A second pin finds no sentinel: refused, nothing changes.
  auto pinned = filter.program;
  EXPECT_FALSE(pin_exec_pointer(filter, 0x1000));
  EXPECT_EQ(filter.program[filter.exec_hi].k, pinned[filter.exec_hi].k);
  EXPECT_EQ(filter.program[filter.exec_lo].k, pinned[filter.exec_lo].k);
}

TEST(CompiledFilter, IndicesThatDoNotNameTheRuleAreRefused) {
  CompiledFilter filter = sample_filter();
  CompiledFilter swapped = filter;
  std::swap(swapped.exec_hi, swapped.exec_lo);
  EXPECT_FALSE(pin_exec_pointer(swapped, 0x1000));
  CompiledFilter elsewhere = filter;
  elsewhere.exec_hi = 0;  // the arch check, not our rule
  EXPECT_FALSE(pin_exec_pointer(elsewhere, 0x1000));
  EXPECT_TRUE(same_program(elsewhere.program, filter.program));
}

TEST(CompiledFilter, UnconditionalExecveHasNoRuleToPin) {
  auto f = compile_filter({"execve"});
  ASSERT_TRUE(f) << f.error().to_string();
  EXPECT_EQ(f->exec_hi, kNoExecRule);
  EXPECT_EQ(f->exec_lo, kNoExecRule);
  EXPECT_TRUE(pin_exec_pointer(*f, 0x1000));
}

TEST(CompiledFilter, CacheSharesOneProgramPerSetRegardlessOfOrder) {
  auto a = cached_filter({"socket", "bind"});
  auto b = cached_filter({"bind", "socket", "bind"});
  auto c = cached_filter({"socket"});
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), c->get());
  EXPECT_NE((*a)->program.size(), 0u);
}

TEST(CompiledFilter, CacheIsSafeFromManyThreads) {
  // Sets no other test uses, so the first compile happens here, raced.
  const std::vector<std::vector<std::string>> sets = {{"getxattr", "listxattr"}, {"getxattr"}};
  std::vector<const CompiledFilter*> got(8, nullptr);
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < got.size(); ++i) {
      threads.emplace_back([&, i] {
        auto f = cached_filter(sets[i % 2]);
        if (f) got[i] = f->get();
      });
    }
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NE(got[i], nullptr) << i;
    EXPECT_EQ(got[i], got[i % 2]) << "one program per set, whoever compiled it";
  }
  EXPECT_NE(got[0], got[1]);
}

}  // namespace
}  // namespace capsa::sandbox::detail
