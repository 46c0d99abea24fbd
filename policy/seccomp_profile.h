// capsa policy — importing an OCI/Docker seccomp profile's allowed syscalls.
//
// Operators often have a reviewed profile (runc, Docker, Podman use the OCI
// format). We import only the NAMES its unconditional SCMP_ACT_ALLOW entries
// allow; they extend the worker's allowlist. capsa's own filter stays the
// base: a profile can add syscalls, never remove capsa's protections.
//
// Deliberately narrower than the profile, never wider:
//   - an entry with `args` conditions, or `includes`/`excludes` (Docker's
//     "only with CAP_SYS_ADMIN" / per-arch entries) is skipped, because
//     allowing the syscall unconditionally would widen what the profile says;
//   - a profile whose defaultAction is SCMP_ACT_ALLOW (a denylist) is refused:
//     an allowlist cannot be derived from it;
//   - names this libseccomp does not know are skipped (they cannot be
//     allowed on this kernel anyway).
// Skipped names are returned so `capsa check` can show them.
//
// Names are checked with libseccomp's name table (seccomp_syscall_resolve_name):
// a pure lookup, no fd and no filter is created, so policy/ stays pure data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/diagnostic.h"

namespace capsa::policy {

struct ImportedSeccompProfile {
  std::vector<std::string> allowed;  // sorted, unique
  std::vector<std::string> skipped;  // "name (why)", for explanations
};

// Reads and imports `path`. Errors carry the profile's own file:line:column.
Checked<ImportedSeccompProfile> import_seccomp_profile(const std::string& path);

// Same, from text already read (tests, and the fuzzer).
Checked<ImportedSeccompProfile> import_seccomp_profile_text(std::string_view text,
                                                            const std::string& file);

// True if libseccomp knows `name` as a syscall of the native architecture.
bool is_known_syscall(const std::string& name);

}  // namespace capsa::policy
