#include "policy/model.h"

#include <algorithm>

namespace capsa::policy {

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
