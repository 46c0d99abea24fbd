#include "supervisor/services/file_service.h"

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "capabilities/interfaces/builtin.h"
#include "capabilities/sys.h"
#include "fs_file_generated.h"
#include "supervisor/services/directory.h"

namespace capsa::supervisor::services {
namespace {

constexpr std::int64_t kMaxOffset = std::numeric_limits<std::int64_t>::max();

struct ReadResult {
  std::vector<std::uint8_t> data;
  bool eof = false;
};

// Reads up to `max_bytes` at `offset`. One byte more than asked is read
// and dropped: if it exists, the read did not reach the end (`eof` false),
// without a second syscall that a concurrent writer could race. pread is
// repeated after a short read, so fewer bytes than asked come back only at
// the end of the file (the .fbs promise; a short pread also happens on
// network filesystems and on signals).
Result<ReadResult> read_at(const Fd& file, std::int64_t offset, std::uint32_t max_bytes) {
  ReadResult out;
  std::size_t want = std::size_t{max_bytes} + 1;
  // The kernel refuses (EINVAL) a pread whose offset + count overflows
  // loff_t; no file can extend that far, so the read just stops short.
  if (static_cast<std::uint64_t>(kMaxOffset - offset) < want) {
    want = static_cast<std::size_t>(kMaxOffset - offset);
  }
  out.data.resize(want);
  std::size_t got = 0;
  while (got < want) {
    CAPSA_ASSIGN_OR_RETURN(const ssize_t n, sys("pread", "fs.File", [&] {
                             return ::pread(file.get(), out.data.data() + got, want - got,
                                            static_cast<off_t>(offset + static_cast<std::int64_t>(got)));
                           }));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.eof = got <= max_bytes;
  out.data.resize(out.eof ? got : max_bytes);
  return out;
}

}  // namespace

FileService::FileService(Fd file)
    : file_(std::make_shared<const Fd>(std::move(file))), cursor_(std::make_shared<Cursor>()) {}

std::unique_ptr<ServiceObject> FileService::clone() const {
  return std::unique_ptr<ServiceObject>(new FileService(file_, std::make_shared<Cursor>()));
}

const MethodTable<FileService, 3>& FileService::methods() {
  static constexpr MethodTable<FileService, 3> kTable{interfaces::kFile,
                                                     {{{0, "Read", &FileService::read},
                                                       {1, "Seek", &FileService::seek},
                                                       {2, "Stat", &FileService::stat}}}};
  return kTable;
}

void FileService::read(Call call) {
  const auto* req = call.request().payload_as<fs::ReadRequest>();
  const std::uint32_t max_bytes = req->max_bytes();
  const std::int64_t offset = req->offset();
  if (max_bytes == 0 || max_bytes > interfaces::kMaxReadBytes) {
    return call.fail(Errc::kBadMessage, "fs.File.Read: max_bytes is " + std::to_string(max_bytes) +
                                            "; it must be 1.." +
                                            std::to_string(interfaces::kMaxReadBytes));
  }
  if (offset < -1) {
    return call.fail(Errc::kBadMessage, "fs.File.Read: offset is " + std::to_string(offset) +
                                            "; it must be >= 0, or -1 for the position");
  }
  const bool at_position = offset == -1;
  const std::int64_t start = at_position ? cursor_->position : offset;
  call.off_loop<Result<ReadResult>>(
      [file = file_, start, max_bytes] { return read_at(*file, start, max_bytes); },
      [cursor = cursor_, at_position](Call done, Result<ReadResult> result) {
        if (!result) return done.fail(result.error());
        // On the loop thread: no other call on this port ran since
        // dispatch, so `position` is still `start`. It moves only if the
        // bytes reached the worker (not when the byte budget refused them).
        auto sent = done.reply([&](flatbuffers::FlatBufferBuilder& fbb) {
          auto data = fbb.CreateVector(result->data);
          fbb.Finish(fs::CreateReadReply(fbb, data, result->eof));
        });
        if (sent.has_value() && at_position) cursor->position += static_cast<std::int64_t>(result->data.size());
      });
}

void FileService::seek(Call call) {
  const auto* req = call.request().payload_as<fs::SeekRequest>();
  const std::int64_t offset = req->offset();
  const fs::Whence whence = req->whence();
  // The enum is not enforced on the wire (flatbuffers verifies bytes, not
  // ranges): an unknown whence is refused, never treated as a default.
  if (whence != fs::Whence::Set && whence != fs::Whence::Current && whence != fs::Whence::End) {
    return call.fail(Errc::kBadMessage, "fs.File.Seek: whence " +
                                            std::to_string(static_cast<unsigned>(whence)) +
                                            " is not Set, Current or End");
  }
  // The size is needed for End and for the bound: fstat, off the loop.
  call.off_loop<Result<EntryInfo>>(
      [file = file_] { return stat_fd(*file); },
      [cursor = cursor_, offset, whence](Call done, Result<EntryInfo> info) {
        if (!info) return done.fail(info.error());
        const auto size = static_cast<std::int64_t>(
            std::min<std::uint64_t>(info->size, static_cast<std::uint64_t>(kMaxOffset)));
        std::int64_t base = 0;
        if (whence == fs::Whence::Current) base = cursor->position;
        if (whence == fs::Whence::End) base = size;
        std::int64_t target = 0;
        if (__builtin_add_overflow(base, offset, &target) || target < 0 || target > size) {
          return done.fail(Errc::kBadMessage,
                           "fs.File.Seek: the result is outside 0.." + std::to_string(size) +
                               " (the file's size)");
        }
        cursor->position = target;
        done.reply([&](flatbuffers::FlatBufferBuilder& fbb) {
          fbb.Finish(fs::CreateSeekReply(fbb, static_cast<std::uint64_t>(target)));
        });
      });
}

void FileService::stat(Call call) {
  call.off_loop<Result<EntryInfo>>(
      [file = file_] { return stat_fd(*file); },
      [](Call done, Result<EntryInfo> info) {
        if (!info) return done.fail(info.error());
        done.reply([&](flatbuffers::FlatBufferBuilder& fbb) {
          fbb.Finish(fs::CreateFileStatReply(fbb, info->size, info->modified_ns()));
        });
      });
}

}  // namespace capsa::supervisor::services
