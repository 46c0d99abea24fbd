// capsa — resolving a worker's path inside a directory grant.
//
// A worker names files of an fs.Directory grant by a path relative to the
// grant's root, sent as a flatbuffers string (explicit length, so it may
// contain NUL bytes). Two layers stand between that string and the host
// filesystem:
//
// 1. Lexical checks, before any syscall (check_relative_path): the path must
//    be non-empty, at most kMaxPathBytes, without NUL bytes (a C API would
//    silently truncate "a\0/../../etc" to "a"), relative (no leading '/'),
//    and without any ".." component, even one that would stay inside
//    ("a/../b"): no legitimate client needs it, and refusing it makes the
//    rule easy to audit. "." components and repeated '/' are harmless.
//
// 2. The kernel (openat2, Linux >= 5.6) resolves the path from the root fd
//    with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS:
//    - BENEATH: resolution may never leave the root, whatever the path (the
//      kernel enforces it during the walk, so a concurrent rename cannot
//      race a check we made earlier). Chosen over RESOLVE_IN_ROOT, which
//      silently clamps ".." and absolute symlinks to the root: a worker
//      asking for "../secret" must get an error we can audit, not a
//      different file that happens to carry the same name.
//    - NO_SYMLINKS: no symlink is followed, anywhere in the path, wherever
//      it points (inside the root too). A grant is a tree of real files;
//      symlinks placed by someone else are not part of what was granted.
//    - NO_MAGICLINKS (implied, stated anyway): /proc/PID/fd/N, cwd, root,
//      exe are never followed, even if a grant's root is under /proc.
//    Mount points inside the root are crossed (no RESOLVE_NO_XDEV): a
//    policy author who grants a tree with mounts in it grants those too.
//
// Error kinds, as seen by the worker: kDenied for anything refused by rule
// (every lexical failure, a symlink, an escape, a permission failure, a
// wrong file type, a write); kNotFound when a well-formed path inside the
// root does not exist (ENOENT, or a non-directory used as one). Messages
// never contain host paths.
#pragma once

#include <cstdint>
#include <string_view>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa::supervisor::services {

// Longest path a worker may send, in bytes. Far below PATH_MAX: a grant is
// a small tree, and the bound caps the work one request can cause.
inline constexpr std::size_t kMaxPathBytes = 1024;

// The lexical checks of layer 1. kDenied with the reason.
Result<void> check_relative_path(std::string_view path);

// Layer 2 alone: openat2(root, path, flags | O_CLOEXEC) with the resolve
// flags above, errno mapped to the kinds above. `path` must not contain NUL
// (kDenied otherwise). Exposed so tests can show that the kernel refuses an
// escape even without layer 1; services call resolve() instead.
Result<Fd> openat2_beneath(const Fd& root, std::string_view path, std::uint64_t flags);

// Both layers: an O_PATH fd for `path` under `root`. Opening with O_PATH
// has no side effects (a device's open routine does not run, a fifo does
// not block), so the caller can fstat it and decide before opening for
// real.
Result<Fd> resolve(const Fd& root, std::string_view path);

// Both layers, except that a symlink as the LAST component is not refused:
// the O_PATH fd then refers to the link itself (O_NOFOLLOW; openat2 returns
// the link for O_PATH | O_NOFOLLOW even under RESOLVE_NO_SYMLINKS). For
// stat-like operations that report a symlink without following it (fs.Directory
// Stat). A symlink anywhere before the last component is still refused, and
// nothing is ever followed, so the result is always an inode under the root
// (a link's target is never looked at). Do not read or open through the
// returned fd: it may be a link whose target is outside the root.
Result<Fd> resolve_no_follow(const Fd& root, std::string_view path);

}  // namespace capsa::supervisor::services
