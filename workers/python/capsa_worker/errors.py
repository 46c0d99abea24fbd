"""The one error type of the Python SDK: CapsaError with a code.

The codes and their names are those of capabilities/error.h: 1..6 travel on
the wire (docs/PROTOCOL.md, section 5) and never change; the others are
local to this process and are never sent.
"""
import enum


class Errc(enum.IntEnum):
    BAD_MESSAGE = 1  # the peer sent something that failed validation
    DENIED = 2  # not allowed by the capability's rights or the policy
    REVOKED = 3  # the capability was revoked
    NOT_FOUND = 4  # no such grant, method, file, ...
    OVERLOADED = 5  # a limit on calls in flight, queue, rate or budget
    FAILED = 6  # the operation failed
    CLOSED = 64  # the peer end of the port is gone
    WOULD_BLOCK = 65  # non-blocking port: nothing to do right now
    INVALID_ARGUMENT = 66  # the caller misused an API (our side, not the peer)

    @property
    def label(self):
        """The name the C++ SDK prints (errc_name): "bad message", "denied"."""
        return self.name.lower().replace("_", " ")

    @property
    def on_wire(self):
        return 1 <= self.value <= 6


class CapsaError(Exception):
    """An error a caller can act on: `code` says what happened, the text
    says it to a person. str() reads like the C++ Error::to_string():
    "denied: method List is not in the rights of grant texts"."""

    def __init__(self, code, message, errno=0):
        super().__init__(message)
        self.code = Errc(code)
        self.message = message
        self.errno = errno

    def __str__(self):
        return f"{self.code.label}: {self.message}" if self.message else self.code.label

    def with_context(self, context):
        """The same error with "context: " before its message; the code is
        kept, so a caller still acts on the original kind."""
        return CapsaError(self.code, f"{context}: {self.message}", self.errno)
