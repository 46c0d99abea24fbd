#include "policy/api_catalog.h"

#include <algorithm>

namespace capsa::policy {

std::string_view constraint_type_name(ConstraintType t) noexcept {
  switch (t) {
    case ConstraintType::kBool: return "a boolean";
    case ConstraintType::kUnsigned: return "an integer >= 0";
    case ConstraintType::kString: return "a string";
    case ConstraintType::kHostDir: return "an absolute path of a host directory";
  }
  return "?";
}

bool ApiSpec::has_method(std::string_view m) const noexcept {
  return std::find(methods.begin(), methods.end(), m) != methods.end();
}

const ConstraintSpec* ApiSpec::find_constraint(std::string_view n) const noexcept {
  for (const ConstraintSpec& c : constraints) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

void ApiCatalog::add(ApiSpec api) {
  for (ApiSpec& a : apis_) {
    if (a.name == api.name) {
      a = std::move(api);
      return;
    }
  }
  apis_.push_back(std::move(api));
}

const ApiSpec* ApiCatalog::find(std::string_view name) const noexcept {
  for (const ApiSpec& a : apis_) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::vector<std::string> ApiCatalog::grantable_names() const {
  std::vector<std::string> out;
  for (const ApiSpec& a : apis_) {
    if (a.grantable) out.push_back(a.name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string join_names(const std::vector<std::string>& names, std::string_view sep) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += sep;
    out += n;
  }
  return out;
}

}  // namespace capsa::policy
