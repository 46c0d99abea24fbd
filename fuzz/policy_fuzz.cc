// libFuzzer target: the policy loader (policy/loader.h load_policy_text),
// fed any text, with `capsa check`'s outputs checked. Asserts, per input:
//   - no crash, no sanitizer report;
//   - a refused policy has at least one diagnostic, and diagnostics_json()
//     (`capsa check --json` on failure) is valid JSON: {"valid": false,
//     "errors": [...]} with one entry per diagnostic;
//   - an accepted policy's explain_json() (`capsa check --json`) is a valid
//     JSON object and explain_text() is not empty;
//   - no fd stays open (the loader opens programs, binds and seccomp
//     profiles to check them).
// ${bin} names a scratch directory of executable placeholders with the
// example programs' names and the text is named as if in examples/, so the
// seeds (examples/*.json) load and the fuzzer starts from accepted policies
// with every file-system check on. Limit: one fixed set of defines.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "fuzz/check.h"
#include "policy/builtin_apis.h"
#include "policy/explain.h"
#include "policy/loader.h"

namespace {

using namespace capsa::policy;
using capsa::fuzz::fail;
using capsa::fuzz::parse_or_abort;

struct World {
  ApiCatalog catalog = builtin_api_catalog();
  LoadOptions options;
  std::string bin;

  World() {
    char dir[] = "/tmp/capsa-fuzz-bin-XXXXXX";
    if (::mkdtemp(dir) == nullptr) fail("policy_fuzz", "mkdtemp");
    bin = dir;
    for (const char* p : {"wordcount", "asker", "counter", "hostile", "reader", "pywordcount"}) {
      std::string path = bin + "/" + p;
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
      if (fd < 0) fail("policy_fuzz", "cannot create a placeholder program");
      ::close(fd);
    }
    options.defines["bin"] = bin;
  }
};

World& world() {
  static World w;
  return w;
}

// Loads `text` and checks what `capsa check` would print for it.
void check(World& w, std::string_view text) {
  auto p = load_policy_text(text, CAPSA_EXAMPLES_DIR "/fuzz.json", w.catalog, w.options);
  if (p) {
    if (!parse_or_abort(explain_json(*p), "explain_json").is_object()) {
      fail("policy_fuzz", "explain_json is not an object");
    }
    if (explain_text(*p).empty()) fail("policy_fuzz", "explain_text is empty");
    return;
  }
  if (p.error().empty()) fail("policy_fuzz", "refused without a diagnostic");
  auto j = parse_or_abort(diagnostics_json(p.error()), "diagnostics_json");
  if (!j.is_object() || j.value("valid", true) || !j.contains("errors") || !j["errors"].is_array() ||
      j["errors"].size() != p.error().size()) {
    fail("policy_fuzz", "diagnostics_json does not list every diagnostic");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  World& w = world();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  int free_fd = capsa::fuzz::lowest_free_fd();
  check(w, text);
  if (capsa::fuzz::lowest_free_fd() != free_fd) fail("policy_fuzz", "an fd leaked");
  return 0;
}
