// capsa policy — the APIs a policy may grant, as the policy checks see them.
//
// The policy layer does not depend on the interface registry in
// capabilities/: it only needs, per API, the method names (for rights) and
// the API-specific constraint fields (for a directory: its root and whether
// it is read-only) with their types. The supervisor fills an ApiCatalog from
// the real registry; policy/builtin_apis.h has the table used until then.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace capsa::policy {

enum class ConstraintType : unsigned char {
  kBool,
  kUnsigned,  // an integer >= 0 (sizes may be written "64M")
  kString,
  kHostDir,   // an absolute path of an existing host directory
};

std::string_view constraint_type_name(ConstraintType t) noexcept;

struct ConstraintSpec {
  std::string name;
  ConstraintType type = ConstraintType::kString;
  bool required = false;
  // The value used when the policy does not set one (ignored if required).
  // Written as the policy would write it: "true", "0", "".
  std::string default_value;
};

struct ApiSpec {
  std::string name;                  // "fs.Directory"
  std::vector<std::string> methods;  // in interface order
  std::vector<ConstraintSpec> constraints;
  // False for APIs every worker has implicitly (capsa.Bootstrap): granting
  // one is an error, not a no-op, so a policy never suggests otherwise.
  bool grantable = true;
  // False for APIs the supervisor does not serve itself (fs.File, only
  // returned by fs.Directory.Open; demo.WordCount, served by a worker): a
  // grant of one is an error, but a channel may carry it.
  bool served = true;
  std::string served_note;  // why not, for the error message

  bool has_method(std::string_view m) const noexcept;
  const ConstraintSpec* find_constraint(std::string_view n) const noexcept;
};

class ApiCatalog {
 public:
  // Adds an API; a second API with the same name replaces the first.
  void add(ApiSpec api);
  const ApiSpec* find(std::string_view name) const noexcept;
  // Names of grantable APIs, sorted, for "known: ..." messages.
  std::vector<std::string> grantable_names() const;
  const std::vector<ApiSpec>& apis() const noexcept { return apis_; }

 private:
  std::vector<ApiSpec> apis_;
};

// "a, b, c" — for messages that say what is allowed.
std::string join_names(const std::vector<std::string>& names, std::string_view sep = ", ");

}  // namespace capsa::policy
