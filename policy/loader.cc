#include "policy/loader.h"

#include <filesystem>
#include <optional>

#include "policy/jsonc.h"
#include "policy/schema_check.h"

namespace capsa::policy {
namespace {

const json::Value* member(const json::Value& obj, std::string_view key) {
  if (obj.kind != json::Kind::kObject) return nullptr;
  for (const json::Member& m : obj.members) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

// Walks the (schema-checked) tree and feeds the builder. A value of the
// wrong type has already been reported by the schema check, so it is just
// skipped here: no error is reported twice.
class Feeder {
 public:
  Feeder(const std::string& file, const LoadOptions& options, const ApiCatalog& catalog,
         PolicyBuilder& b)
      : file_(file), options_(options), catalog_(catalog), b_(b) {}

  void policy(const json::Value& root) {
    if (const json::Value* ws = array(root, "workers")) {
      for (const json::Value& w : ws->items) {
        if (w.kind == json::Kind::kObject) worker(w);
      }
    }
    if (const json::Value* cs = array(root, "channels")) {
      for (const json::Value& c : cs->items) {
        if (c.kind == json::Kind::kObject) channel(c);
      }
    }
  }

 private:
  SourceLoc at(const json::Value& v) const { return SourceLoc{file_, v.line, v.column}; }

  static const json::Value* array(const json::Value& obj, std::string_view key) {
    const json::Value* v = member(obj, key);
    return v != nullptr && v->kind == json::Kind::kArray ? v : nullptr;
  }
  static const json::Value* object(const json::Value& obj, std::string_view key) {
    const json::Value* v = member(obj, key);
    return v != nullptr && v->kind == json::Kind::kObject ? v : nullptr;
  }

  // The expanded string, or nullopt (and a diagnostic) on a bad variable.
  // For a path, a leading variable with a relative value is resolved
  // against base_dir (loader.h).
  std::optional<std::string> expand(const json::Value& v, bool is_path = false) {
    const std::string& s = v.text;
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '$') {
        out.push_back(s[i]);
        continue;
      }
      if (i + 1 < s.size() && s[i + 1] == '$') {
        out.push_back('$');
        ++i;
        continue;
      }
      if (i + 1 >= s.size() || s[i + 1] != '{') {
        out.push_back('$');
        continue;
      }
      // Reported at the string itself: a field whose value failed is then
      // not reported a second time by the builder (same position).
      SourceLoc loc = at(v);
      auto close = s.find('}', i + 2);
      if (close == std::string::npos) {
        b_.report({loc, "unterminated ${ in a string; write $$ for a literal $"});
        return std::nullopt;
      }
      std::string name = s.substr(i + 2, close - i - 2);
      auto it = options_.defines.find(name);
      if (it == options_.defines.end()) {
        std::string known;
        for (const auto& [k, _] : options_.defines) known += (known.empty() ? "" : ", ") + k;
        b_.report({loc, "undefined variable ${" + name + "} in \"" + s + "\"; define it with --define " + name +
                            "=VALUE (defined: " + (known.empty() ? "none" : known) + ")"});
        return std::nullopt;
      }
      if (is_path && i == 0 && !it->second.empty() && it->second.front() != '/' &&
          !options_.base_dir.empty()) {
        std::string resolved = (std::filesystem::path(options_.base_dir) / it->second).lexically_normal().string();
        while (resolved.size() > 1 && resolved.back() == '/') resolved.pop_back();
        out += resolved;
      } else {
        out += it->second;
      }
      i = close;
    }
    return out;
  }

  // A string member, expanded; nullopt if absent, mistyped or badly expanded.
  std::optional<std::string> string(const json::Value& obj, std::string_view key, SourceLoc* loc = nullptr,
                                    bool is_path = false) {
    const json::Value* v = member(obj, key);
    if (v == nullptr) return std::nullopt;
    if (loc != nullptr) *loc = at(*v);
    if (v->kind != json::Kind::kString) return std::nullopt;
    return expand(*v, is_path);
  }

  void strings(const json::Value& obj, std::string_view key, auto&& each, bool is_path = false) {
    if (const json::Value* list = array(obj, key)) {
      for (const json::Value& item : list->items) {
        if (item.kind != json::Kind::kString) continue;
        if (auto s = expand(item, is_path)) each(std::move(*s), at(item));
      }
    }
  }

