// The C++ SDK's conformance runner (tests/conformance/scenario.json,
// docs/PYTHON.md "Conformance"): runs each step through capsa::worker and
// logs "step N DO: RESULT" to the "log" grant. It judges nothing: the
// harness compares the lines with the scenario's expectations. runner.py is
// the Python twin; the two must print the same result for the same
// behaviour.
//
//   conformance_runner STEPS   (the scenario's "steps" as JSON, without "expect")
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "capabilities/interfaces/builtin.h"
#include "fs_file_generated.h"
#include "workers/sdk/builtins.h"

namespace {

using capsa::Errc;
using capsa::Error;
using capsa::Result;
using namespace capsa::worker;
using nlohmann::json;

std::string hex(capsa::Rights r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(r));
  return buf;
}

// Bytes as a JSON string, as runner.py's json.dumps() of the bytes read
// as latin-1 (each byte one code point, so any bytes can be shown; non-ASCII
// ones as \u00XX).
std::string quoted(std::string_view bytes) {
  std::string utf8;
  for (char c : bytes) {
    auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      utf8 += c;
    } else {
      utf8 += static_cast<char>(0xC0 | (b >> 6));
      utf8 += static_cast<char>(0x80 | (b & 0x3F));
    }
  }
  return json(utf8).dump(-1, ' ', true);
}

std::string entry(const DirEntry& e) {
  if (e.type == EntryType::kRegular) return e.name + ":" + std::to_string(e.size);
  return e.name + (e.type == EntryType::kDirectory ? "/" : "?");
}

class Runner {
 public:
  Runner(Context ctx, LogSink log) : ctx_(std::move(ctx)), log_(std::move(log)) {}

  // The step's value ("" for a bare ok), or its error.
  Result<std::string> run(const json& step) {
    const std::string do_ = step.at("do");
    if (do_ == "list_grants") {
      CAPSA_ASSIGN_OR_RETURN(auto grants, ctx_.list());
      std::string out;
      for (const auto& g : grants) out += (out.empty() ? "" : " ") + g.name + ":" + g.interface + ":" + hex(g.rights);
      return out;
    }
    if (do_ == "get") {
      CAPSA_ASSIGN_OR_RETURN(Capability cap, ctx_.get(step.at("grant").get<std::string>(),
                                                      step.at("interface").get<std::string>()));
      std::string value = "rights " + hex(cap.rights());
      keep(step, std::move(cap));
      return value;
    }
    if (do_ == "list" || do_ == "open_file" || do_ == "open") return directory(step, do_);
    if (do_ == "open_bypassing_sdk") {
      // A fresh port to the grant, adopted with every method allowed
      // locally: the call reaches the supervisor, which enforces the rights.
      CAPSA_ASSIGN_OR_RETURN(Capability cap, ctx_.get(step.at("grant").get<std::string>(), "fs.Directory"));
      CAPSA_ASSIGN_OR_RETURN(Capability wide, ctx_.adopt(cap.release(), "fs.Directory", "wide"));
      CAPSA_ASSIGN_OR_RETURN(Directory dir, Directory::wrap(std::move(wide)));
      CAPSA_TRY(dir.open(ctx_, step.at("path").get<std::string>()));
      return std::string();
    }
    if (do_ == "read") {
      CAPSA_ASSIGN_OR_RETURN(Capability cap, take(step.at("cap")));
      CAPSA_ASSIGN_OR_RETURN(File f, File::wrap(std::move(cap)));
      auto data = f.read(step.at("max").get<std::uint32_t>());
      put(step.at("cap"), std::move(f.capability()));
      if (!data) return std::unexpected(data.error());
      return quoted(std::string_view(reinterpret_cast<const char*>(data->data()), data->size()));
    }
    if (do_ == "release") {
      // An object: capsa.Object.Release; a port: closed. Kept under its
      // name, as released.
      CAPSA_ASSIGN_OR_RETURN(Capability cap, take(step.at("cap")));
      (void)cap.release();
      put(step.at("cap"), std::move(cap));
      return std::string();
    }
    if (do_ == "detach") {
      // An associated object becomes a port of its own (consumed).
      CAPSA_ASSIGN_OR_RETURN(Capability cap, take(step.at("cap")));
      auto port = cap.detach();
      put(step.at("cap"), std::move(cap));
      if (!port) return std::unexpected(port.error());
      std::string value = "rights " + hex(port->rights());
      keep(step, std::move(*port));
      return value;
    }
    if (do_ == "read_bypassing_sdk") {
      // fs.File.Read naming the object id of `cap` (released or not), sent
      // on its port past the SDK's own refusal, by a raw client on a
      // duplicate of the socket: the supervisor's answer.
      auto it = caps_.find(step.at("cap"));
      if (it == caps_.end()) return capsa::make_error(Errc::kInvalidArgument, "no capability named so");
      Capability& cap = it->second;
      const capsa::Interface* file = ctx_.registry()->find(capsa::interfaces::kFile);
      if (file == nullptr) return capsa::make_error(Errc::kNotFound, "fs.File is not known");
      capsa::Client raw(capsa::Port(capsa::Fd(::dup(cap.fd().get()))), cap.interface());
      auto& fbb = raw.payload_builder();
      fbb.Finish(fs::CreateReadRequest(fbb, -1, step.at("max").get<std::uint32_t>()));
      CAPSA_TRY(raw.call(capsa::CallTarget{cap.object_id(), false, file}, 0, raw.payload_bytes()));
      return std::string("answered");
    }
    if (do_ == "state") {
      auto it = caps_.find(step.at("cap"));
      if (it == caps_.end()) return capsa::make_error(Errc::kInvalidArgument, "no capability named so");
      return std::string(capability_state_name(it->second.state()));
    }
    if (do_ == "attenuate") {
      std::vector<std::string> names = step.at("methods");
      std::vector<std::string_view> methods(names.begin(), names.end());
      CAPSA_ASSIGN_OR_RETURN(Capability cap, take(step.at("cap")));
      auto narrow = ctx_.attenuate(std::move(cap), methods);  // consumed either way
      if (!narrow) return std::unexpected(narrow.error());
      std::string value = "rights " + hex(narrow->rights());
      keep(step, std::move(*narrow));
      return value;
    }
    if (do_ == "ask_revoke") {
      CAPSA_TRY(log_.write(LogSink::Level::kInfo, "please revoke " + step.at("interface").get<std::string>()));
      return std::string();
    }
    if (do_ == "log") {
      std::string text;
      for (int i = 0; i < step.value("repeat", 1); ++i) text += step.at("text").get<std::string>();
      CAPSA_TRY(log_.write(LogSink::Level::kInfo, text));
      return std::string();
    }
    if (do_ == "send_garbage") {
      // Bypasses the SDK: the raw port, then the supervisor's verdict.
      CAPSA_ASSIGN_OR_RETURN(Capability cap, take(step.at("cap")));
      capsa::Port port = cap.release();
      constexpr std::string_view garbage = "this is not a capsa envelope";
      CAPSA_TRY(port.send(std::as_bytes(std::span(garbage.data(), garbage.size()))));
      auto answer = port.receive();
      if (answer) return std::string("answered");
      return std::string(capsa::errc_name(answer.error().code));
    }
    return capsa::make_error(Errc::kInvalidArgument, "unknown step " + do_);
  }

