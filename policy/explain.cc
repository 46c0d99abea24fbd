#include "policy/explain.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace capsa::policy {
namespace {

using Row = std::vector<std::string>;

// Left-aligned columns two spaces apart, each row indented by `indent`.
std::string table(const std::vector<Row>& rows, std::size_t indent) {
  std::vector<std::size_t> width;
  for (const Row& r : rows) {
    width.resize(std::max(width.size(), r.size()));
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const Row& r : rows) {
    std::string line(indent, ' ');
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string list_or_none(const std::vector<std::string>& v) {
  if (v.empty()) return "(none)";
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string limits_text(const Limits& l) {
  std::string s;
  for (const LimitSpec& spec : limit_specs()) {
    std::uint64_t v = l.get(spec.kind);
    s += (s.empty() ? "" : "  ") + std::string(spec.name) + "=" +
         (spec.is_size ? format_size(v) : std::to_string(v));
  }
  return s;
}

std::string constraints_text(const Grant& g) {
  std::string s;
  for (const auto& [k, v] : g.constraints) s += (s.empty() ? "" : " ") + k + "=" + to_string(v);
  return s.empty() ? "-" : s;
}

std::string json_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + json_quote(v[i]);
  return s + "]";
}

std::string json_constraint(const ConstraintValue& v) {
  if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const std::uint64_t* n = std::get_if<std::uint64_t>(&v)) return std::to_string(*n);
  return json_quote(std::get<std::string>(v));
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;  // UTF-8 passes through; the policy reader produced it
    }
  }
  return out + "\"";
}

std::string explain_text(const Policy& p) {
  std::string out;
  for (const WorkerProfile& w : p.workers) {
    out += "worker " + w.name + "\n";
    std::string env;
    for (const auto& [k, v] : w.env) env += (env.empty() ? "" : " ") + k + "=" + v;
    const SandboxSettings& sb = w.sandbox;
    std::vector<Row> rows = {
        {"program", w.program},
        {"args", list_or_none(w.args)},
        {"env", env.empty() ? "(empty)" : env},
        {"on bad message", std::string(to_string(w.on_bad_message))},
        {"violation flood", std::string(to_string(w.on_violation_flood))},
        {"output", std::string(to_string(w.output))},
        {"warm pool", w.pool == 0 ? "none" : std::to_string(w.pool) + " sandboxes started ahead"},
        {"tmpfs /tmp", format_size(sb.tmpfs_bytes)},
        {"read-only binds", list_or_none(sb.ro_binds)},
        {"extra syscalls", list_or_none(sb.extra_syscalls())},
        {"cgroup", sb.require_cgroup ? "required" : "when one can be made"},
    };
    if (!sb.seccomp_profile.empty()) rows.push_back({"seccomp profile", sb.seccomp_profile});
    rows.push_back({"limits", limits_text(w.limits)});
    rows.push_back({"new channels", list_or_none(w.new_channels)});
    out += table(rows, 2);
    if (w.grants.empty()) {
      out += "  grants: none\n";
    } else {
      std::vector<Row> g = {{"GRANT", "API", "RIGHTS", "CONSTRAINTS", "RATE/S", "BYTE BUDGET", "TRANSFERABLE"}};
      for (const Grant& gr : w.grants) {
        g.push_back({gr.name, gr.api, (gr.all_rights ? "* = " : "") + list_or_none(gr.rights),
                     constraints_text(gr), gr.rate ? std::to_string(gr.rate) : "-",
                     gr.byte_budget ? format_size(gr.byte_budget) : "-", gr.transferable ? "yes" : "no"});
      }
      out += table(g, 2);
    }
    out += "\n";
  }
  if (!p.channels.empty()) {
    std::vector<Row> c = {{"CHANNEL", "INTERFACE", "CLIENT", "SERVER", "MODE"}};
    for (const Channel& ch : p.channels) {
      c.push_back({ch.name, ch.interface, ch.client, ch.server, std::string(to_string(ch.mode))});
    }
    out += table(c, 0);
  }
  return out;
}

