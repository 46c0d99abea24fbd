// capsa — handles: kernel objects attached to a message.
//
// A handle's kind is declared by the sender (in the envelope) and checked
// against the kernel object on receipt: a hostile peer cannot pass a pipe as
// a port, a writable file as a read-only one, or an unsealed memfd as a blob
// whose contents could change under the reader.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa {

// Values are on the wire (docs/PROTOCOL.md).
enum class HandleKind : std::uint8_t {
  kPort = 0,  // AF_UNIX SOCK_SEQPACKET socket
  kFile = 1,  // regular file opened O_RDONLY
  kBlob = 2,  // memfd sealed with F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK (and F_SEAL_SEAL)
};

std::string_view handle_kind_name(HandleKind kind) noexcept;

// A handle owned by this process.
struct Handle {
  HandleKind kind = HandleKind::kPort;
  Fd fd;
};

// Checks that `fd` is the kernel object `kind` promises (a port must also
// not be a listening socket). kBadMessage when it
// is not, with a message naming what it is instead ("declared file but the fd
// is a pipe").
Result<void> check_handle_kind(const Fd& fd, HandleKind kind);

// Creates a blob: a memfd holding `data`, sealed against write, grow, shrink
// and further sealing. The returned fd is read-only in effect for everyone.
Result<Fd> make_blob(std::span<const std::byte> data, std::string_view name);

// Largest blob BlobView::map accepts by default. A worker can create a
// sealed sparse memfd of any size for free; whoever reads it pays.
inline constexpr std::size_t kMaxBlobBytes = 256u << 20;

// Maps a received (already checked) blob read-only. The mapping is a
// snapshot that cannot change: the seals forbid writes by anyone.
// kBadMessage for a blob larger than `max_bytes`.
class BlobView {
 public:
  static Result<BlobView> map(const Fd& blob, std::size_t max_bytes = kMaxBlobBytes);
  BlobView(BlobView&& other) noexcept;
  BlobView& operator=(BlobView&& other) noexcept;
  BlobView(const BlobView&) = delete;
  BlobView& operator=(const BlobView&) = delete;
  ~BlobView();
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

 private:
  BlobView(const std::byte* data, std::size_t size) noexcept : data_(data), size_(size) {}
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// Opens `path` as a file handle: O_RDONLY | O_CLOEXEC | O_NOFOLLOW, and it
// must be a regular file.
Result<Fd> open_file_handle(std::string_view path);

}  // namespace capsa
