// capsa::sandbox — what spawn() and capsa-launcher say to each other.
// Internal to sandbox/: not a public header.
//
// Fds inside the sandbox when the launcher starts (bubblewrap passes
// inherited fds through; the launcher closes any above 8 first, e.g. fd 9,
// its own executable, through which bubblewrap exec'ed it):
//   0 /dev/null, 1 and 2 the supervisor's stdout/stderr (bubblewrap's own
//   error messages go there; the launcher writes nothing to them),
//   3 the bootstrap port, 4 the config memfd (sealed), 5 the status socket,
//   7 and 8 the worker's stdout and stderr (Spec::stdout_to/stderr_to:
//   the supervisor's, /dev/null, or a pipe's write end).
// In the worker the launcher moves 7 and 8 onto 1 and 2, keeps 0..3 and
// closes everything else; the launcher itself closes 3, 4, 7 and 8.
//
// Config (fd 4): a flat little-endian buffer, parsed with bounds checks on
// every read (the launcher trusts the supervisor, but a parser that can
// overrun is a bug waiting for a caller):
//   u32 magic, u32 version,
//   u64 as, cpu, nproc, nofile, fsize, u32 violation action,
//   string program (the path the launcher execs: kProgramInSandbox), u32 n + n strings argv, u32 n + n strings env ("K=V"),
//   u32 n + n BPF instructions (u16 code, u8 jt, u8 jf, u32 k each),
//   u32 exec_hi, u32 exec_lo (indices of the execve rule's two JEQs, or
//   kNoExecRule for both when the spec allows execve unconditionally).
//   string = u32 length + bytes (no NUL inside).
//
// The seccomp program is compiled once by the supervisor (libseccomp, see
// seccomp_policy.h) with kExecSentinel in place of the execve path pointer;
// the launcher writes its own pointer into the two JEQ instructions before
// it installs the program, so the launcher itself needs no libseccomp.
//
// Status (fd 5, SOCK_SEQPACKET, launcher -> supervisor): fixed-size
// StatusRecord packets. The supervisor checks size and type of every one
// and closes any fd that comes with a record that should carry none.
//
// Pooled sandboxes (the config's `pooled` flag, sandbox/pool.h): bubblewrap
// passes no fd 3, 7 or 8. The launcher's child installs limits and filter,
// sends the listener, holds only fds 0, 4 and 5, and blocks in recvmsg on
// fd 5 for one HandOverRecord (supervisor -> launcher) carrying exactly
// three fds, which the kernel installs at the lowest free numbers: 1, 2, 3
// (the worker's stdout, stderr and bootstrap port). Anything else (another
// size, count, fd number or kind) ends the child (kError kHandOver); a
// valid one is acknowledged with kAccepted, then the program is exec'ed as
// in a cold start and the launcher reports kStarted.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "capabilities/error.h"
#include "sandbox/spec.h"

namespace capsa::sandbox::detail {

inline constexpr int kBootstrapFd = 3;
inline constexpr int kConfigFd = 4;
inline constexpr int kStatusFd = 5;
inline constexpr int kStdoutFd = 7;
inline constexpr int kStderrFd = 8;
inline constexpr std::uint32_t kConfigMagic = 0x43505358;  // "CPSX"
inline constexpr std::uint32_t kConfigVersion = 3;
// The hand-over record of a pooled sandbox (HandOverRecord::magic).
inline constexpr std::uint32_t kHandOverMagic = 0x43504f4f;  // "CPOO"
inline constexpr int kHandOverFds = 3;  // stdout, stderr, bootstrap, in that order
inline constexpr std::size_t kMaxConfigBytes = kMaxArgBytes + 64 * 1024;
// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
inline constexpr std::size_t kMaxFilterInstructions = 4096;
// The placeholder for the launcher's execve path pointer in a compiled
// filter. libseccomp compiles "arg0 == X" into two JEQs (high and low 32
// bits); the compiler checks that each half occurs in exactly one
// instruction, so no other rule can be patched by mistake.
inline constexpr std::uint64_t kExecSentinel = 0x5ca5e1a7'3c0de9b1ull;
inline constexpr std::uint32_t kNoExecRule = 0xffffffffu;
// The launcher's path inside the sandbox: a symlink to /proc/self/fd/9,
// bubblewrap's fd of the supervisor's O_PATH fd of it (mount_plan.h); and
// where the program is bound, the one path the launcher execs.
inline constexpr const char* kLauncherInSandbox = "/.capsa/launcher";
inline constexpr const char* kProgramInSandbox = "/.capsa/program";

enum class StatusType : std::uint32_t {
  kListener = 1,  // carries the seccomp listener fd (SCM_RIGHTS)
  kStarted = 2,   // the worker program was exec'ed
  kError = 3,     // start failed: stage + errno + text
  kExit = 4,      // the worker's wait status and rusage
  kAccepted = 5,  // pooled: the hand-over arrived and was valid; exec next
};

enum class Stage : std::uint32_t {
  kConfig = 1,
  kFilter = 2,
  kRlimit = 3,
  kSeccompLoad = 4,
  kListenerSend = 5,
  kExec = 6,
  kFork = 7,
  kExecPath = 8,  // placing the program path at its random address
  kHandOver = 9,  // pooled: a malformed hand-over (size, fd count, numbers, kinds)
};

// Supervisor -> a pooled sandbox's launcher child, on the status socket,
// with kHandOverFds fds (SCM_RIGHTS): the worker's stdout, stderr and
// bootstrap port.
struct HandOverRecord {
  std::uint32_t magic = kHandOverMagic;
  std::uint32_t fds = kHandOverFds;
};

struct StatusRecord {
  std::uint32_t type = 0;   // StatusType
  std::uint32_t stage = 0;  // Stage, for kError
  std::int32_t err = 0;     // errno, for kError
  std::int32_t wait_code = 0;    // CLD_EXITED / CLD_KILLED / CLD_DUMPED, for kExit
  std::int32_t wait_status = 0;  // exit code or signal, for kExit
  std::uint32_t pad = 0;
  std::uint64_t utime_us = 0;
  std::uint64_t stime_us = 0;
  std::uint64_t maxrss_kb = 0;
  char text[192] = {};  // NUL-terminated detail, for kError
};

// A seccomp program ready to install, with the places of its execve rule.
struct CompiledFilter {
  std::vector<sock_filter> program;
  std::uint32_t exec_hi = kNoExecRule;  // JEQ against the pointer's high 32 bits
  std::uint32_t exec_lo = kNoExecRule;  // JEQ against its low 32 bits
};

// What the launcher needs, decoded.
struct LauncherConfig {
  Limits limits;
  ViolationAction action = ViolationAction::kErrno;
  std::string program;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"
  CompiledFilter filter;
  // Pooled: wait for a HandOverRecord before the exec (see the top).
  bool pooled = false;
};

std::vector<std::uint8_t> encode_config(const Spec& spec, const CompiledFilter& filter,
                                        bool pooled = false);
Result<LauncherConfig> decode_config(std::span<const std::uint8_t> bytes);

// Writes `pointer` into the filter's execve rule. false when the rule is not
// where the indices say (then nothing is changed and the launcher refuses to
// start: a program whose pinned pointer we cannot set would either deny the
// worker's own exec or, patched at the wrong place, weaken another rule).
bool pin_exec_pointer(CompiledFilter& filter, std::uint64_t pointer) noexcept;

}  // namespace capsa::sandbox::detail
