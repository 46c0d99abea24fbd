// capsa — the audit log's file: appending whole lines, and rotating at a
// size cap (AuditLog decides what is written; this decides where).
//
// Rotation, when a line would take the file past `max_bytes` (and the file
// holds anything): PATH.(keep-1) is renamed to PATH.keep (replacing the
// oldest, which is then gone), ..., PATH to PATH.1, and a fresh PATH is
// created (O_EXCL | O_NOFOLLOW, mode 0600: a file or link planted at the
// name in between is refused, never written through). It happens only
// between two lines, so no line is ever cut across files; a single line
// longer than the cap gets a file of its own. Names are resolved against
// the directory opened at open(), so a rename of the directory does not
// scatter the rotated files.
//
// Limits: one supervisor per file. Another process appending to PATH keeps
// its fd on the renamed file (its lines stay whole, that file may exceed
// the cap). The size is what this process wrote plus the size at open.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa::supervisor {

// Defaults of `capsa run --audit-max-bytes` and `--audit-keep`, and of
// AuditLog::Options: at most 64 MiB in PATH and 4 rotated files (320 MiB),
// like auditd's max_log_file_action = ROTATE with num_logs = 5.
inline constexpr std::uint64_t kDefaultAuditMaxBytes = 64ull << 20;
inline constexpr std::uint32_t kDefaultAuditKeep = 4;
// The smallest cap accepted (0 means none): below it most lines would
// rotate.
inline constexpr std::uint64_t kMinAuditMaxBytes = 64ull << 10;
inline constexpr std::uint32_t kMaxAuditKeep = 1000;

class AuditFile {
 public:
  // Opens PATH for appending (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
  // O_NOCTTY, 0600). `max_bytes` 0: never rotate; else at least
  // kMinAuditMaxBytes, and `keep` 1..kMaxAuditKeep (kInvalidArgument).
  static Result<AuditFile> open(const std::string& path, std::uint64_t max_bytes, std::uint32_t keep);

  // True if `bytes` more would take the file past the cap.
  bool full_for(std::size_t bytes) const noexcept {
    return max_bytes_ != 0 && size_ > 0 && size_ + bytes > max_bytes_ + slack_;
  }
  // Renames and reopens (see above). On failure the current file stays in
  // use and the cap is moved max_bytes further, so that a persistent
  // failure costs one attempt per max_bytes, not one per line.
  Result<void> rotate();
  // Writes all of `line` (a short write is completed); `torn` says whether
  // a failure left part of it in the file.
  Result<void> append(std::string_view line, bool& torn);
  Result<void> sync();

  const std::string& path() const noexcept { return path_; }
  std::uint32_t keep() const noexcept { return keep_; }
  std::uint64_t max_bytes() const noexcept { return max_bytes_; }

 private:
  AuditFile() = default;
  std::string rotated_name(std::uint32_t n) const { return base_ + "." + std::to_string(n); }

  std::string path_;
  std::string base_;  // file name in dir_
  Fd dir_;            // O_PATH of PATH's directory
  Fd fd_;
  std::uint64_t size_ = 0;
  std::uint64_t max_bytes_ = 0;
  std::uint64_t slack_ = 0;  // grown by each failed rotation
  std::uint32_t keep_ = 0;
};

}  // namespace capsa::supervisor
