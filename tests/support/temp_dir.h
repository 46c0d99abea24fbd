// Test support: a scratch directory that removes itself.
//
//   capsa::testing::TempDir dir;                       // /tmp/capsa-test-Ab12Cd
//   std::string cfg = dir.write("etc/p.json", "{}");  // parents are created
//   std::string prog = dir.executable("bin/wc");       // "#!/bin/sh\nexit 0\n", mode 0755
//   std::string out = dir.mkdir("out");
//
// The directory is made by mkdtemp(3) under $TMPDIR (or /tmp), so it is
// private to this user (mode 0700) and its name cannot be predicted by another
// process. A test that needs a sandboxed worker of another uid to read it
// must widen the mode itself.
#pragma once

#include <string>
#include <string_view>

namespace capsa::testing {

class TempDir {
 public:
  // `prefix` names the directory so a leftover one says which test made it.
  // A directory that cannot be made or a file that cannot be written aborts
  // the test binary with a message: nothing the test checks could be trusted.
  explicit TempDir(std::string_view prefix = "capsa-test");
  // Removes the whole tree, also read-only subdirectories a test left behind.
  // Never throws; what cannot be removed is reported on stderr.
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The absolute path, without a trailing slash.
  const std::string& path() const { return path_; }
  // `path() + "/" + name`; creates nothing.
  std::string file(std::string_view name) const;

  // Writes `content` to `name` (relative; parent directories are created),
  // replacing any previous file. Returns the absolute path.
  std::string write(std::string_view name, std::string_view content) const;
  // Writes an executable (mode 0755) script; returns its absolute path.
  std::string executable(std::string_view name, std::string_view script = "#!/bin/sh\nexit 0\n") const;
  // Creates `name` and its parents; returns its absolute path.
  std::string mkdir(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace capsa::testing
