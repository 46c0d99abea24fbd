// A small real worker program: takes its bootstrap port from fd 3 with the
// SDK, lists its grants, reads a file through its fs.Directory grant and
// logs what it read. Exit codes say which step failed (child_test.cc).
#include <unistd.h>

#include <string>

#include "workers/sdk/builtins.h"
#include "workers/sdk/context.h"

int main() {
  using namespace capsa::worker;
  auto ctx = Context::from_fd();
  if (!ctx) return 10;
  auto grants = ctx->list();
  if (!grants || grants->empty()) return 11;
  auto docs = Directory::get(*ctx, "docs");
  if (!docs) return 12;
  auto fd = docs->open_file("a.txt");
  if (!fd) return 13;
  char buf[64];
  ssize_t n = ::read(fd->get(), buf, sizeof buf);
  if (n <= 0) return 14;
  auto log = LogSink::get(*ctx, "logs");
  if (!log) return 15;
  std::string line = "child read: " + std::string(buf, static_cast<std::size_t>(n));
  if (!log->write(LogSink::Level::kInfo, line)) return 16;
  auto missing = ctx->get("nope", "fs.Directory");
  if (missing || missing.error().code != capsa::Errc::kNotFound) return 17;
  return 0;
}
