// capsa::sandbox — reading the launcher's status records. Internal.
#pragma once

#include <optional>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "sandbox/launcher_protocol.h"

namespace capsa::sandbox::detail {

struct ReceivedRecord {
  StatusRecord record;
  Fd fd;  // the one fd that came with it, if any
};

// Reads one record. std::nullopt on end-of-stream (the launcher is gone).
// kWouldBlock when the socket is non-blocking and empty. kBadMessage for a
// packet of the wrong size, truncated control data, more than one fd or an
// unknown type; every fd that came with it is closed.
Result<std::optional<ReceivedRecord>> read_status_record(const Fd& socket);

}  // namespace capsa::sandbox::detail
