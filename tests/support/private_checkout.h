// Test support: capsa as an operator keeps it in a private place — a clone
// under /root or a 0700 home — with the policies next to it:
//   <0700 dir>/capsa/build/sandbox/capsa-launcher
//   <0700 dir>/capsa/build/plugins/<programs>
//   <0700 dir>/capsa/examples/...
// Every directory down to the files is 0700 and owned by whoever runs the
// test; the files are 0755. As root, the sandbox's uid (65534) can enter none
// of it; as an unprivileged user, the sandbox has that user's identity.
#pragma once

#include <sys/types.h>

#include <string>

namespace capsa::testing {

class PrivateCheckout {
 public:
  // Copies the launcher at `launcher` to build/sandbox/capsa-launcher.
  explicit PrivateCheckout(const std::string& launcher);
  ~PrivateCheckout();
  PrivateCheckout(const PrivateCheckout&) = delete;
  PrivateCheckout& operator=(const PrivateCheckout&) = delete;

  // The checkout: <0700 dir>/capsa.
  const std::string& root() const { return root_; }
  std::string launcher() const { return root_ + "/build/sandbox/capsa-launcher"; }
  std::string plugins() const { return root_ + "/build/plugins"; }
  // Copies `from` into build/plugins (mode 0755); returns the copy's path.
  std::string add_program(const std::string& from) const;
  // Makes root()/rel (and its parents) with `mode`; returns its path.
  std::string make_dir(const std::string& rel, mode_t mode = 0700) const;
  // Copies `from` to root()/rel with `mode`; returns the copy's path.
  std::string add_file(const std::string& from, const std::string& rel, mode_t mode = 0644) const;

 private:
  std::string top_;   // the mkdtemp directory
  std::string root_;  // top_ + "/capsa"
};

}  // namespace capsa::testing
