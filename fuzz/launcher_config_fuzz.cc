// libFuzzer target: the launcher's configuration parser
// (sandbox/launcher_protocol.h decode_config), the bytes capsa-launcher
// reads from its sealed config memfd before it installs seccomp and execs.
// Asserts, per input:
//   - no crash, no read past the buffer (ASan), no UB;
//   - a refusal is kBadMessage;
//   - an accepted config keeps every promise the launcher relies on: an
//     absolute program, a non-empty argv, no NUL inside any string, a filter
//     of 1..kMaxFilterInstructions instructions, execve rule indices both
//     kNoExecRule or both in range;
//   - pin_exec_pointer() then either refuses and changes nothing, or writes
//     the pointer's two halves into exactly the two indexed instructions.
#include <cstring>
#include <string>
#include <vector>

#include "fuzz/check.h"
#include "sandbox/launcher_protocol.h"

namespace {

using namespace capsa::sandbox::detail;

[[noreturn]] void fail(const char* what) { capsa::fuzz::fail("launcher_config_fuzz", what); }

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

bool same(const std::vector<sock_filter>& a, const std::vector<sock_filter>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(sock_filter)) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto c = decode_config(std::span(data, size));
  if (!c) {
    if (c.error().code != capsa::Errc::kBadMessage) fail("a refusal that is not kBadMessage");
    return 0;
  }
  if (c->program.empty() || c->program.front() != '/' || has_nul(c->program)) fail("bad program");
  if (c->argv.empty()) fail("empty argv");
  for (const auto& s : c->argv) {
    if (has_nul(s)) fail("NUL in argv");
  }
  for (const auto& s : c->env) {
    if (has_nul(s)) fail("NUL in env");
  }
  CompiledFilter& f = c->filter;
  std::size_t n = f.program.size();
  if (n == 0 || n > kMaxFilterInstructions) fail("filter length out of range");
  bool none = f.exec_hi == kNoExecRule && f.exec_lo == kNoExecRule;
  if (!none && (f.exec_hi >= n || f.exec_lo >= n)) fail("execve rule index out of range");

  const std::uint64_t pointer = 0x0000'7fff'1234'5678ull;
  std::vector<sock_filter> before = f.program;
  if (!pin_exec_pointer(f, pointer)) {
    if (!same(before, f.program)) fail("a refused pin changed the filter");
    return 0;
  }
  if (none) {
    if (!same(before, f.program)) fail("pinning with no execve rule changed the filter");
    return 0;
  }
  if (f.program[f.exec_hi].k != static_cast<std::uint32_t>(pointer >> 32) ||
      f.program[f.exec_lo].k != static_cast<std::uint32_t>(pointer)) {
    fail("the pointer's halves are not where the indices say");
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (i == f.exec_hi || i == f.exec_lo) continue;
    if (std::memcmp(&before[i], &f.program[i], sizeof(sock_filter)) != 0) {
      fail("pinning changed another instruction");
    }
  }
  return 0;
}
