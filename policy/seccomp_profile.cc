#include "policy/seccomp_profile.h"

#include <seccomp.h>

#include <algorithm>

#include "policy/jsonc.h"

namespace capsa::policy {
namespace {

const json::Value* member(const json::Value& obj, std::string_view key) {
  for (const json::Member& m : obj.members) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

bool is_empty_condition(const json::Value* v) {
  if (v == nullptr || v->kind == json::Kind::kNull) return true;
  if (v->kind == json::Kind::kArray) return v->items.empty();
  if (v->kind == json::Kind::kObject) return v->members.empty();
  return false;
}

bool plausible_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

class Importer {
 public:
  explicit Importer(const std::string& file) : file_(file) {}

  Checked<ImportedSeccompProfile> run(const json::Value& root) {
    if (root.kind != json::Kind::kObject) {
      error(root, "a seccomp profile is an object with defaultAction and syscalls");
    } else {
      check_default(root);
      if (const json::Value* calls = member(root, "syscalls")) entries(*calls);
    }
    if (!diags_.empty()) return std::unexpected(std::move(diags_));
    std::sort(out_.allowed.begin(), out_.allowed.end());
    out_.allowed.erase(std::unique(out_.allowed.begin(), out_.allowed.end()), out_.allowed.end());
    return std::move(out_);
  }

 private:
  void error(const json::Value& at, std::string message) {
    diags_.push_back({SourceLoc{file_, at.line, at.column}, std::move(message)});
  }

  void check_default(const json::Value& root) {
    const json::Value* d = member(root, "defaultAction");
    if (d == nullptr) return error(root, "missing \"defaultAction\"");
    if (d->kind != json::Kind::kString) return error(*d, "\"defaultAction\" must be a string");
    if (d->text == "SCMP_ACT_ALLOW") {
      error(*d, "defaultAction SCMP_ACT_ALLOW makes this a denylist; only allowlist profiles "
                "(defaultAction SCMP_ACT_ERRNO, SCMP_ACT_KILL, ...) can be imported");
    }
  }

  void entries(const json::Value& calls) {
    if (calls.kind != json::Kind::kArray) return error(calls, "\"syscalls\" must be an array");
    for (const json::Value& e : calls.items) {
      if (e.kind != json::Kind::kObject) {
        error(e, "each \"syscalls\" entry must be an object");
        continue;
      }
      entry(e);
    }
  }

  void entry(const json::Value& e) {
    const json::Value* action = member(e, "action");
    if (action == nullptr) return error(e, "syscalls entry without \"action\"");
    if (action->kind != json::Kind::kString) return error(*action, "\"action\" must be a string");
    std::vector<const json::Value*> names;
    if (const json::Value* list = member(e, "names")) {
      if (list->kind != json::Kind::kArray) return error(*list, "\"names\" must be an array of strings");
      for (const json::Value& n : list->items) names.push_back(&n);
    }
    if (const json::Value* one = member(e, "name")) names.push_back(one);  // pre-OCI Docker form
    if (names.empty()) return error(e, "syscalls entry without \"names\"");
    bool conditional = !is_empty_condition(member(e, "args")) ||
                       !is_empty_condition(member(e, "includes")) ||
                       !is_empty_condition(member(e, "excludes"));
    for (const json::Value* n : names) {
      if (n->kind != json::Kind::kString || !plausible_name(n->text)) {
        error(*n, "a syscall name is a string of a-z, 0-9 and _");
        continue;
      }
      if (action->text != "SCMP_ACT_ALLOW") continue;
      if (conditional) {
        out_.skipped.push_back(n->text + " (conditional entry)");
      } else if (!is_known_syscall(n->text)) {
        out_.skipped.push_back(n->text + " (unknown to libseccomp)");
      } else {
        out_.allowed.push_back(n->text);
      }
    }
  }

  const std::string& file_;
  ImportedSeccompProfile out_;
  Diagnostics diags_;
};

}  // namespace

bool is_known_syscall(const std::string& name) {
  return seccomp_syscall_resolve_name(name.c_str()) != __NR_SCMP_ERROR;
}

Checked<ImportedSeccompProfile> import_seccomp_profile_text(std::string_view text,
                                                            const std::string& file) {
  auto root = json::parse(text, file);
  if (!root) return std::unexpected(Diagnostics{std::move(root.error())});
  return Importer(file).run(*root);
}

Checked<ImportedSeccompProfile> import_seccomp_profile(const std::string& path) {
  auto text = json::read_file(path);
  if (!text) {
    return std::unexpected(Diagnostics{{SourceLoc{}, "seccomp profile " + text.error()}});
  }
  return import_seccomp_profile_text(*text, path);
}

}  // namespace capsa::policy
