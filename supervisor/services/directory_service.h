// capsa — the fs.Directory service: a directory tree scoped to the policy's
// `root` (capabilities/interfaces/fs_directory.fbs is the spec).
//
// Paths are resolved by DirectoryScope (directory.h, path_resolver.h) with
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, so "..",
// absolute paths and symlinks cannot leave the root; every refusal is
// `denied`, a path that does not exist inside the root is `not found`.
// On top of the resolver, the wire rules of the .fbs: a missing or empty
// path names the root; a path over capsa::interfaces::kMaxPathBytes (4096)
// is a bad message. The resolver's own, tighter rule then refuses paths
// over its kMaxPathBytes (1024) with `denied`.
//
// Every filesystem operation runs off the loop (Call::off_loop): the host
// filesystem may be slow (NFS, FUSE) and must not stall other workers.
//
// Methods:
//   Open      a regular file as a new fs.File capability (file_service.h),
//             minted as a child grant of this one with all of fs.File's
//             rights: revoking this grant revokes it.
//   OpenFile  a regular file as a read-only `file` handle plus its size. The
//             whole size is charged to the grant's byte budget up front: once
//             the fd is handed over, reads through it cannot be metered.
//   List      sorted entries, at most interfaces::kMaxListEntries per reply
//             and no more than fit kListReplyBudget bytes; `truncated` when
//             the directory has more (the first ones by name are sent).
//   Stat      type, size and mtime; a symlink is reported, not followed.
//
// The grant's prepared state (ServiceFactory::prepare) is the DirectoryScope
// opened once at worker start: every Get of the grant and every clone share
// it (one O_PATH fd on the root, closed when the last user goes).
// The policy's `read_only` (default true) can only be true in effect today:
// the interface has no method that writes, so `read_only: false` grants
// nothing more (docs/SUPERVISOR.md, "Built-in services").
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include <flatbuffers/flatbuffers.h>

#include "capabilities/error.h"
#include "supervisor/services/dispatch.h"
#include "supervisor/services/service.h"
#include "supervisor/services/directory.h"

namespace capsa::supervisor::services {

// The most payload bytes one List reply may take. The same as the largest
// Read reply (interfaces::kMaxReadBytes), which the interfaces are designed
// to fit in one 64 KiB packet with its envelope. 512 entries with long names
// (up to 255 bytes each) would not fit: the cut is by size as well as count.
inline constexpr std::size_t kListReplyBudget = 60 * 1024;

// The path of an fs.Directory request by the wire rules (see above): "."
// for a missing or empty path; kBadMessage over interfaces::kMaxPathBytes.
// Everything else (NUL bytes, "..", absolute, length over the resolver's
// limit) is left to the resolver, which answers `denied`.
Result<std::string> request_path(const flatbuffers::String* path);

// Finishes `fbb` with an fs.ListReply holding the first entries of `listing`
// that fit (count and kListReplyBudget); `truncated` if any was left out or
// `listing` was already truncated.
void build_list_reply(flatbuffers::FlatBufferBuilder& fbb, const Listing& listing);

class DirectoryService final : public ServiceObject {
 public:
  explicit DirectoryService(std::shared_ptr<const DirectoryScope> scope)
      : scope_(std::move(scope)) {}

  void handle(Call call) override { methods().dispatch(*this, std::move(call)); }
  // The same tree (shared scope). Never nullptr.
  std::unique_ptr<ServiceObject> clone() const override {
    return std::make_unique<DirectoryService>(scope_);
  }

  // Open, OpenFile, List, Stat by ordinal (dispatch.h); checked against
  // fs.Directory in directory_service_test.cc.
  static const MethodTable<DirectoryService, 4>& methods();

 private:
  void open(Call call);
  void open_file(Call call);
  void list(Call call);
  void stat(Call call);

  std::shared_ptr<const DirectoryScope> scope_;
};

// The policy side of fs.Directory: constraints `root` (kHostDir, required)
// and `read_only` (kBool, default "true"); prepare() opens the root.
ServiceFactory directory_service_factory();

}  // namespace capsa::supervisor::services
