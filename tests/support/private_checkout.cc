#include "tests/support/private_checkout.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace capsa::testing {
namespace {

namespace fs = std::filesystem;

// Test set-up: a failure here leaves nothing sensible to test.
void must(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

PrivateCheckout::PrivateCheckout(const std::string& launcher) {
  char tmpl[] = "/tmp/capsa-checkout-XXXXXX";
  must(::mkdtemp(tmpl) != nullptr);  // 0700
  top_ = tmpl;
  root_ = top_ + "/capsa";
  make_dir("build/sandbox");
  make_dir("build/plugins");
  add_file(launcher, "build/sandbox/capsa-launcher", 0755);
}

PrivateCheckout::~PrivateCheckout() {
  std::error_code ec;
  fs::remove_all(top_, ec);
}

std::string PrivateCheckout::make_dir(const std::string& rel, mode_t mode) const {
  std::string at = root_;
  must(::mkdir(at.c_str(), 0700) == 0 || errno == EEXIST);
  std::size_t from = 0;
  while (from <= rel.size()) {
    std::size_t slash = rel.find('/', from);
    if (slash == std::string::npos) slash = rel.size();
    at += "/" + rel.substr(from, slash - from);
    bool last = slash == rel.size();
    must(::mkdir(at.c_str(), last ? mode : 0700) == 0 || errno == EEXIST);
    from = slash + 1;
  }
  must(::chmod(at.c_str(), mode) == 0);
  return at;
}

std::string PrivateCheckout::add_file(const std::string& from, const std::string& rel,
                                      mode_t mode) const {
  std::string to = root_ + "/" + rel;
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  must(!ec && ::chmod(to.c_str(), mode) == 0);
  return to;
}

std::string PrivateCheckout::add_program(const std::string& from) const {
  return add_file(from, "build/plugins/" + fs::path(from).filename().string(), 0755);
}

}  // namespace capsa::testing
