// Random mutations of the example policies never crash, hang or grow the
// loader without bound: each result is either a Policy or a list of
// diagnostics, each of a known class and positioned inside the text it
// blames (an operator must be able to find every error). Deterministic
// (fixed seeds), so a failure reproduces; run it in the CAPSA_SANITIZE build
// to catch memory errors, not only crashes.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "policy/builtin_apis.h"
#include "policy/explain.h"
#include "policy/jsonc.h"
#include "policy/loader.h"
#include "policy/seccomp_profile.h"
#include "policy/test_util.h"

namespace capsa::policy {
namespace {

// Tokens that steer mutations toward interesting places.
using namespace std::string_view_literals;
constexpr std::string_view kTokens[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "/*", "//", "\n", "null", "true",
    "-1", "1e99", "18446744073709551616", "\"64Q\"", "\"${\"", "${bin}", "$$", "\"*\"",
    "\"fs.Directory\"", "\"capsa.Bootstrap\"", "\"../x\"", "\"\"", "\"limits\"", "\"rights\"",
    "\"constraints\"", "\"channels\"", "\"workers\"", "\xff", "\0"sv};

// Contents for a string literal: syntax stays valid, semantics break.
constexpr std::string_view kStrings[] = {
    "", "*", "Delete", "Open", "fs.Directory", "log.Sink", "capsa.Bootstrap", "nope.Api", "../x",
    "/nonexistent", "relative/path", "${undefined}", "${bin}", "$${x}", "${", "asker", "counter",
    "wordcount", "64Q", "99999999999T", "kill", "close_port", "explode", "name", "root", "read_only",
    "limits", "memory", "A=B", "noequals", "opne", "getrandom", "/", "/tmp"};

// Replaces the contents of a random string literal (a key or a value).
std::string swap_string(std::string s, std::mt19937_64& rng) {
  for (int tries = 0; tries < 8; ++tries) {
    std::size_t open = s.find('"', static_cast<std::size_t>(rng() % (s.size() + 1)));
    if (open == std::string::npos) continue;
    std::size_t close = s.find('"', open + 1);
    if (close == std::string::npos) continue;
    std::string_view with = kStrings[rng() % std::size(kStrings)];
    return s.replace(open + 1, close - open - 1, with);
  }
  return s;
}

// Every kind of diagnostic the reader, the schema check and the builder can
// give, by a fragment of its fixed text. A message matching none is a new
// class: add it here once its wording and position were checked.
constexpr std::string_view kKnownClasses[] = {
    // reader (policy/jsonc.cc)
    "expected ", "unterminated", "unexpected text after", "control character", "escape",
    "duplicate key", "trailing comma", "not allowed", "nesting deeper", "too many values", "NUL",
    "larger than", "invalid UTF-8",
    // schema check and types (policy/schema_check.cc)
    "unknown field", "must be", "needs ", "has no ",
    // names, references, values (policy/loader.cc, builder*.cc)
    "unknown API", "unknown interface", "unknown constraint", "unknown worker", "names unknown",
    "names no API", "is not in ", "duplicate ", "twice", "out of range", "does not exist",
    "is not a directory", "not an executable", "absolute path", "undefined variable",
    "is invalid; use", "lists no rights", "already grants", "implicitly", "not served",
    "same name", "to itself", "defines no workers", "cannot read",
    // what the sandbox refuses (sandbox/host_file.cc, sandbox/spec.cc via builder_checks.cc)
    "is not a regular file", "mount point the sandbox makes", "\"..\" component",
    "the sandbox would refuse",
    // seccomp profiles (policy/seccomp_profile.cc)
    "missing ", "syscall", "seccomp", "libseccomp"};

bool known_class(std::string_view message) {
  for (std::string_view fragment : kKnownClasses) {
    if (message.find(fragment) != std::string_view::npos) return true;
  }
  return false;
}

// Lines of `text`, as the reader counts them (a column may point one past
// the end of a line: "expected a value, found the end of the file").
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  for (std::size_t at = 0;;) {
    std::size_t nl = text.find('\n', at);
    lines.push_back(text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at));
    if (nl == std::string_view::npos) return lines;
    at = nl + 1;
  }
}

