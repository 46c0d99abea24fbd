// PolicyBuilder setters: they only record values and where they came from.
// All checking is in builder_checks.cc, run by try_build().
#include "policy/builder.h"

namespace capsa::policy {

GrantBuilder::GrantBuilder(std::string name, std::string api, SourceLoc name_at, SourceLoc api_at)
    : name_{std::move(name), std::move(name_at)}, api_{std::move(api), std::move(api_at)} {}

GrantBuilder& GrantBuilder::right(std::string method, SourceLoc at) {
  rights_.push_back({std::move(method), std::move(at)});
  return *this;
}

GrantBuilder& GrantBuilder::all_rights(SourceLoc at) {
  all_rights_ = std::move(at);
  return *this;
}

GrantBuilder& GrantBuilder::constraint(std::string key, ConstraintValue value, SourceLoc key_at,
                                       SourceLoc value_at) {
  constraints_.push_back({{std::move(key), std::move(key_at)}, {std::move(value), std::move(value_at)}});
  return *this;
}

GrantBuilder& GrantBuilder::rate(std::uint64_t calls_per_second, SourceLoc at) {
  rate_ = Located<std::uint64_t>{calls_per_second, std::move(at)};
  return *this;
}

GrantBuilder& GrantBuilder::byte_budget(std::uint64_t bytes, SourceLoc at) {
  byte_budget_ = Located<std::uint64_t>{bytes, std::move(at)};
  return *this;
}

GrantBuilder& GrantBuilder::transferable(bool yes, SourceLoc /*at*/) {
  transferable_ = yes;
  return *this;
}

WorkerBuilder::WorkerBuilder(std::string name, SourceLoc at) : name_{std::move(name), std::move(at)} {}

WorkerBuilder& WorkerBuilder::program(std::string path, SourceLoc at) {
  program_ = Located<std::string>{std::move(path), std::move(at)};
  return *this;
}

WorkerBuilder& WorkerBuilder::arg(std::string value, SourceLoc at) {
  args_.push_back({std::move(value), std::move(at)});
  return *this;
}

WorkerBuilder& WorkerBuilder::env(std::string name, std::string value, SourceLoc at) {
  env_.push_back({{std::move(name), std::move(at)}, std::move(value)});
  return *this;
}

WorkerBuilder& WorkerBuilder::ro_bind(std::string host_path, SourceLoc at) {
  ro_binds_.push_back({std::move(host_path), std::move(at)});
  return *this;
}

WorkerBuilder& WorkerBuilder::pool(std::uint64_t sandboxes, SourceLoc at) {
  pool_ = Located<std::uint64_t>{sandboxes, std::move(at)};
  return *this;
}

WorkerBuilder& WorkerBuilder::tmpfs_size(std::uint64_t bytes, SourceLoc at) {
  tmpfs_ = Located<std::uint64_t>{bytes, std::move(at)};
  return *this;
}

WorkerBuilder& WorkerBuilder::require_cgroup(bool required, SourceLoc) {
  require_cgroup_ = required;
  return *this;
}

WorkerBuilder& WorkerBuilder::allow_syscall(std::string name, SourceLoc at) {
  syscalls_.push_back({std::move(name), std::move(at)});
  return *this;
}

WorkerBuilder& WorkerBuilder::seccomp_profile(std::string path, SourceLoc at) {
  seccomp_profile_ = Located<std::string>{std::move(path), std::move(at)};
  return *this;
}

WorkerBuilder& WorkerBuilder::limit(LimitKind kind, std::uint64_t value, SourceLoc at) {
  limits_.push_back({kind, {value, std::move(at)}});
  return *this;
}

WorkerBuilder& WorkerBuilder::new_channel(std::string api, SourceLoc at) {
  new_channels_.push_back({std::move(api), std::move(at)});
  return *this;
}

WorkerBuilder& WorkerBuilder::on_violation_flood(ViolationFloodAction action, SourceLoc /*at*/) {
  on_violation_flood_ = action;
  return *this;
}

WorkerBuilder& WorkerBuilder::output(OutputMode mode, SourceLoc /*at*/) {
  output_ = mode;
  return *this;
}

WorkerBuilder& WorkerBuilder::on_bad_message(BadMessageAction action, SourceLoc /*at*/) {
  on_bad_message_ = action;
  return *this;
}

GrantBuilder& WorkerBuilder::grant(std::string name, std::string api, SourceLoc name_at,
                                   SourceLoc api_at) {
  return grants_.emplace_back(std::move(name), std::move(api), std::move(name_at),
                              std::move(api_at));
}

ChannelBuilder::ChannelBuilder(std::string name, SourceLoc at) : name_{std::move(name), std::move(at)} {}

ChannelBuilder& ChannelBuilder::interface(std::string api, SourceLoc at) {
  interface_ = {std::move(api), std::move(at)};
  return *this;
}

ChannelBuilder& ChannelBuilder::client(std::string worker, SourceLoc at) {
  client_ = {std::move(worker), std::move(at)};
  return *this;
}

ChannelBuilder& ChannelBuilder::server(std::string worker, SourceLoc at) {
  server_ = {std::move(worker), std::move(at)};
  return *this;
}

ChannelBuilder& ChannelBuilder::mode(ChannelMode mode, SourceLoc /*at*/) {
  mode_ = mode;
  return *this;
}

PolicyBuilder::PolicyBuilder(ApiCatalog catalog, BuildOptions options)
    : catalog_(std::move(catalog)), options_(options) {}

WorkerBuilder& PolicyBuilder::worker(std::string name, SourceLoc at) {
  return workers_.emplace_back(std::move(name), std::move(at));
}

ChannelBuilder& PolicyBuilder::channel(std::string name, SourceLoc at) {
  return channels_.emplace_back(std::move(name), std::move(at));
}

void PolicyBuilder::report(Diagnostic d) { reported_.push_back(std::move(d)); }

}  // namespace capsa::policy
