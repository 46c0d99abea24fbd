// my-plugin — a plugin to copy: it lists the directory its policy grants as
// "data", reads the first line of hello.txt through it, and says both on the
// log it is granted as "log". It reaches nothing else: fd 3 (its bootstrap
// port) is its only way out of the sandbox.
//
// Exit status: 0 done, 1 a capability call failed (the reason on stderr,
// which capsa shows as the worker's output).
#include <unistd.h>

#include <string>

#include "workers/sdk/builtins.h"
#include "workers/sdk/plugin.h"

using namespace capsa::worker;

constexpr Plugin kPlugin{"my-plugin"};

int main() {
  auto start = kPlugin.start();  // the bootstrap port and the "log" grant
  if (!start) return kExitFailed;
  auto& [ctx, log] = *start;

  auto data = Directory::get(ctx, "data");  // fs.Directory, scoped by the policy's root
  if (!data) return kPlugin.fail("grant \"data\"", data.error());
  auto listing = data->list(".");
  if (!listing) return kPlugin.fail("List", listing.error());
  (void)log.write(LogSink::Level::kInfo, "data holds " + std::to_string(listing->entries.size()) + " entries");

  auto fd = data->open_file("hello.txt");  // a read-only fd, opened by the supervisor
  if (!fd) return kPlugin.fail("OpenFile hello.txt", fd.error());
  char buf[256];
  ssize_t n = ::read(fd->get(), buf, sizeof buf);
  if (n < 0) return kExitFailed;
  std::string text(buf, static_cast<std::size_t>(n));
  (void)log.write(LogSink::Level::kInfo, "hello.txt says: " + text.substr(0, text.find('\n')));
  return kExitOk;
}
