"""A capability: a port, the interface served on its other end, and the
rights reported for it. Calls are blocking, one at a time per capability
(Python plugins are small; the C++ SDK has the asynchronous form).

States, as in the C++ SDK (workers/sdk/capability.h): LIVE; REVOKED (the
peer closed the port: the supervisor revoked it, or the service is gone -
a worker cannot tell the two apart); BROKEN (the peer sent a bad message:
we closed the port); RELEASED (we closed it, or passed it on).
"""
import enum

from . import wire
from .errors import CapsaError, Errc
from .port import Port


class State(enum.Enum):
    LIVE = "live"
    REVOKED = "revoked"
    BROKEN = "broken"
    RELEASED = "released"


class Reply:
    """A validated reply: the payload (the reply table's bytes, for the
    generated GetRootAs) and its handles, which the caller takes by index."""

    def __init__(self, message):
        self.payload = message.payload
        self._message = message

    def take(self, index):
        return self._message.take(index)

    def close(self):
        self._message.close()


class Capability:
    def __init__(self, port, interface, rights, schema, name):
        self._port = port
        self.interface = interface  # schema.Interface
        self.rights = rights
        self.name = name
        self.state = State.LIVE
        self._schema = schema
        self._next_id = 1
        self._on_closed = []

    def fileno(self):
        return self._port.fileno()

    def on_closed(self, callback):
        """callback(state) runs once, when the capability stops being live."""
        if self.state != State.LIVE:
            callback(self.state)
        else:
            self._on_closed.append(callback)

    def close(self):
        """Releases our port: the supervisor releases the grant's port."""
        self._end(State.RELEASED)

    def detach(self):
        """The port's fd, to send in a message; the capability is released."""
        fd = self._port.detach()
        self._end(State.RELEASED)
        return fd

    def call(self, method, payload, handles=()):
        """Calls `method` (name) with `payload` (the request table's bytes)
        and `handles` [(HandleKind, fd)] (sent as copies: the caller still
        owns them). Returns a Reply; raises CapsaError: DENIED before
        sending for a method outside the rights, REVOKED when the port is
        closed under us, BAD_MESSAGE for a malformed reply (the port is then
        closed: BROKEN), or the code of the Error the peer sent."""
        m = self.interface.method(method)
        if m is None:
            raise CapsaError(Errc.INVALID_ARGUMENT, f"{self.interface.name} has no method {method}")
        if not self.rights >> m.ordinal & 1:
            raise CapsaError(Errc.DENIED, f"method {method} is not in the rights of grant {self.name}")
        self._check_live()
        call_id, self._next_id = self._next_id, self._next_id + 1
        packet = wire.build(wire.Kind.CALL, call_id, m.ordinal, m.request.type_hash, payload,
                            [k for k, _ in handles])
        where = f"{self.interface.name}.{method}"
        try:
            self._port.send(packet, [fd for _, fd in handles])
            data, fds = self._port.receive()
            msg, payload_type = wire.parse(self._schema, data, fds, {wire.Kind.REPLY, wire.Kind.ERROR})
        except CapsaError as e:
            raise self._failed(e, where) from None
        try:
            if msg.call_id != call_id or msg.method != m.ordinal:
                raise CapsaError(Errc.BAD_MESSAGE, f"{where}: answer to call {msg.call_id} "
                                 f"method {msg.method}, expected call {call_id} method {m.ordinal}")
            if msg.kind != wire.Kind.ERROR:
                wire.check_payload(self._schema, msg, m.reply, payload_type, where)
        except CapsaError as e:
            msg.close()
            raise self._failed(e, where) from None
        if msg.kind == wire.Kind.ERROR:  # the peer's answer: the port stays live
            raise CapsaError(Errc(msg.error_code), msg.error_text)
        return Reply(msg)

    def _check_live(self):
        if self.state == State.LIVE:
            return
        code = Errc.REVOKED if self.state == State.REVOKED else Errc.CLOSED
        if self.state == State.BROKEN:
            code = Errc.BAD_MESSAGE
        raise CapsaError(code, f"grant {self.name} is {self.state.value}")

    def _failed(self, e, where):
        # A closed peer is a revocation for us; a bad message breaks the
        # port (the C++ Client's rule, Mojo's: we stop trusting that peer).
        if e.code == Errc.CLOSED:
            self._end(State.REVOKED)
            return CapsaError(Errc.REVOKED, f"grant {self.name} was revoked (the port is closed)")
        if e.code == Errc.BAD_MESSAGE:
            self._end(State.BROKEN)
            return e if e.message.startswith(where) else e.with_context(where)
        return e

    def _end(self, state):
        if self.state != State.LIVE:
            return
        self.state = state
        self._port.close()
        callbacks, self._on_closed = self._on_closed, []
        for cb in callbacks:
            cb(state)


ALL_RIGHTS = (1 << 64) - 1


def adopt_port(fd, interface, schema, name):
    """A Capability for a port received in a message (fd owned, checked).
    Its rights are unknown here, so every method is allowed locally (as the
    C++ SDK's Context::adopt): the serving side enforces the real ones."""
    return Capability(Port(fd), interface, ALL_RIGHTS, schema, name)
