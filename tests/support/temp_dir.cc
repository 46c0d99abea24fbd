#include "tests/support/temp_dir.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>

namespace capsa::testing {
namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "capsa::testing::TempDir: %s\n", what.c_str());
  std::abort();
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string tmpl = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) broken("mkdtemp " + tmpl + " failed");
  path_ = std::move(tmpl);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir::~TempDir() {
  if (path_.empty()) return;  // moved from
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (!ec) return;
  // A test that made a directory read-only (to check a refusal) leaves a tree
  // remove_all cannot enter: give the owner its rights back, then retry. A
  // directory is opened after its mode is fixed (the iterator enters it on
  // the next increment).
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  ec.clear();
  std::filesystem::remove_all(path_, ec);
  if (ec) std::fprintf(stderr, "capsa::testing::TempDir: cannot remove %s: %s\n", path_.c_str(), ec.message().c_str());
}

std::string TempDir::file(std::string_view name) const { return path_ + "/" + std::string(name); }

std::string TempDir::write(std::string_view name, std::string_view content) const {
  std::filesystem::path p = file(name);
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) broken("cannot create " + p.parent_path().string() + ": " + ec.message());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) broken("cannot write " + p.string());
  return p.string();
}

std::string TempDir::executable(std::string_view name, std::string_view script) const {
  std::string p = write(name, script);
  if (::chmod(p.c_str(), 0755) != 0) broken("cannot chmod " + p);
  return p;
}

std::string TempDir::mkdir(std::string_view name) const {
  std::string p = file(name);
  std::error_code ec;
  std::filesystem::create_directories(p, ec);
  if (ec) broken("cannot create " + p + ": " + ec.message());
  return p;
}

}  // namespace capsa::testing
