"""A port: one end of an AF_UNIX SOCK_SEQPACKET socket pair.

One message is one packet; its fds travel in one SCM_RIGHTS message. Every
fd that arrives is owned (in a list we close on every error path) before
anything else is looked at, so a hostile peer cannot grow our fd table by
sending junk.
"""
import array
import os
import select
import socket

from .errors import CapsaError, Errc
from .wire import MAX_HANDLES

MAX_PACKET_BYTES = 65536
_FD_SIZE = array.array("i").itemsize


class Port:
    def __init__(self, fd):
        """Takes ownership of fd (a checked port: handles.check_kind)."""
        self._sock = socket.socket(fileno=fd)

    def fileno(self):
        return self._sock.fileno() if self._sock else -1

    @property
    def closed(self):
        return self._sock is None

    def close(self):
        if self._sock:
            self._sock.close()
            self._sock = None

    def shutdown(self):
        """Wakes a thread blocked in receive() (it then sees the port
        closed); the fd stays ours until close()."""
        if self._sock:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def detach(self):
        """The fd, no longer owned by this Port (to send it in a message)."""
        fd, self._sock = self._sock.detach(), None
        return fd

    def send(self, packet, fds=()):
        """Sends one packet; the fds are copied by the kernel (the caller
        still owns its own). CapsaError(CLOSED) when the peer is gone."""
        if self._sock is None:
            raise CapsaError(Errc.CLOSED, "port is closed")
        if len(packet) > MAX_PACKET_BYTES:
            raise CapsaError(Errc.INVALID_ARGUMENT, f"packet of {len(packet)} bytes is over {MAX_PACKET_BYTES}")
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        try:
            self._sock.sendmsg([packet], anc, socket.MSG_NOSIGNAL)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise CapsaError(Errc.CLOSED, "the peer closed the port", e.errno) from None

    def receive(self):
        """Blocks for one packet: (bytes, [fds]). CapsaError(CLOSED) when
        the peer is gone; BAD_MESSAGE for a packet over the limits (its fds
        closed)."""
        if self._sock is None:
            raise CapsaError(Errc.CLOSED, "port is closed")
        try:
            data, anc, flags, _ = self._sock.recvmsg(
                MAX_PACKET_BYTES + 1, socket.CMSG_SPACE((MAX_HANDLES + 1) * _FD_SIZE),
                socket.MSG_CMSG_CLOEXEC)
        except ConnectionResetError as e:
            raise CapsaError(Errc.CLOSED, "the peer closed the port", e.errno) from None
        fds = []
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(cdata) - len(cdata) % _FD_SIZE
                fds.extend(array.array("i", cdata[:usable]))
        try:
            if flags & socket.MSG_TRUNC or len(data) > MAX_PACKET_BYTES:
                raise CapsaError(Errc.BAD_MESSAGE, f"packet over {MAX_PACKET_BYTES} bytes")
            if flags & socket.MSG_CTRUNC or len(fds) > MAX_HANDLES:
                raise CapsaError(Errc.BAD_MESSAGE, f"more than {MAX_HANDLES} fds")
            if not data and not fds and self._peer_gone():
                raise CapsaError(Errc.CLOSED, "the peer closed the port")
            if not data:
                raise CapsaError(Errc.BAD_MESSAGE, "empty packet")
        except CapsaError:
            for fd in fds:
                os.close(fd)
            raise
        return data, fds

    def _peer_gone(self):
        # A 0-byte read is also an empty packet; only POLLHUP/POLLRDHUP
        # say the peer is gone (PROTOCOL.md, section 1).
        p = select.poll()
        p.register(self._sock, select.POLLRDHUP)
        return any(ev & (select.POLLHUP | select.POLLRDHUP) for _, ev in p.poll(0))


def socketpair():
    """A new channel: two ports (e.g. to serve an interface in-process)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    return Port(a.detach()), Port(b.detach())

