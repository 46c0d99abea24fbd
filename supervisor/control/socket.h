// capsa — setting up the control socket's file safely (for server.h, and
// the address for client.h).
//
// listen_at(path):
//   - the directory of `path` must exist, be a directory and not be
//     writable by group or others unless it is sticky (/tmp): otherwise
//     another user could replace our socket with theirs and answer `capsa
//     audit` in our name;
//   - the socket is bound inside a fresh 0700 directory next to `path`,
//     given mode 0600 there, and then hard-linked to `path`: so it is never
//     reachable with a looser mode, not even for an instant, without
//     touching the process-wide umask (other threads create files too);
//     link() also fails if anything appeared at `path` meanwhile, so
//     nothing is ever replaced;
//   - an existing `path` that is not a socket (a file, a symlink) is
//     refused; a socket nobody listens on (a supervisor that crashed) is
//     removed; a socket somebody listens on is refused: we do not steal
//     another supervisor's control socket.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>
#include <utility>

#include "capabilities/error.h"
#include "capabilities/fd.h"

namespace capsa::supervisor {

// Splits "dir/name" ("name" alone: the current directory).
std::pair<std::string, std::string> split_path(const std::string& path);

// The address of the Unix socket at `path`. kInvalidArgument if `path` is
// empty or does not fit in sun_path (107 bytes).
Result<sockaddr_un> unix_address(const std::string& path);

// Creates `dir` (mode 0700) if missing, then checks it is a directory (not
// a symlink), owned by our euid, and not writable by group or others.
// kDenied naming what is wrong.
Result<void> ensure_private_dir(const std::string& dir);

// A listening socket (non-blocking, close-on-exec) and the
// identity of its file, so that its owner removes only its own file.
struct Listener {
  Fd fd;
  dev_t dev = 0;
  ino_t ino = 0;
};

// Binds and listens at `path` with `backlog`, as described above; `type`
// SOCK_SEQPACKET for the control socket, SOCK_STREAM for the metrics socket
// (metrics_server.h; a stale socket is probed with the same type). Errors:
// kInvalidArgument (path too long, directory missing), kDenied (an unsafe
// directory, something other than a socket at `path`), kFailed (another
// supervisor listens there; a syscall failed).
Result<Listener> listen_at(const std::string& path, int backlog, int type = SOCK_SEQPACKET);

}  // namespace capsa::supervisor
