// capsa — the fs.File service: one open, read-only regular file served
// over a port (capabilities/interfaces/fs_file.fbs is the spec).
//
// An fs.File is only ever made by fs.Directory.Open (directory_service.h):
// there is no policy factory for it, because a policy has nothing to open a
// file from. It is minted as a child grant of the directory grant, so
// revoking the directory revokes every File opened through it.
//
// State: the file (an O_RDONLY fd opened by DirectoryScope::open_file,
// never handed to the worker) and this port's position. Every read is a
// pread at an explicit offset, so the open file's own offset is never used
// and one fd can be shared by a grant and its attenuated copies (clone()),
// each with its own position. Sharing instead of dup() means a clone cannot
// fail for lack of fds and costs no fd.
//
// Threading: reads, seeks and stats touch the host filesystem, which may
// block (NFS, FUSE), so they run off the loop (Call::off_loop). The work
// holds its own reference to the fd, so a revoke that destroys this object
// while a pread runs cannot close the fd under it (nor let the number be
// reused for another file mid-read). The position lives in a shared cell
// that only the loop thread touches: it is read when a call is dispatched
// and written in the continuation; calls on one port are dispatched one at
// a time, so nothing else can move it in between.
//
// Limits: Read returns at most capsa::interfaces::kMaxReadBytes per call
// (max_bytes 1..kMaxReadBytes, else bad message); each reply's bytes count
// against the grant's byte budget (the supervisor charges replies).
// Known limit: if a positional read (offset -1) is refused by the byte
// budget after it ran, the position has already advanced (the service
// cannot see whether the reply went out).
#pragma once

#include <cstdint>
#include <memory>

#include "capabilities/fd.h"
#include "supervisor/services/dispatch.h"
#include "supervisor/services/service.h"

namespace capsa::supervisor::services {

class FileService final : public ServiceObject {
 public:
  // `file` must be an O_RDONLY fd on a regular file (what
  // DirectoryScope::open_file returns). The position starts at 0.
  explicit FileService(Fd file);

  void handle(Call call) override { methods().dispatch(*this, std::move(call)); }
  // The same open file with its own position, starting at 0 (not the
  // original's position: the copy is usually handed to someone else, who
  // should see the file from its start and learn nothing of how far the
  // original's holder read). Never nullptr.
  std::unique_ptr<ServiceObject> clone() const override;

  // Read, Seek, Stat by ordinal (dispatch.h); checked against fs.File in
  // file_service_test.cc.
  static const MethodTable<FileService, 3>& methods();

 private:
  struct Cursor {
    std::int64_t position = 0;  // loop thread only
  };
  FileService(std::shared_ptr<const Fd> file, std::shared_ptr<Cursor> cursor)
      : file_(std::move(file)), cursor_(std::move(cursor)) {}

  void read(Call call);
  void seek(Call call);
  void stat(Call call);

  std::shared_ptr<const Fd> file_;
  std::shared_ptr<Cursor> cursor_;
};

}  // namespace capsa::supervisor::services
