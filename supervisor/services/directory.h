// capsa — the operations of an fs.Directory grant: open a file for reading,
// list a directory, stat an entry. Paths are resolved by path_resolver.h
// (relative, no "..", no symlinks, never outside the root).
//
// Everything is read-only for now: a request to write is refused with
// kDenied, whatever the grant says. When writing is added it will need its
// own right, and O_CREAT/O_TRUNC handling under the same resolver.
//
// Only regular files are opened and only directories listed. A fifo, a
// socket, a character or block device is refused with kDenied before it is
// opened for real: the path is first opened O_PATH (no side effect, never
// blocks) and checked with fstat; then it is opened O_RDONLY | O_NONBLOCK |
// O_NOCTTY and checked again to be the same inode, so a swap between the
// two opens (by another process that can write in the tree) is refused and
// cannot make the supervisor block on a fifo.
//
// Synchronous: each call does a few syscalls on the host filesystem, which
// may be slow (network filesystems); the supervisor runs these on the
// reactor's pool, not on the loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa::supervisor::services {

// At most this many entries are returned by one list(). A directory with
// more is listed partially, with `truncated` set: the result is then the
// first entries in name order (a deterministic prefix of the full sorted
// listing, whatever order the filesystem returns names in). The rest are not
// reachable by paging yet: that would need a cursor in the interface. The
// bound caps the memory one request can cost: entries * (255-byte name +
// a few fields), about 1 MiB. (The fs.Directory service asks for fewer:
// capsa::interfaces::kMaxListEntries, so that a reply fits one packet.)
inline constexpr std::size_t kMaxListEntries = 4096;

enum class EntryType : std::uint8_t { kFile, kDirectory, kSymlink, kOther };
std::string_view entry_type_name(EntryType type) noexcept;

enum class Access : std::uint8_t { kRead, kWrite };

struct EntryInfo {
  EntryType type = EntryType::kOther;
  std::uint64_t size = 0;  // bytes, for regular files; 0 otherwise
  std::int64_t mtime_sec = 0;
  std::int64_t mtime_nsec = 0;  // 0..999999999

  // The modification time in nanoseconds since the epoch, saturated to the
  // int64 range (a file dated after 2262 or before 1677 reads as the bound,
  // never as a wrapped-around value).
  std::int64_t modified_ns() const noexcept;
};

// Type, size and mtime of an open fd (fstat). For a file already opened
// through a DirectoryScope (fs.File's Stat).
Result<EntryInfo> stat_fd(const Fd& fd);

struct DirEntry {
  std::string name;  // one component: no '/', no NUL; otherwise arbitrary bytes
  EntryInfo info;
};

struct Listing {
  std::vector<DirEntry> entries;  // sorted by name (bytewise)
  bool truncated = false;
};

class DirectoryScope {
 public:
  // Opens the grant's root (a host path from the policy, trusted) as an
  // O_PATH directory fd. kNotFound / kDenied / kFailed as the host says.
  static Result<DirectoryScope> open(const std::string& host_path);
  // Takes a directory fd (O_PATH or O_RDONLY) already open on the root.
  explicit DirectoryScope(Fd root) : root_(std::move(root)) {}

  // A read-only fd on the regular file at `path`, blocking mode, ready to
  // be sent as a file handle. kDenied for a write or anything not a
  // regular file (directories included), plus the resolver's errors.
  Result<Fd> open_file(std::string_view path, Access access = Access::kRead) const;

  // The entries of the directory at `path` ("." is the root itself), "."
  // and ".." left out, sorted by name. Entry types are those of the entries
  // themselves (a symlink is listed as kSymlink, never followed). With more
  // than `max_entries` entries, the `max_entries` first in name order and
  // `truncated`. Every entry is read (getdents64) to find those, so the
  // cost is linear in the directory's size while memory stays bounded by
  // `max_entries`; an entry removed while listing is left out.
  Result<Listing> list(std::string_view path, std::size_t max_entries = kMaxListEntries) const;

  // Type, size and mtime of `path`, which may be of any type (stat opens
  // nothing but an O_PATH fd). A symlink as the last component is reported
  // as kSymlink (its own mtime, size 0), never followed: the link is part
  // of the granted tree, its target is not. A symlink earlier in the path
  // is refused like everywhere else.
  Result<EntryInfo> stat(std::string_view path) const;

  const Fd& root() const noexcept { return root_; }

 private:
  Fd root_;
};

}  // namespace capsa::supervisor::services
