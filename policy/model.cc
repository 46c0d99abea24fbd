#include "policy/model.h"

#include <algorithm>
#include <cstdint>

#include "policy_generated.h"  // the C++ enums flatc generates from policy.fbs

namespace capsa::policy {
namespace {

// The loader turns a policy's enum name into the schema's value and casts
// it to the model's enum (schema_check.h: bad_message_action_value), so the
// two enums must agree value by value. Checked at compile time: each switch
// is exhaustive under -Wswitch -Werror (a value added to either enum without
// its counterpart does not build), and the round trips pin every value.
namespace fbs = capsa::policy::schema;

constexpr fbs::BadMessageAction to_schema(BadMessageAction a) {
  switch (a) {
    case BadMessageAction::kReplyError: return fbs::BadMessageAction::reply_error;
    case BadMessageAction::kClosePort: return fbs::BadMessageAction::close_port;
    case BadMessageAction::kKill: return fbs::BadMessageAction::kill;
  }
  return fbs::BadMessageAction::kill;  // unreachable for a valid enumerator
}

constexpr BadMessageAction to_model(fbs::BadMessageAction a) {
  switch (a) {
    case fbs::BadMessageAction::reply_error: return BadMessageAction::kReplyError;
    case fbs::BadMessageAction::close_port: return BadMessageAction::kClosePort;
    case fbs::BadMessageAction::kill: return BadMessageAction::kKill;
  }
  return BadMessageAction::kKill;  // unreachable for a valid enumerator
}

constexpr bool same_value(BadMessageAction model) {
  return static_cast<std::uint8_t>(to_schema(model)) == static_cast<std::uint8_t>(model) &&
         to_model(to_schema(model)) == model;
}

static_assert(same_value(BadMessageAction::kReplyError));
static_assert(same_value(BadMessageAction::kClosePort));
static_assert(same_value(BadMessageAction::kKill));
static_assert(static_cast<int>(fbs::BadMessageAction::MIN) == 0 &&
                  static_cast<int>(fbs::BadMessageAction::MAX) == 2,
              "policy.fbs BadMessageAction has values the model does not");

static_assert(static_cast<int>(fbs::ChannelMode::mediated) ==
                  static_cast<int>(ChannelMode::kMediated) &&
              static_cast<int>(fbs::ChannelMode::direct) == static_cast<int>(ChannelMode::kDirect) &&
              static_cast<int>(fbs::ChannelMode::MAX) == 1,
              "policy.fbs ChannelMode and the model's ChannelMode disagree");
// The other enums: same values, same names (the loader casts).
static_assert(static_cast<int>(fbs::ViolationFloodAction::kill) == static_cast<int>(ViolationFloodAction::kKill) &&
              static_cast<int>(fbs::ViolationFloodAction::report) == static_cast<int>(ViolationFloodAction::kReport) &&
              static_cast<int>(fbs::ViolationFloodAction::MAX) == 1);
static_assert(static_cast<int>(fbs::OutputMode::supervisor) == static_cast<int>(OutputMode::kSupervisor) &&
              static_cast<int>(fbs::OutputMode::inherit) == static_cast<int>(OutputMode::kInherit) &&
              static_cast<int>(fbs::OutputMode::discard) == static_cast<int>(OutputMode::kDiscard) &&
              static_cast<int>(fbs::OutputMode::MAX) == 2);

}  // namespace

std::string_view to_string(ViolationFloodAction a) noexcept {
  return fbs::EnumNameViolationFloodAction(static_cast<fbs::ViolationFloodAction>(a));
}

std::string_view to_string(OutputMode m) noexcept {
  return fbs::EnumNameOutputMode(static_cast<fbs::OutputMode>(m));
}

std::string_view to_string(ChannelMode m) noexcept {
  return fbs::EnumNameChannelMode(static_cast<fbs::ChannelMode>(m));
}

std::string to_string(const ConstraintValue& v) {
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const std::uint64_t* n = std::get_if<std::uint64_t>(&v)) return std::to_string(*n);
  return std::get<std::string>(v);
}

std::vector<std::string> SandboxSettings::extra_syscalls() const {
  std::vector<std::string> all = allowed_syscalls;
  all.insert(all.end(), imported_syscalls.begin(), imported_syscalls.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

const ConstraintValue* Grant::constraint(std::string_view key) const {
  auto it = constraints.find(key);
  return it == constraints.end() ? nullptr : &it->second;
}

const Grant* WorkerProfile::find_grant(std::string_view grant_name) const {
  for (const Grant& g : grants) {
    if (g.name == grant_name) return &g;
  }
  return nullptr;
}

const WorkerProfile* Policy::find_worker(std::string_view worker_name) const {
  for (const WorkerProfile& w : workers) {
    if (w.name == worker_name) return &w;
  }
  return nullptr;
}

}  // namespace capsa::policy
