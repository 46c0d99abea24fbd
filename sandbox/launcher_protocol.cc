#include "sandbox/launcher_protocol.h"

#include <cstring>

namespace capsa::sandbox::detail {
namespace {

void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put_str(std::vector<std::uint8_t>& out, const std::string& s) {
  put32(out, static_cast<std::uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}
void put_list(std::vector<std::uint8_t>& out, const std::vector<std::string>& v) {
  put32(out, static_cast<std::uint32_t>(v.size()));
  for (const auto& s : v) put_str(out, s);
}

// A cursor that refuses to read past the end; every failure is sticky.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == b_.size(); }
  std::uint64_t get(int n) {
    if (!ok_ || b_.size() - pos_ < static_cast<std::size_t>(n)) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{b_[pos_ + static_cast<std::size_t>(i)]} << (8 * i);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  std::string str() {
    std::uint64_t n = get(4);
    if (!ok_ || b_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    if (s.find('\0') != std::string::npos) ok_ = false;
    return s;
  }
  std::vector<std::string> list() {
    std::uint64_t n = get(4);
    std::vector<std::string> v;
    // Each string takes at least 4 bytes: a count larger than that is a lie.
    if (!ok_ || n > (b_.size() - pos_) / 4) {
      ok_ = false;
      return v;
    }
    for (std::uint64_t i = 0; i < n && ok_; ++i) v.push_back(str());
    return v;
  }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::vector<std::uint8_t> encode_config(const Spec& spec, const CompiledFilter& filter,
                                        bool pooled) {
  std::vector<std::uint8_t> out;
  put32(out, kConfigMagic);
  put32(out, kConfigVersion);
  put64(out, spec.limits.address_space_bytes);
  put64(out, spec.limits.cpu_seconds);
  put64(out, spec.limits.max_processes);
  put64(out, spec.limits.max_open_files);
  put64(out, spec.limits.max_file_size_bytes);
  put32(out, static_cast<std::uint32_t>(spec.on_violation));
  put_str(out, kProgramInSandbox);
  put_list(out, spec.argv);
  std::vector<std::string> env;
  for (const auto& [k, v] : spec.env) env.push_back(k + "=" + v);
  put_list(out, env);
  put32(out, static_cast<std::uint32_t>(filter.program.size()));
  for (const sock_filter& insn : filter.program) {
    put32(out, static_cast<std::uint32_t>(insn.code) | static_cast<std::uint32_t>(insn.jt) << 16 |
                   static_cast<std::uint32_t>(insn.jf) << 24);
    put32(out, insn.k);
  }
  put32(out, filter.exec_hi);
  put32(out, filter.exec_lo);
  put32(out, pooled ? 1 : 0);
  return out;
}

Result<LauncherConfig> decode_config(std::span<const std::uint8_t> bytes) {
  if (bytes.size() > kMaxConfigBytes) return make_error(Errc::kBadMessage, "config too large");
  Reader r(bytes);
  if (r.get(4) != kConfigMagic || r.get(4) != kConfigVersion) {
    return make_error(Errc::kBadMessage, "config: bad magic or version");
  }
  LauncherConfig c;
  c.limits.address_space_bytes = r.get(8);
  c.limits.cpu_seconds = r.get(8);
  c.limits.max_processes = r.get(8);
  c.limits.max_open_files = r.get(8);
  c.limits.max_file_size_bytes = r.get(8);
  std::uint64_t action = r.get(4);
  c.program = r.str();
  c.argv = r.list();
  c.env = r.list();
  std::uint64_t insns = r.get(4);
  if (insns == 0 || insns > kMaxFilterInstructions) {
    return make_error(Errc::kBadMessage, "config: filter length out of range");
  }
  c.filter.program.resize(static_cast<std::size_t>(insns));
  for (sock_filter& insn : c.filter.program) {
    std::uint64_t head = r.get(4);
    insn.code = static_cast<std::uint16_t>(head & 0xffffu);
    insn.jt = static_cast<std::uint8_t>((head >> 16) & 0xffu);
    insn.jf = static_cast<std::uint8_t>((head >> 24) & 0xffu);
    insn.k = static_cast<std::uint32_t>(r.get(4));
  }
  c.filter.exec_hi = static_cast<std::uint32_t>(r.get(4));
  c.filter.exec_lo = static_cast<std::uint32_t>(r.get(4));
  const std::uint64_t pooled = r.get(4);
  if (!r.ok() || !r.at_end()) return make_error(Errc::kBadMessage, "config: truncated or trailing bytes");
  // Both indices name an instruction, or neither does.
  bool none = c.filter.exec_hi == kNoExecRule && c.filter.exec_lo == kNoExecRule;
  if (!none && (c.filter.exec_hi >= insns || c.filter.exec_lo >= insns ||
                c.filter.exec_hi == c.filter.exec_lo)) {
    return make_error(Errc::kBadMessage, "config: execve rule indices out of range");
  }
  if (pooled > 1) return make_error(Errc::kBadMessage, "config: bad pooled flag");
  c.pooled = pooled == 1;
  if (action > static_cast<std::uint64_t>(ViolationAction::kKill)) {
    return make_error(Errc::kBadMessage, "config: bad violation action");
  }
  c.action = static_cast<ViolationAction>(action);
  if (c.program.empty() || c.program.front() != '/' || c.argv.empty()) {
    return make_error(Errc::kBadMessage, "config: program must be absolute, argv non-empty");
  }
  return c;
}

bool pin_exec_pointer(CompiledFilter& filter, std::uint64_t pointer) noexcept {
  if (filter.exec_hi == kNoExecRule && filter.exec_lo == kNoExecRule) return true;
  const std::size_t n = filter.program.size();
  if (filter.exec_hi >= n || filter.exec_lo >= n) return false;
  sock_filter& hi = filter.program[filter.exec_hi];
  sock_filter& lo = filter.program[filter.exec_lo];
  constexpr std::uint16_t kJeq = BPF_JMP | BPF_JEQ | BPF_K;
  if (hi.code != kJeq || lo.code != kJeq ||
      hi.k != static_cast<std::uint32_t>(kExecSentinel >> 32) ||
      lo.k != static_cast<std::uint32_t>(kExecSentinel & 0xffffffffu)) {
    return false;
  }
  hi.k = static_cast<std::uint32_t>(pointer >> 32);
  lo.k = static_cast<std::uint32_t>(pointer & 0xffffffffu);
  return true;
}

}  // namespace capsa::sandbox::detail