std::string explain_json(const Policy& p) {
  std::string out = "{\"valid\":true,\"workers\":[";
  for (std::size_t i = 0; i < p.workers.size(); ++i) {
    const WorkerProfile& w = p.workers[i];
    const SandboxSettings& sb = w.sandbox;
    out += i ? "," : "";
    out += "{\"name\":" + json_quote(w.name) + ",\"program\":" + json_quote(w.program) +
           ",\"args\":" + json_list(w.args) + ",\"env\":[";
    for (std::size_t e = 0; e < w.env.size(); ++e) {
      out += (e ? "," : "") + json_quote(w.env[e].first + "=" + w.env[e].second);
    }
    out += "],\"on_bad_message\":" + json_quote(to_string(w.on_bad_message));
    out += ",\"on_violation_flood\":" + json_quote(to_string(w.on_violation_flood));
    out += ",\"output\":" + json_quote(to_string(w.output));
    out += ",\"pool\":" + std::to_string(w.pool);
    out += ",\"sandbox\":{\"ro_binds\":" + json_list(sb.ro_binds) +
           ",\"tmpfs_size\":" + std::to_string(sb.tmpfs_bytes) +
           ",\"allow_syscalls\":" + json_list(sb.allowed_syscalls) +
           ",\"seccomp_profile\":" + json_quote(sb.seccomp_profile) +
           ",\"imported_syscalls\":" + json_list(sb.imported_syscalls) +
           ",\"require_cgroup\":" + (sb.require_cgroup ? "true" : "false") + "}";
    out += ",\"limits\":{";
    bool first = true;
    for (const LimitSpec& spec : limit_specs()) {
      out += (first ? "\"" : ",\"") + std::string(spec.name) + "\":" + std::to_string(w.limits.get(spec.kind));
      first = false;
    }
    out += "},\"grants\":[";
    for (std::size_t g = 0; g < w.grants.size(); ++g) {
      const Grant& gr = w.grants[g];
      out += (g ? "," : "") + std::string("{\"name\":") + json_quote(gr.name) +
             ",\"api\":" + json_quote(gr.api) + ",\"rights\":" + json_list(gr.rights) +
             ",\"all_rights\":" + (gr.all_rights ? "true" : "false") + ",\"constraints\":{";
      bool first_c = true;
      for (const auto& [k, v] : gr.constraints) {
        out += (first_c ? "" : ",") + json_quote(k) + ":" + json_constraint(v);
        first_c = false;
      }
      out += "},\"rate\":" + std::to_string(gr.rate) + ",\"byte_budget\":" +
             std::to_string(gr.byte_budget) + ",\"transferable\":" + (gr.transferable ? "true" : "false") + "}";
    }
    out += "],\"new_channels\":" + json_list(w.new_channels) + "}";
  }
  out += "],\"channels\":[";
  for (std::size_t i = 0; i < p.channels.size(); ++i) {
    const Channel& c = p.channels[i];
    out += (i ? "," : "") + std::string("{\"name\":") + json_quote(c.name) + ",\"interface\":" +
           json_quote(c.interface) + ",\"client\":" + json_quote(c.client) + ",\"server\":" +
           json_quote(c.server) + ",\"mode\":" + json_quote(to_string(c.mode)) + "}";
  }
  return out + "]}\n";
}

std::string diagnostics_json(const Diagnostics& diags) {
  std::string out = "{\"valid\":false,\"errors\":[";
  for (std::size_t i = 0; i < diags.size(); ++i) {
    const Diagnostic& d = diags[i];
    out += (i ? "," : "") + std::string("{\"file\":") + json_quote(d.where.file) +
           ",\"line\":" + std::to_string(d.where.line) + ",\"column\":" +
           std::to_string(d.where.column) + ",\"message\":" + json_quote(d.message) + "}";
  }
  return out + "]}\n";
}

}  // namespace capsa::policy