  LogSink& log() { return log_; }

 private:
  Result<std::string> directory(const json& step, const std::string& do_) {
    CAPSA_ASSIGN_OR_RETURN(Capability cap, take(step.at("cap")));
    CAPSA_ASSIGN_OR_RETURN(Directory dir, Directory::wrap(std::move(cap)));
    Result<std::string> out = std::string();
    const std::string path = step.at("path");
    if (do_ == "list") {
      auto l = dir.list(path);
      if (!l) out = std::unexpected(l.error());
      for (std::size_t i = 0; l && i < l->entries.size(); ++i) *out += (i ? " " : "") + entry(l->entries[i]);
    } else if (do_ == "open_file") {
      auto fd = dir.open_file(path);
      if (!fd) out = std::unexpected(fd.error());
      std::string text(64 * 1024, '\0');
      ssize_t n = fd ? ::read(fd->get(), text.data(), text.size()) : 0;
      if (fd) *out = quoted(std::string_view(text.data(), n > 0 ? static_cast<std::size_t>(n) : 0));
    } else {
      auto f = step.value("associated", false) ? dir.open_associated(path) : dir.open(ctx_, path);
      if (!f) out = std::unexpected(f.error());
      if (f) keep(step, std::move(f->capability()));
    }
    put(step.at("cap"), std::move(dir.capability()));
    return out;
  }

  void keep(const json& step, Capability cap) { put(step.value("as", ""), std::move(cap)); }
  void put(const std::string& name, Capability cap) {
    caps_.erase(name);
    caps_.emplace(name, std::move(cap));
  }
  // The capability saved under `name`, out of the map (put() it back).
  Result<Capability> take(const std::string& name) {
    auto node = caps_.extract(name);
    if (!node) return capsa::make_error(Errc::kInvalidArgument, "no capability named " + name);
    return std::move(node.mapped());
  }

  Context ctx_;
  LogSink log_;
  std::map<std::string, Capability> caps_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: conformance_runner STEPS\n");
    return 2;
  }
  json steps = json::parse(argv[1], nullptr, false);
  if (!steps.is_array()) {
    std::fprintf(stderr, "conformance_runner: STEPS is not a JSON array\n");
    return 2;
  }
  auto ctx = Context::from_fd();
  if (!ctx) return 1;
  auto log = LogSink::get(*ctx, "log");
  if (!log) return 1;
  Runner runner(std::move(*ctx), std::move(*log));
  int n = 0;
  for (const json& step : steps) {
    auto r = runner.run(step);
    std::string result = r ? (r->empty() ? "ok" : "ok " + *r)
                           : "error " + std::string(capsa::errc_name(r.error().code));
    auto w = runner.log().write(LogSink::Level::kInfo,
                                "step " + std::to_string(++n) + " " + step.at("do").get<std::string>() + ": " + result);
    if (!w) return 1;
  }
  return 0;
}
