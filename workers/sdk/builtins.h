// capsa worker SDK — typed wrappers for the built-in APIs.
//
// Each wraps a Capability checked to be its interface, builds the request,
// and turns the validated reply into plain C++ values. Semantics and errors
// of every method are documented in capabilities/interfaces/*.fbs; on top
// of those, each wrapper returns kBadMessage when a reply lacks a field the
// method promises (a missing handle, a missing name), and kRevoked/kDenied
// as Capability::call does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/fd.h"
#include "capabilities/interfaces/log_sink.h"
#include "workers/sdk/capability.h"
#include "workers/sdk/context.h"

namespace capsa::worker {

// Values of fs.EntryType.
enum class EntryType : std::uint8_t { kUnknown = 0, kRegular = 1, kDirectory = 2, kSymlink = 3, kOther = 4 };

struct DirEntry {
  std::string name;
  EntryType type = EntryType::kUnknown;
  std::uint64_t size = 0;
};

struct Listing {
  std::vector<DirEntry> entries;
  bool truncated = false;  // the service has more than one reply holds
};

class File;

// fs.Directory: a directory tree scoped by the policy's `root`.
class Directory {
 public:
  // Get(name) from the bootstrap port, checked to be fs.Directory.
  static Result<Directory> get(Context& ctx, std::string_view grant);
  // kNotFound unless `cap` is an fs.Directory.
  static Result<Directory> wrap(Capability cap);

  // A read-only fd of a regular file (not revocable once handed over).
  Result<Fd> open_file(std::string_view path);
  // The file as an fs.File capability (revocable, metered).
  Result<File> open(Context& ctx, std::string_view path);
  // The same as an associated object on this directory's port
  // (docs/PROTOCOL.md section 8): no new port or fd, counted against the
  // worker's `objects` limit instead of its ports; used exactly like the
  // File above, released when destroyed; File::capability().detach() makes
  // it a port of its own to pass on.
  Result<File> open_associated(std::string_view path);
  Result<Listing> list(std::string_view path);

  Capability& capability() noexcept { return cap_; }

 private:
  explicit Directory(Capability cap) : cap_(std::move(cap)) {}
  Capability cap_;
};

// fs.File: one open read-only file served over a port.
class File {
 public:
  static Result<File> wrap(Capability cap);
  // Up to `max_bytes` (1..kMaxReadBytes) at `offset`, or at the position
  // when offset is -1. Returns fewer bytes only at end of file.
  Result<std::vector<std::byte>> read(std::uint32_t max_bytes, std::int64_t offset = -1);
  Result<std::uint64_t> size();
  Capability& capability() noexcept { return cap_; }

 private:
  explicit File(Capability cap) : cap_(std::move(cap)) {}
  Capability cap_;
};

// log.Sink: the worker's log, one call per line (back-pressure included).
class LogSink {
 public:
  using Level = interfaces::log_sink::Level;
  static Result<LogSink> get(Context& ctx, std::string_view grant);
  static Result<LogSink> wrap(Capability cap);
  // kInvalidArgument for text over kMaxLogTextBytes (nothing sent).
  Result<void> write(Level level, std::string_view text);
  Capability& capability() noexcept { return cap_; }

 private:
  explicit LogSink(Capability cap) : cap_(std::move(cap)) {}
  Capability cap_;
};

}  // namespace capsa::worker