  void worker(const json::Value& w) {
    SourceLoc name_at = at(w);
    std::string name = string(w, "name", &name_at).value_or("");
    WorkerBuilder& wb = b_.worker(name, name_at);
    SourceLoc program_at;
    if (auto program = string(w, "program", &program_at, /*is_path=*/true)) {
      wb.program(std::move(*program), program_at);
    } else if (member(w, "program") != nullptr) {
      // Mistyped or bad variable, reported at program_at already; the
      // builder's complaint about "" lands on the same position and is merged.
      wb.program("", program_at);
    }
    strings(w, "args", [&](std::string s, SourceLoc loc) { wb.arg(std::move(s), loc); });
    strings(w, "env", [&](std::string s, SourceLoc loc) {
      auto eq = s.find('=');
      if (eq == std::string::npos) {
        b_.report({loc, "environment entry \"" + s + "\" must be NAME=VALUE"});
        return;
      }
      wb.env(s.substr(0, eq), s.substr(eq + 1), loc);
    });
    if (const json::Value* sb = object(w, "sandbox")) sandbox(*sb, wb);
    if (const json::Value* lim = object(w, "limits")) limits(*lim, wb);
    if (const json::Value* a = member(w, "on_bad_message"); a && a->kind == json::Kind::kString) {
      if (auto v = schema_enum_value("BadMessageAction", a->text)) {
        wb.on_bad_message(static_cast<BadMessageAction>(*v), at(*a));
      }
    }
    if (const json::Value* a = member(w, "on_violation_flood"); a && a->kind == json::Kind::kString) {
      if (auto v = schema_enum_value("ViolationFloodAction", a->text)) {
        wb.on_violation_flood(static_cast<ViolationFloodAction>(*v), at(*a));
      }
    }
    if (const json::Value* a = member(w, "output"); a && a->kind == json::Kind::kString) {
      if (auto v = schema_enum_value("OutputMode", a->text)) wb.output(static_cast<OutputMode>(*v), at(*a));
    }
    if (const json::Value* p = member(w, "pool")) {
      if (auto n = to_unsigned(*p, false)) wb.pool(*n, at(*p));
    }
    if (const json::Value* gs = array(w, "grants")) {
      for (const json::Value& g : gs->items) {
        if (g.kind == json::Kind::kObject) grant(g, wb);
      }
    }
    strings(w, "new_channels", [&](std::string s, SourceLoc loc) {
      wb.new_channel(std::move(s), loc);
    });
  }

  void sandbox(const json::Value& sb, WorkerBuilder& wb) {
    strings(sb, "ro_binds", [&](std::string s, SourceLoc loc) { wb.ro_bind(std::move(s), loc); },
            /*is_path=*/true);
    if (const json::Value* t = member(sb, "tmpfs_size")) {
      if (auto n = to_unsigned(*t, true)) wb.tmpfs_size(*n, at(*t));
    }
    strings(sb, "allow_syscalls", [&](std::string s, SourceLoc loc) { wb.allow_syscall(std::move(s), loc); });
    SourceLoc loc;
    if (auto p = string(sb, "seccomp_profile", &loc, /*is_path=*/true)) {
      wb.seccomp_profile(std::move(*p), loc);
    }
    if (const json::Value* r = member(sb, "require_cgroup"); r && r->kind == json::Kind::kBool) {
      wb.require_cgroup(r->boolean, at(*r));
    }
  }

  void limits(const json::Value& lim, WorkerBuilder& wb) {
    for (const LimitSpec& spec : limit_specs()) {
      const json::Value* v = member(lim, spec.name);
      if (v == nullptr) continue;
      if (auto n = to_unsigned(*v, spec.is_size)) wb.limit(spec.kind, *n, at(*v));
    }
  }

