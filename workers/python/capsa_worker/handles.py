"""Handles: the kernel objects attached to a message, and their checks.

A handle's kind is declared in the envelope and checked against the kernel
object on receipt (docs/PROTOCOL.md, section 4, step 6), so a peer cannot
pass a pipe where a port is promised or a writable file where a read-only
one is.
"""
import enum
import fcntl
import os
import socket
import stat

from .errors import CapsaError, Errc

BLOB_SEALS = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK


class HandleKind(enum.IntEnum):
    PORT = 0  # AF_UNIX SOCK_SEQPACKET socket
    FILE = 1  # regular file opened O_RDONLY
    BLOB = 2  # memfd sealed against write, grow and shrink

    @property
    def label(self):
        return self.name.lower()


def _seals(fd):
    """The memfd's seals, or None when fd is not a memfd (EINVAL)."""
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError:
        return None


def check_kind(fd, kind):
    """Raises CapsaError(BAD_MESSAGE) unless fd is what `kind` promises."""
    st = os.fstat(fd)
    if kind == HandleKind.PORT:
        if not stat.S_ISSOCK(st.st_mode):
            raise CapsaError(Errc.BAD_MESSAGE, "declared port but the fd is not a socket")
        s = socket.socket(fileno=os.dup(fd))
        try:
            ok = (s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_UNIX and
                  s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_SEQPACKET)
        finally:
            s.close()
        if not ok:
            raise CapsaError(Errc.BAD_MESSAGE, "declared port but the socket is not AF_UNIX SOCK_SEQPACKET")
        return
    if not stat.S_ISREG(st.st_mode):
        raise CapsaError(Errc.BAD_MESSAGE, f"declared {kind.label} but the fd is not a regular file")
    seals = _seals(fd)
    if kind == HandleKind.BLOB or seals is not None:
        if seals is None or seals & BLOB_SEALS != BLOB_SEALS:
            raise CapsaError(Errc.BAD_MESSAGE, f"declared {kind.label} but the memfd is not sealed")
    if kind == HandleKind.FILE:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        if flags & os.O_PATH or flags & os.O_ACCMODE != os.O_RDONLY:
            raise CapsaError(Errc.BAD_MESSAGE, "declared file but the fd is not open read-only")


def make_blob(data, name="capsa-blob"):
    """A sealed memfd holding `data`: nobody, us included, can change it
    once sent. Returns the fd; the caller owns it."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, BLOB_SEALS | fcntl.F_SEAL_SEAL)
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_blob(fd, limit=1 << 30):
    """The whole content of a received blob (checked sealed on receipt, so
    its size cannot change under us)."""
    size = os.fstat(fd).st_size
    if size > limit:
        raise CapsaError(Errc.FAILED, f"blob of {size} bytes is over the limit of {limit}")
    return os.pread(fd, size, 0)
