// Test support: read what a pipe or socket holds, as one string.
#pragma once

#include <string>

#include "capabilities/fd.h"

namespace capsa::testing {

// Everything until end of file. On a non-blocking fd, EAGAIN is waited out
// with poll(2), so this returns only once every writer has closed: use it
// when the test needs the whole output. A read or poll failure ends the
// text with "<read failed>" or "<poll failed>".
std::string read_to_eof(const Fd& fd);

// What a non-blocking fd holds right now: stops at end of file or EAGAIN and
// never waits (the output of a process that has already ended).
std::string read_available(const Fd& fd);

}  // namespace capsa::testing
