// capsa policy — the one builder and the one set of checks.
//
// A policy written in C++ and a policy read from a file (policy/loader.h)
// both go through PolicyBuilder, so they are checked identically:
//
//   PolicyBuilder b(builtin_api_catalog());
//   auto& w = b.worker("wordcount").program("/opt/capsa/bin/wordcount");
//   w.limit(LimitKind::kMemory, 128 << 20);
//   w.grant("texts", "fs.Directory").right("Open").right("List")
//       .constraint("root", std::string("/srv/texts"));
//   w.grant("log", "log.Sink").all_rights();
//   Checked<Policy> p = b.try_build();  // the Policy, or every error found
//
// Setters only record; try_build() checks everything and returns either a
// complete Policy or all diagnostics (no partial policy ever escapes). Each
// setter takes an optional SourceLoc so that a file's errors point at the
// value that caused them.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policy/api_catalog.h"
#include "policy/diagnostic.h"
#include "policy/limits.h"
#include "policy/model.h"

namespace capsa::policy {

struct BuildOptions {
  // Check that programs, bind paths and directory roots exist on this host.
  // Only `capsa check --no-fs-checks` turns it off, to review a policy away
  // from the machine it is for; the supervisor always checks. (Even then the
  // check is advisory: the sandbox opens the paths again when it starts the
  // worker, so a path removed in between fails there, not silently.)
  bool check_filesystem = true;
};

template <typename T>
struct Located {
  T value{};
  SourceLoc at;
};

class GrantBuilder {
 public:
  GrantBuilder(std::string name, std::string api, SourceLoc name_at, SourceLoc api_at);

  GrantBuilder& right(std::string method, SourceLoc at = {});
  GrantBuilder& all_rights(SourceLoc at = {});  // "*": every method of the API
  GrantBuilder& constraint(std::string key, ConstraintValue value, SourceLoc key_at = {},
                           SourceLoc value_at = {});
  GrantBuilder& rate(std::uint64_t calls_per_second, SourceLoc at = {});
  GrantBuilder& byte_budget(std::uint64_t bytes, SourceLoc at = {});
  GrantBuilder& transferable(bool yes, SourceLoc at = {});

 private:
  friend class PolicyBuilder;
  struct ConstraintDraft {
    Located<std::string> key;
    Located<ConstraintValue> value;
  };
  Located<std::string> name_;
  Located<std::string> api_;
  std::vector<Located<std::string>> rights_;
  std::optional<SourceLoc> all_rights_;
  std::vector<ConstraintDraft> constraints_;
  std::optional<Located<std::uint64_t>> rate_;
  std::optional<Located<std::uint64_t>> byte_budget_;
  bool transferable_ = false;
};

class WorkerBuilder {
 public:
  WorkerBuilder(std::string name, SourceLoc at);

  WorkerBuilder& program(std::string path, SourceLoc at = {});
  WorkerBuilder& arg(std::string value, SourceLoc at = {});
  WorkerBuilder& env(std::string name, std::string value, SourceLoc at = {});
  WorkerBuilder& ro_bind(std::string host_path, SourceLoc at = {});
  WorkerBuilder& tmpfs_size(std::uint64_t bytes, SourceLoc at = {});
  WorkerBuilder& allow_syscall(std::string name, SourceLoc at = {});
  WorkerBuilder& seccomp_profile(std::string path, SourceLoc at = {});
  WorkerBuilder& require_cgroup(bool required, SourceLoc at = {});
  WorkerBuilder& limit(LimitKind kind, std::uint64_t value, SourceLoc at = {});
  WorkerBuilder& on_bad_message(BadMessageAction action, SourceLoc at = {});
  // An interface it may make mediated channels of at run time.
  WorkerBuilder& new_channel(std::string api, SourceLoc at = {});
  WorkerBuilder& on_violation_flood(ViolationFloodAction action, SourceLoc at = {});
  WorkerBuilder& output(OutputMode mode, SourceLoc at = {});
  WorkerBuilder& pool(std::uint64_t sandboxes, SourceLoc at = {});
  // The returned reference stays valid for the builder's lifetime.
  GrantBuilder& grant(std::string name, std::string api, SourceLoc name_at = {},
                      SourceLoc api_at = {});

 private:
  friend class PolicyBuilder;
  Located<std::string> name_;
  std::optional<Located<std::string>> program_;
  std::vector<Located<std::string>> args_;
  std::vector<std::pair<Located<std::string>, std::string>> env_;
  std::vector<Located<std::string>> ro_binds_;
  std::optional<Located<std::uint64_t>> tmpfs_;
  std::vector<Located<std::string>> syscalls_;
  std::optional<Located<std::string>> seccomp_profile_;
  bool require_cgroup_ = false;
  std::vector<std::pair<LimitKind, Located<std::uint64_t>>> limits_;
  BadMessageAction on_bad_message_ = BadMessageAction::kKill;
  ViolationFloodAction on_violation_flood_ = ViolationFloodAction::kKill;
  OutputMode output_ = OutputMode::kSupervisor;
  std::optional<Located<std::uint64_t>> pool_;
  std::deque<GrantBuilder> grants_;
  std::vector<Located<std::string>> new_channels_;
};

class ChannelBuilder {
 public:
  ChannelBuilder(std::string name, SourceLoc at);
  ChannelBuilder& interface(std::string api, SourceLoc at = {});
  ChannelBuilder& client(std::string worker, SourceLoc at = {});
  ChannelBuilder& server(std::string worker, SourceLoc at = {});
  ChannelBuilder& mode(ChannelMode mode, SourceLoc at = {});

 private:
  friend class PolicyBuilder;
  Located<std::string> name_;
  Located<std::string> interface_;
  Located<std::string> client_;
  Located<std::string> server_;
  ChannelMode mode_ = ChannelMode::kMediated;
};

class PolicyBuilder {
 public:
  // The catalog is copied: the builder has no lifetime ties to its caller.
  explicit PolicyBuilder(ApiCatalog catalog, BuildOptions options = {});

  // `at` is where the worker is defined (its object in a file).
  WorkerBuilder& worker(std::string name, SourceLoc at = {});
  ChannelBuilder& channel(std::string name, SourceLoc at = {});
  // A problem found before the builder (a file's syntax or unknown field):
  // try_build() reports it with its own and fails.
  void report(Diagnostic d);

  // Every check, every time. Diagnostics are sorted by position.
  Checked<Policy> try_build() const;

 private:
  class Checker;
  ApiCatalog catalog_;
  BuildOptions options_;
  std::deque<WorkerBuilder> workers_;
  std::deque<ChannelBuilder> channels_;
  Diagnostics reported_;
};

}  // namespace capsa::policy
