#include "sandbox/spec.h"

#include <seccomp.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string_view>
#include <utility>

namespace capsa::sandbox {
namespace {

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

// An absolute path with no "." or ".." component and no NUL. Paths are
// handed to bubblewrap, which resolves them as root of the new mount
// namespace; ".." would make a reviewer's reading of a policy wrong.
bool is_clean_absolute_path(std::string_view p) {
  if (p.empty() || p.front() != '/' || has_nul(p) || p.size() > 4096) return false;
  std::size_t i = 0;
  while (i < p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view part = p.substr(i, j - i);
    if (part == "." || part == "..") return false;
    i = j + 1;
  }
  return true;
}

bool is_reserved_mount_point(std::string_view p) {
  for (std::string_view r : kReservedMountPoints) {
    if (p == r || (p.starts_with(r) && p.size() > r.size() && p[r.size()] == '/')) return true;
  }
  return p == "/";
}

std::string default_launcher_path() {
  if (const char* env = std::getenv("CAPSA_LAUNCHER"); env != nullptr && *env != '\0') {
    return env;
  }
  return CAPSA_LAUNCHER_BUILD_PATH;
}

std::string default_argv0(std::string_view program) {
  auto slash = program.rfind('/');
  std::string_view name = slash == std::string_view::npos ? program : program.substr(slash + 1);
  return std::string(name.empty() ? program : name);
}

SpecBuilder& SpecBuilder::name(std::string name) {
  spec_.name = std::move(name);
  return *this;
}

SpecBuilder& SpecBuilder::program(std::string path) {
  spec_.program = std::move(path);
  return *this;
}

SpecBuilder& SpecBuilder::args(std::vector<std::string> argv) {
  spec_.argv = std::move(argv);
  return *this;
}

SpecBuilder& SpecBuilder::env(std::string key, std::string value) {
  if (spec_.env.contains(key)) errors_.push_back("env: " + key + " set twice");
  spec_.env[std::move(key)] = std::move(value);
  return *this;
}

SpecBuilder& SpecBuilder::ro_bind(std::string source, std::string dest) {
  spec_.ro_binds.push_back(Bind{std::move(source), std::move(dest)});
  return *this;
}

SpecBuilder& SpecBuilder::tmpfs_bytes(std::uint64_t bytes) {
  spec_.tmpfs_bytes = bytes;
  return *this;
}

SpecBuilder& SpecBuilder::limits(const Limits& limits) {
  spec_.limits = limits;
  return *this;
}

SpecBuilder& SpecBuilder::allow_syscall(std::string name) {
  spec_.extra_syscalls.push_back(std::move(name));
  return *this;
}

SpecBuilder& SpecBuilder::on_violation(ViolationAction action) {
  spec_.on_violation = action;
  return *this;
}

SpecBuilder& SpecBuilder::launcher(std::string path) {
  spec_.launcher = std::move(path);
  return *this;
}

SpecBuilder& SpecBuilder::stdout_to(Output where) {
  spec_.stdout_to = where;
  return *this;
}

SpecBuilder& SpecBuilder::stderr_to(Output where) {
  spec_.stderr_to = where;
  return *this;
}

SpecBuilder& SpecBuilder::require_cgroup(bool required) {
  spec_.require_cgroup = required;
  return *this;
}

std::vector<std::string_view> unset_limits(const Limits& l) {
  std::vector<std::string_view> out;
  for (const auto& [field, value] :
       {std::pair<std::string_view, std::uint64_t>{"address_space_bytes", l.address_space_bytes},
        {"cpu_seconds", l.cpu_seconds},
        {"wall_seconds", l.wall_seconds},
        {"max_processes", l.max_processes},
        {"max_open_files", l.max_open_files},
        {"max_file_size_bytes", l.max_file_size_bytes}}) {
    if (value == kUnsetLimit) out.push_back(field);
  }
  return out;
}

Result<Spec> SpecBuilder::build() const {
  std::vector<std::string> errs = errors_;
  Spec s = spec_;
  if (s.name.empty() || s.name.size() > 64) errs.push_back("name: must be 1..64 bytes");
  for (char c : s.name) {
    if (c < 0x21 || c > 0x7e) {
      errs.push_back("name: only printable ASCII without spaces");
      break;
    }
  }
  if (!is_clean_absolute_path(s.program)) {
    errs.push_back("program: must be an absolute path without '.', '..' or NUL: " + s.program);
  }
  if (s.argv.empty()) s.argv.push_back(default_argv0(s.program));
  std::size_t bytes = 0;
  for (const auto& a : s.argv) {
    if (has_nul(a)) errs.push_back("argv: an argument contains NUL");
    bytes += a.size() + 1;
  }
  for (const auto& [k, v] : s.env) {
    if (k.empty() || k.find('=') != std::string::npos || has_nul(k) || has_nul(v)) {
      errs.push_back("env: bad key '" + k + "' (empty, '=' or NUL)");
    }
    bytes += k.size() + v.size() + 2;
  }
  if (bytes > kMaxArgBytes) errs.push_back("argv+env: more than kMaxArgBytes bytes");
  if (s.ro_binds.size() > kMaxBinds) {
    errs.push_back("ro_bind: " + std::to_string(s.ro_binds.size()) + " binds, at most " +
                   std::to_string(kMaxBinds));
  }
  for (const auto& b : s.ro_binds) {
    if (!is_clean_absolute_path(b.source) || !is_clean_absolute_path(b.dest)) {
      errs.push_back("ro_bind: paths must be absolute without '.', '..' or NUL: " + b.source +
                     " -> " + b.dest);
      continue;
    }
    struct stat st {};
    if (::stat(b.source.c_str(), &st) != 0) errs.push_back("ro_bind: source does not exist: " + b.source);
    if (is_reserved_mount_point(b.dest)) errs.push_back("ro_bind: destination is reserved: " + b.dest);
  }
  if (s.tmpfs_bytes < (1ull << 20) || s.tmpfs_bytes > (16ull << 30)) {
    errs.push_back("tmpfs_bytes: must be within [1 MiB, 16 GiB]");
  }
  for (std::string_view field : unset_limits(s.limits)) {
    errs.push_back("limits." + std::string(field) +
                   ": not set (the sandbox has no default limits; policy/limits.h has them)");
  }
  if (s.extra_syscalls.size() > 512) errs.push_back("extra_syscalls: too many");
  for (const auto& name : s.extra_syscalls) {
    if (has_nul(name) || seccomp_syscall_resolve_name(name.c_str()) == __NR_SCMP_ERROR) {
      errs.push_back("allow_syscall: unknown syscall '" + name + "'");
    }
  }
  for (Output o : {s.stdout_to, s.stderr_to}) {
    if (o != Output::kInherit && o != Output::kNull && o != Output::kPipe) {
      errs.push_back("stdout_to/stderr_to: unknown Output value");
    }
  }
  if (s.launcher.empty()) s.launcher = default_launcher_path();
  if (!is_clean_absolute_path(s.launcher)) errs.push_back("launcher: must be an absolute path: " + s.launcher);
  if (!errs.empty()) {
    std::string msg = "invalid sandbox spec";
    if (!s.name.empty()) msg += " for " + s.name;
    for (const auto& e : errs) msg += "\n  " + e;
    return make_error(Errc::kInvalidArgument, std::move(msg));
  }
  return s;
}

}  // namespace capsa::sandbox