// Empty if `d` is a known class at a position inside `text` (named `file`);
// otherwise what is wrong with it.
std::string misplaced(const Diagnostic& d, std::string_view file, std::string_view text) {
  if (d.message.empty()) return "empty message";
  if (!known_class(d.message)) return "unknown class of diagnostic";
  if (!d.where.known()) {
    // The builder holds no position for the policy as a whole.
    return d.message == "the policy defines no workers" ? "" : "no position";
  }
  if (d.where.file != file) return "names another file";
  const auto lines = lines_of(text);
  if (d.where.line < 1 || d.where.line > lines.size()) return "line outside the text";
  if (d.where.column < 1 || d.where.column > lines[d.where.line - 1].size() + 1) {
    return "column outside its line";
  }
  return {};
}

// Checks every diagnostic of a rejected text (fatal on the first bad one).
void expect_positioned(const Diagnostics& diags, std::string_view file, std::string_view text) {
  ASSERT_FALSE(diags.empty()) << "rejected without a reason:\n" << text;
  for (const Diagnostic& d : diags) {
    std::string why = misplaced(d, file, text);
    ASSERT_TRUE(why.empty()) << why << ": " << d.to_string() << "\nin:\n" << text;
  }
}

std::string mutate(std::string s, std::mt19937_64& rng) {
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    std::size_t at = pick(s.size() + 1);
    switch (rng() % 6) {
      case 0: if (!s.empty()) s.erase(pick(s.size()), 1 + pick(8)); break;
      case 1: s.insert(at, 1, static_cast<char>(rng() % 256)); break;
      case 2: s.insert(at, std::string(kTokens[pick(std::size(kTokens))])); break;
      case 3: if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng() % 256); break;
      case 4: {  // duplicate a span (nesting, repeated members)
        std::size_t from = pick(s.size()), len = pick(64);
        s.insert(at, s.substr(from, len));
        break;
      }
      default: if (at < s.size()) s.resize(at); break;  // truncate
    }
  }
  return s;
}

TEST(Mutation, ExamplesNeverCrashTheLoader) {
  testing::TempDir bin;
  for (const char* p : {"wordcount", "asker", "counter", "hostile", "reader"}) bin.executable(p);
  LoadOptions opt;
  opt.defines["bin"] = bin.path();
  opt.defines["policy_dir"] = CAPSA_EXAMPLES_DIR;
  ApiCatalog catalog = builtin_api_catalog();
  std::vector<std::string> seeds;
  for (const auto& e : std::filesystem::directory_iterator(CAPSA_EXAMPLES_DIR)) {
    if (e.path().extension() == ".json") seeds.push_back(*json::read_file(e.path().string()));
  }
  ASSERT_FALSE(seeds.empty());
  std::mt19937_64 rng(20240601);
  int valid = 0, invalid = 0, semantic = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string& seed = seeds[static_cast<std::size_t>(i) % seeds.size()];
    // Half byte-level (reader), half string swaps (schema and builder checks).
    std::string text = i % 2 == 0 ? mutate(seed, rng) : swap_string(swap_string(seed, rng), rng);
    auto p = load_policy_text(text, "m.json", catalog, opt);
    if (p) {
      ++valid;
      EXPECT_FALSE(explain_text(*p).empty());
      EXPECT_TRUE(json::parse(explain_json(*p), "out.json")) << text;
    } else {
      ++invalid;
      expect_positioned(p.error(), "m.json", text);
      if (HasFatalFailure()) return;
      // Syntax errors come alone; anything else got past the parser.
      if (p.error().size() > 1 || json::parse(text, "m.json")) ++semantic;
      EXPECT_TRUE(json::parse(diagnostics_json(p.error()), "out.json")) << text;
    }
  }
  // Both outcomes occur: the mutations reach the semantic checks.
  EXPECT_GT(valid, 0);
  EXPECT_GT(invalid, 1000);
  EXPECT_GT(semantic, 800);
  std::printf("mutations: %d valid, %d invalid (%d past the parser)\n", valid, invalid, semantic);
}

TEST(Mutation, SeccompProfilesNeverCrashTheImporter) {
  const std::string seed = R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0}]}]})";
  std::mt19937_64 rng(7);
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string text = mutate(seed, rng);
    auto r = import_seccomp_profile_text(text, "p.json");
    if (r) {
      ++accepted;
    } else {
      expect_positioned(r.error(), "p.json", text);
      if (HasFatalFailure()) return;
    }
  }
  // Both outcomes occur, or the mutations test nothing.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 2000);
}

}  // namespace
}  // namespace capsa::policy
