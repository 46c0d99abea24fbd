// PolicyBuilder::try_build(): every check a policy passes, in one place.
// Each error says what is wrong, what is allowed, and points at the value.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <system_error>

#include "policy/builder.h"
#include "policy/sandbox_spec.h"
#include "policy/seccomp_profile.h"
#include "policy/suggest.h"
#include "sandbox/host_file.h"

namespace capsa::policy {
namespace {

constexpr std::size_t kMaxNameLength = 64;

// Worker, grant and channel names appear in audit logs, in the bootstrap
// protocol and on the command line: keep them to a safe, printable alphabet.
bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > kMaxNameLength) return false;
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
  };
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  return alnum(n.front()) && std::all_of(n.begin(), n.end(), ok);
}

bool valid_env_name(const std::string& n) {
  if (n.empty() || n.size() > 128 || (n.front() >= '0' && n.front() <= '9')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string range_text(std::uint64_t lo, std::uint64_t hi, bool is_size) {
  if (!is_size) return std::to_string(lo) + ".." + std::to_string(hi);
  return format_size(lo) + ".." + format_size(hi);
}

}  // namespace

class PolicyBuilder::Checker {
 public:
  explicit Checker(const PolicyBuilder& b) : b_(b), diags_(b.reported_) {}

  Checked<Policy> run() {
    Policy p;
    if (b_.workers_.empty()) error({}, "the policy defines no workers");
    std::map<std::string, SourceLoc> seen;
    for (const WorkerBuilder& w : b_.workers_) {
      auto [it, fresh] = seen.emplace(w.name_.value, w.name_.at);
      if (!fresh && valid_name(w.name_.value)) {
        error(w.name_.at, "duplicate worker name " + quoted(w.name_.value) + first_at(it->second));
      }
      p.workers.push_back(worker(w));
    }
    std::map<std::string, SourceLoc> channel_names;
    for (const ChannelBuilder& c : b_.channels_) p.channels.push_back(channel(c, p, channel_names));
    if (!diags_.empty()) {
      sort_diagnostics(diags_);
      return std::unexpected(std::move(diags_));
    }
    return p;
  }

 private:
  void error(const SourceLoc& at, std::string message) {
    diags_.push_back({at, std::move(message)});
  }

  static std::string first_at(const SourceLoc& at) {
    return at.known() ? " (first defined at " + at.to_string() + ")" : "";
  }

  void name(const Located<std::string>& n, std::string_view what) {
    if (n.value.empty()) {
      error(n.at, std::string(what) + " has no name");
    } else if (!valid_name(n.value)) {
      error(n.at, std::string(what) + " name " + quoted(n.value) +
                      " is invalid; use 1-64 of A-Z a-z 0-9 _ - . starting with a letter or digit");
    }
  }

  // Absolute, no NUL; with filesystem checks, also exists and has the type.
  enum class PathKind { kExecutable, kAny, kDirectory, kBindSource };
  void path(const Located<std::string>& p, std::string_view what, PathKind kind) {
    if (has_nul(p.value)) return error(p.at, std::string(what) + " contains a NUL byte");
    if (p.value.empty() || p.value.front() != '/') {
      return error(p.at, std::string(what) + " " + quoted(p.value) +
                             " must be an absolute path (starting with /)");
    }
    if ((kind == PathKind::kExecutable || kind == PathKind::kBindSource) &&
        !sandbox::is_clean_absolute_path(p.value)) {
      // The sandbox takes these paths literally (sandbox/spec.h): a reader
      // of the policy must not have to resolve "..".
      return error(p.at, std::string(what) + " " + quoted(p.value) +
                             " has a \".\" or \"..\" component (or is longer than 4096 bytes); "
                             "write the path without them");
    }
    if (kind == PathKind::kBindSource && sandbox::is_reserved_mount_point(p.value)) {
      return error(p.at, std::string(what) + " " + quoted(p.value) +
                             " is at or below a mount point the sandbox makes itself (/, " +
                             join_names({sandbox::kReservedMountPoints.begin(),
                                         sandbox::kReservedMountPoints.end()}) +
                             "); bind a directory elsewhere");
    }
    if (!b_.options_.check_filesystem) return;
    if (kind == PathKind::kExecutable || kind == PathKind::kBindSource) {
      // What the sandbox gets from the host: the very checks spawn() makes
      // on the file it opens (type, no symlink, the mode for the uid the
      // sandbox runs as), with the same words (sandbox/host_file.h).
      auto use = kind == PathKind::kExecutable ? sandbox::HostFileUse::kProgram
                                               : sandbox::HostFileUse::kBindSource;
      auto fd = sandbox::open_host_file(use, p.value, identity_);
      if (!fd) error(p.at, fd.error().message);
      return;
    }
    std::error_code ec;
    auto st = std::filesystem::status(p.value, ec);
    if (ec || !std::filesystem::exists(st)) {
      return error(p.at, std::string(what) + " " + p.value + " does not exist" +
                             (ec ? " (" + ec.message() + ")" : std::string()));
    }
    if (kind == PathKind::kDirectory && !std::filesystem::is_directory(st)) {
      return error(p.at, std::string(what) + " " + p.value + " is not a directory");
    }
  }

  void range(const Located<std::uint64_t>& v, std::string_view what, std::uint64_t lo,
             std::uint64_t hi, bool is_size) {
    if (v.value < lo || v.value > hi) {
      error(v.at, std::string(what) + " = " + std::to_string(v.value) +
                      " is out of range; allowed " + range_text(lo, hi, is_size));
    }
  }

  WorkerProfile worker(const WorkerBuilder& w) {
    const std::size_t errors_before = diags_.size();
    WorkerProfile out;
    out.name = w.name_.value;
    name(w.name_, "worker");
    if (!w.program_) {
      error(w.name_.at, "worker " + quoted(w.name_.value) + " has no program");
    } else {
      path(*w.program_, "program", PathKind::kExecutable);
      out.program = w.program_->value;
    }
    for (const auto& a : w.args_) {
      if (has_nul(a.value)) error(a.at, "argument contains a NUL byte");
      out.args.push_back(a.value);
    }
    std::map<std::string, SourceLoc> env_seen;
    for (const auto& [n, value] : w.env_) {
      if (!valid_env_name(n.value)) {
        error(n.at, "environment variable name " + quoted(n.value) +
                        " is invalid; use A-Z a-z 0-9 _ not starting with a digit");
      } else if (!env_seen.emplace(n.value, n.at).second) {
        error(n.at, "environment variable " + n.value + " is set twice");
      }
      if (has_nul(value)) error(n.at, "environment value contains a NUL byte");
      out.env.emplace_back(n.value, value);
    }
    sandbox(w, out.sandbox);
    for (const auto& [kind, v] : w.limits_) {
      const LimitSpec& spec = limit_spec(kind);
      range(v, "limits." + std::string(spec.name), spec.min, spec.max, spec.is_size);
      out.limits.set(kind, v.value);
    }
    out.on_bad_message = w.on_bad_message_;
    out.on_violation_flood = w.on_violation_flood_;
    out.output = w.output_;
    if (w.pool_) {
      range(*w.pool_, "pool", 0, kMaxPool, false);
      out.pool = w.pool_->value;
    }
    std::map<std::string, SourceLoc> grant_names;
    for (const GrantBuilder& g : w.grants_) {
      auto [it, fresh] = grant_names.emplace(g.name_.value, g.name_.at);
      if (!fresh && valid_name(g.name_.value)) {
        error(g.name_.at, "duplicate grant name " + quoted(g.name_.value) + " in worker " +
                              quoted(w.name_.value) + first_at(it->second));
      }
      out.grants.push_back(grant(g));
    }
    for (const Located<std::string>& api : w.new_channels_) {
      const ApiSpec* spec = b_.catalog_.find(api.value);
      if (spec == nullptr || !spec->grantable) {
        error(api.at, "unknown interface " + quoted(api.value) + " in new_channels; known: " +
                          join_names(b_.catalog_.grantable_names()));
      } else if (std::find(out.new_channels.begin(), out.new_channels.end(), api.value) !=
                 out.new_channels.end()) {
        error(api.at, "interface " + quoted(api.value) + " is listed twice in new_channels");
      } else {
        out.new_channels.push_back(api.value);
      }
    }
    if (diags_.size() == errors_before) sandbox_refusals(w, out);
    return out;
  }

  // The sandbox spec the supervisor will start this worker with, built the
  // same way (policy/sandbox_spec.h): anything the sandbox refuses that the
  // checks above let through (argv and env too large, ...) is an error
  // here, not a failure at start. Only for a worker with no other error, so
  // one mistake is not reported twice. Without filesystem checks the binds
  // are left out: the spec checks that their sources exist.
  void sandbox_refusals(const WorkerBuilder& w, const WorkerProfile& profile) {
    WorkerProfile p = profile;
    if (!b_.options_.check_filesystem) p.sandbox.ro_binds.clear();
    auto spec = sandbox_spec(p, "");
    if (spec) return;
    std::istringstream lines(spec.error().message);
    std::string reason;
    std::getline(lines, reason);  // "invalid sandbox spec for NAME", then one reason a line
    bool any = false;
    while (std::getline(lines, reason)) {
      reason.erase(0, reason.find_first_not_of(' '));
      error(w.name_.at, "the sandbox would refuse worker " + quoted(w.name_.value) + ": " + reason);
      any = true;
    }
    if (!any) error(w.name_.at, "the sandbox would refuse worker " + quoted(w.name_.value) + ": " + reason);
  }

  void sandbox(const WorkerBuilder& w, SandboxSettings& out) {
    for (const auto& bind : w.ro_binds_) {
      path(bind, "read-only bind", PathKind::kBindSource);
      out.ro_binds.push_back(bind.value);
    }
    if (w.ro_binds_.size() > sandbox::kMaxBinds) {
      error(w.ro_binds_[sandbox::kMaxBinds].at, std::to_string(w.ro_binds_.size()) +
                                                    " read-only binds; at most " +
                                                    std::to_string(sandbox::kMaxBinds));
    }
    if (w.tmpfs_) {
      range(*w.tmpfs_, "sandbox.tmpfs_size", kMinTmpfsBytes, kMaxTmpfsBytes, true);
      out.tmpfs_bytes = w.tmpfs_->value;
    }
    out.require_cgroup = w.require_cgroup_;
    for (const auto& s : w.syscalls_) {
      if (!is_known_syscall(s.value) || has_nul(s.value)) {
        error(s.at, "unknown syscall " + quoted(s.value) +
                        " (not in libseccomp's table for this architecture)");
      }
      out.allowed_syscalls.push_back(s.value);
    }
    if (w.seccomp_profile_) {
      const auto& p = *w.seccomp_profile_;
      out.seccomp_profile = p.value;
      if (has_nul(p.value) || p.value.empty() || p.value.front() != '/') {
        return path(p, "seccomp profile", PathKind::kAny);
      }
      // Always read, even without filesystem checks: its content is policy.
      auto imported = import_seccomp_profile(p.value);
      if (!imported) {
        for (Diagnostic& d : imported.error()) {
          std::string ref = p.at.known() ? " (seccomp profile of worker " + quoted(w.name_.value) +
                                               ", named at " + p.at.to_string() + ")"
                                         : "";
          if (!d.where.known()) d.where = p.at;
          error(d.where, d.message + ref);
        }
        return;
      }
      out.imported_syscalls = imported->allowed;
    }
  }

  Grant grant(const GrantBuilder& g) {
    Grant out;
    out.name = g.name_.value;
    out.api = g.api_.value;
    out.transferable = g.transferable_;
    name(g.name_, "grant");
    if (g.rate_) {
      if (g.rate_->value != 0) range(*g.rate_, "rate", 1, kMaxGrantRate, false);
      out.rate = g.rate_->value;
    }
    if (g.byte_budget_) {
      if (g.byte_budget_->value != 0) range(*g.byte_budget_, "byte_budget", 1, kMaxByteBudget, true);
      out.byte_budget = g.byte_budget_->value;
    }
    const ApiSpec* api = b_.catalog_.find(g.api_.value);
    if (g.api_.value.empty()) {
      error(g.api_.at, "grant " + quoted(g.name_.value) + " names no API; known: " +
                           join_names(b_.catalog_.grantable_names()));
      return out;
    }
    if (api == nullptr) {
      error(g.api_.at, "unknown API " + quoted(g.api_.value) +
                           did_you_mean(g.api_.value, b_.catalog_.grantable_names()) + "; known: " +
                           join_names(b_.catalog_.grantable_names()));
      return out;
    }
    if (!api->grantable) {
      error(g.api_.at, api->name + " is given to every worker implicitly and cannot be granted");
      return out;
    }
    if (!api->served) {
      error(g.api_.at, api->name + " is not served by the supervisor" +
                           (api->served_note.empty() ? std::string() : " (" + api->served_note + ")") +
                           "; it can be the interface of a channel between workers");
      return out;
    }
    rights(g, *api, out);
    constraints(g, *api, out);
    return out;
  }

  void rights(const GrantBuilder& g, const ApiSpec& api, Grant& out) {
    std::string methods = join_names(api.methods);
    if (g.all_rights_) {
      out.all_rights = true;
      out.rights = api.methods;
      if (!g.rights_.empty()) {
        error(g.rights_.front().at, "\"*\" already grants every method of " + api.name +
                                        "; list methods or \"*\", not both");
      }
      return;
    }
    if (g.rights_.empty()) {
      error(g.name_.at, "grant " + quoted(g.name_.value) + " lists no rights; list the methods of " +
                            api.name + " it may call (" + methods + ") or \"*\" for all");
    }
    std::map<std::string, SourceLoc> seen;
    for (const auto& r : g.rights_) {
      if (!api.has_method(r.value)) {
        error(r.at, "method " + quoted(r.value) + " is not in " + api.name +
                        did_you_mean(r.value, api.methods) + "; its methods: " + methods);
        continue;
      }
      // A repeated right is harmless to run but says the author meant
      // another method: refused, like a duplicate key.
      if (auto [it, fresh] = seen.emplace(r.value, r.at); !fresh) {
        error(r.at, "right " + quoted(r.value) + " is listed twice" + first_at(it->second));
        continue;
      }
      out.rights.push_back(r.value);
    }
  }

  void constraints(const GrantBuilder& g, const ApiSpec& api, Grant& out) {
    std::vector<std::string> allowed;
    for (const ConstraintSpec& c : api.constraints) allowed.push_back(c.name);
    for (const auto& c : g.constraints_) {
      const ConstraintSpec* spec = api.find_constraint(c.key.value);
      if (spec == nullptr) {
        error(c.key.at, "unknown constraint " + quoted(c.key.value) + " for " + api.name +
                            did_you_mean(c.key.value, allowed) + "; " +
                            (allowed.empty() ? "it has none" : "allowed: " + join_names(allowed)));
        continue;
      }
      if (out.constraints.count(c.key.value) != 0) {
        error(c.key.at, "constraint " + quoted(c.key.value) + " is set twice");
        continue;
      }
      ConstraintValue value = c.value.value;
      // An integer constraint may be written as a size ("64M") in a file.
      if (spec->type == ConstraintType::kUnsigned && std::holds_alternative<std::string>(value)) {
        if (auto n = parse_size(std::get<std::string>(value))) value = *n;
      }
      if (!type_matches(*spec, value)) {
        error(c.value.at, "constraint " + spec->name + " of " + api.name + " must be " +
                              std::string(constraint_type_name(spec->type)));
        continue;
      }
      if (spec->type == ConstraintType::kHostDir) {
        path({std::get<std::string>(c.value.value), c.value.at}, spec->name, PathKind::kDirectory);
      }
      out.constraints.emplace(c.key.value, std::move(value));
    }
    for (const ConstraintSpec& spec : api.constraints) {
      if (out.constraints.count(spec.name) != 0) continue;
      bool given = std::any_of(g.constraints_.begin(), g.constraints_.end(),
                               [&](const auto& c) { return c.key.value == spec.name; });
      if (spec.required && !given) {
        error(g.name_.at, "grant " + quoted(g.name_.value) + " of " + api.name +
                              " needs constraint " + spec.name + " (" +
                              std::string(constraint_type_name(spec.type)) + ")");
      } else if (!spec.required) {
        out.constraints.emplace(spec.name, default_value(spec));
      }
    }
  }

  static bool type_matches(const ConstraintSpec& spec, const ConstraintValue& v) {
    switch (spec.type) {
      case ConstraintType::kBool: return std::holds_alternative<bool>(v);
      case ConstraintType::kUnsigned: return std::holds_alternative<std::uint64_t>(v);
      case ConstraintType::kString:
      case ConstraintType::kHostDir: return std::holds_alternative<std::string>(v);
    }
    return false;
  }

  static ConstraintValue default_value(const ConstraintSpec& spec) {
    switch (spec.type) {
      case ConstraintType::kBool: return spec.default_value == "true";
      case ConstraintType::kUnsigned: return parse_size(spec.default_value).value_or(0);
      case ConstraintType::kString:
      case ConstraintType::kHostDir: return spec.default_value;
    }
    return spec.default_value;
  }

  Channel channel(const ChannelBuilder& c, const Policy& p, std::map<std::string, SourceLoc>& names) {
    Channel out{c.name_.value, c.interface_.value, c.client_.value, c.server_.value, c.mode_};
    name(c.name_, "channel");
    auto [it, fresh] = names.emplace(c.name_.value, c.name_.at);
    if (!fresh && valid_name(c.name_.value)) {
      error(c.name_.at, "duplicate channel name " + quoted(c.name_.value) + first_at(it->second));
    }
    const ApiSpec* api = b_.catalog_.find(c.interface_.value);
    if (c.interface_.value.empty()) {
      error(c.name_.at, "channel " + quoted(c.name_.value) + " has no interface");
    } else if (api == nullptr || !api->grantable) {
      error(c.interface_.at, "unknown interface " + quoted(c.interface_.value) +
                                 " for channel " + quoted(c.name_.value) +
                                 did_you_mean(c.interface_.value, b_.catalog_.grantable_names()) +
                                 "; known: " +
                                 join_names(b_.catalog_.grantable_names()));
    }
    std::vector<std::string> workers;
    for (const WorkerProfile& w : p.workers) workers.push_back(w.name);
    std::sort(workers.begin(), workers.end());
    workers.erase(std::unique(workers.begin(), workers.end()), workers.end());
    for (const Located<std::string>* end : {&c.client_, &c.server_}) {
      const WorkerProfile* w = p.find_worker(end->value);
      if (end->value.empty()) {
        error(end->at.known() ? end->at : c.name_.at,
              "channel " + quoted(c.name_.value) + " needs a client and a server worker");
      } else if (w == nullptr) {
        error(end->at, "channel " + quoted(c.name_.value) + " names unknown worker " +
                           quoted(end->value) + did_you_mean(end->value, workers) +
                           "; workers: " + join_names(workers));
      } else if (w->find_grant(c.name_.value) != nullptr) {
        error(c.name_.at, "channel " + quoted(c.name_.value) + " has the same name as a grant of worker " +
                              quoted(w->name) + "; the worker could not tell them apart");
      }
    }
    if (c.client_.value == c.server_.value && p.find_worker(c.client_.value) != nullptr) {
      error(c.server_.at, "channel " + quoted(c.name_.value) + " connects worker " +
                              quoted(c.client_.value) + " to itself");
    }
    return out;
  }

  const PolicyBuilder& b_;
  Diagnostics diags_;
  // Who the sandbox would be if this process spawned it (65534 as root).
  const sandbox::SandboxIdentity identity_ = sandbox::sandbox_identity();
};

Checked<Policy> PolicyBuilder::try_build() const { return Checker(*this).run(); }

}  // namespace capsa::policy