  void grant(const json::Value& g, WorkerBuilder& wb) {
    SourceLoc name_at = at(g), api_at = at(g);
    std::string name = string(g, "name", &name_at).value_or("");
    std::string api = string(g, "api", &api_at).value_or("");
    const ApiSpec* spec = catalog_.find(api);
    GrantBuilder& gb = wb.grant(std::move(name), std::move(api), name_at, api_at);
    if (const json::Value* rights = member(g, "rights")) {
      // A mistyped value (reported by the schema check) is fed as "" at its
      // own position, so the builder's "no rights" does not pile on.
      if (rights->kind != json::Kind::kArray) gb.right("", at(*rights));
      for (const json::Value& r : rights->items) {
        auto s = r.kind == json::Kind::kString ? expand(r) : std::nullopt;
        if (!s) {
          gb.right("", at(r));
        } else if (*s == "*") {
          gb.all_rights(at(r));
        } else {
          gb.right(std::move(*s), at(r));
        }
      }
    }
    if (const json::Value* c = object(g, "constraints")) {
      for (const json::Member& m : c->members) constraint(m, spec, gb);
    }
    if (const json::Value* r = member(g, "rate")) {
      if (auto n = to_unsigned(*r, false)) gb.rate(*n, at(*r));
    }
    if (const json::Value* r = member(g, "byte_budget")) {
      if (auto n = to_unsigned(*r, true)) gb.byte_budget(*n, at(*r));
    }
    if (const json::Value* t = member(g, "transferable"); t && t->kind == json::Kind::kBool) {
      gb.transferable(t->boolean, at(*t));
    }
  }

  void constraint(const json::Member& m, const ApiSpec* api, GrantBuilder& gb) {
    SourceLoc key_at{file_, m.line, m.column};
    const json::Value& v = m.value;
    if (v.kind == json::Kind::kBool) {
      gb.constraint(m.key, v.boolean, key_at, at(v));
    } else if (v.kind == json::Kind::kNumber) {
      if (auto n = to_unsigned(v, false)) gb.constraint(m.key, *n, key_at, at(v));
    } else if (v.kind == json::Kind::kString) {
      // A size-typed constraint may be written "64M"; the catalog decides.
      const ConstraintSpec* c = api != nullptr ? api->find_constraint(m.key) : nullptr;
      bool is_path = c != nullptr && c->type == ConstraintType::kHostDir;
      if (auto s = expand(v, is_path)) gb.constraint(m.key, std::move(*s), key_at, at(v));
    }
  }

  void channel(const json::Value& c) {
    SourceLoc loc = at(c);
    ChannelBuilder& cb = b_.channel(string(c, "name", &loc).value_or(""), loc);
    SourceLoc l;
    if (auto s = string(c, "interface", &l)) cb.interface(std::move(*s), l);
    if (auto s = string(c, "client", &l)) cb.client(std::move(*s), l);
    if (auto s = string(c, "server", &l)) cb.server(std::move(*s), l);
    if (const json::Value* m = member(c, "mode"); m && m->kind == json::Kind::kString) {
      if (auto v = schema_enum_value("ChannelMode", m->text)) {
        cb.mode(static_cast<ChannelMode>(*v), at(*m));
      }
    }
  }

  const std::string& file_;
  const LoadOptions& options_;
  const ApiCatalog& catalog_;
  PolicyBuilder& b_;
};

}  // namespace

Checked<Policy> load_policy_text(std::string_view text, const std::string& file,
                                 const ApiCatalog& catalog, const LoadOptions& options) {
  Diagnostics duplicates;
  auto root = json::parse(text, file, &duplicates);
  if (!root) {
    duplicates.push_back(std::move(root.error()));
    sort_diagnostics(duplicates);
    return std::unexpected(std::move(duplicates));
  }
  LoadOptions opts = options;
  if (!file.empty() && file.front() == '/' && opts.defines.count("policy_dir") == 0) {
    opts.defines["policy_dir"] = std::filesystem::path(file).parent_path().string();
  }
  PolicyBuilder b(catalog, opts.build);
  for (Diagnostic& d : duplicates) b.report(std::move(d));
  Diagnostics schema_errors;
  check_against_schema(*root, file, schema_errors);
  for (Diagnostic& d : schema_errors) b.report(std::move(d));
  Feeder(file, opts, catalog, b).policy(*root);
  return b.try_build();
}

Checked<Policy> load_policy_file(const std::string& path, const ApiCatalog& catalog,
                                 const LoadOptions& options) {
  auto text = json::read_file(path);
  if (!text) return std::unexpected(Diagnostics{{SourceLoc{}, "cannot read policy " + text.error()}});
  LoadOptions opts = options;
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  if (!ec && opts.defines.count("policy_dir") == 0) {
    opts.defines["policy_dir"] = abs.lexically_normal().parent_path().string();
  }
  return load_policy_text(*text, path, catalog, opts);
}

}  // namespace capsa::policy
