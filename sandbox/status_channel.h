// capsa::sandbox — reading the launcher's status records. Internal.
#pragma once

#include <optional>

#include "capabilities/error.h"
#include "capabilities/fd.h"
#include "capabilities/port.h"
#include "sandbox/launcher_protocol.h"

namespace capsa::sandbox::detail {

struct ReceivedRecord {
  StatusRecord record;
  Fd fd;  // the one fd that came with it, if any
};

// The status socket as a Port that accepts nothing larger than a record.
Port status_port(Fd socket);

// Reads one record through Port::receive (so the packet rules are the
// ports': truncation, oversize, fd ownership). std::nullopt on end-of-stream
// (the launcher is gone; an empty packet is not end-of-stream, it is a bad
// record). kWouldBlock when the port is non-blocking and empty. kBadMessage
// for a packet of the wrong size, truncated control data, an fd where none
// belongs (or none where one does) or an unknown type; every fd that came
// with it is closed.
Result<std::optional<ReceivedRecord>> read_status_record(Port& port);

}  // namespace capsa::sandbox::detail
