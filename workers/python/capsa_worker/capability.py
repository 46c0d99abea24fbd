"""A capability: a port, the interface served on its other end, and the
rights reported for it; or an associated object on such a port
(docs/PROTOCOL.md, section 8): its own interface, rights and object id,
and the port, its call ids and its order, shared with the port's
capability and the port's other objects. Calls are blocking; threads may
call on one port's capabilities at once: each answer is routed to its
caller by call id.

States, as in the C++ SDK (workers/sdk/capability.h): LIVE; REVOKED (the
peer closed the port: the supervisor revoked it, or the service is gone -
a worker cannot tell the two apart); BROKEN (the peer sent a bad message:
we closed the port); RELEASED (we closed or released it, or passed it on).
An object ends with its port: REVOKED, BROKEN, or RELEASED when we closed
the port's own capability.
"""
import enum
import os
import threading
import weakref

import flatbuffers

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


class _Pending:
    """A call in flight: what its answer must carry, and the answer."""

    def __init__(self, obj, control, method, where):
        self.object, self.control, self.method, self.where = obj, control, method, where
        self.message = None
        # Its object was released (or its caller gave up): the answer is
        # still checked when it comes, then dropped (PROTOCOL section 8).
        self.dropped = False


class _Link:
    """One port and everything that shares it: the port's own capability
    and the associated objects issued on it. Owns the port: it closes when
    the port's capability is closed, when the peer is gone or sends a bad
    message (Mojo's rule: we stop trusting that peer), or when the last
    reference to every capability on it is gone.

    One lock guards the state and every send (so calls leave in the order
    they were made); the socket is read outside it by one caller at a
    time, which routes what it reads to the waiting callers by call id."""

    def __init__(self, port, schema):
        self.port = port
        self.schema = schema
        self.cond = threading.Condition(threading.Lock())
        self.next_id = 1
        self.pending = {}  # call id -> _Pending
        self.reading = False
        self.state = State.LIVE  # of the port
        self.error = None  # why it ended (CapsaError), for the callers still waiting
        self.members = weakref.WeakSet()  # the live capabilities on this port
        # Ids of objects collected while the lock was held: their Release
        # goes with the next message on the port (or never, if it closes).
        self.deferred = []

    # Everything below runs with self.cond held.

    def send(self, packet, fds=()):
        self.flush_deferred()
        self.port.send(packet, fds)

    def flush_deferred(self):
        while self.deferred and self.state == State.LIVE:
            obj = self.deferred.pop()
            self.port.send(_release_event(self.schema, obj))

    def end(self, state, error, fire):
        """The port is done: closed (or shut down under a blocked reader,
        which closes it), and every capability on it ends in `state`.
        Callbacks to run once the lock is released are added to `fire`."""
        if self.state != State.LIVE:
            return
        self.state, self.error = state, error
        if self.reading:
            self.port.shutdown()  # wakes the reader; it closes the port
        else:
            self.port.close()
        self.deferred.clear()
        for cap in list(self.members):
            cap._set_state(state, fire)
        self.cond.notify_all()

    def wait(self, p, call_id, fire):
        """Until the answer to `call_id` is in p.message, reading the port
        when nobody else is. CapsaError when the port ends first or the
        call is dropped (its object released). A reader whose call is
        dropped goes on reading until a packet comes (the serving side
        answers every call, so the dropped answer does), then leaves."""
        while p.message is None:
            if p.dropped:
                raise CapsaError(Errc.CLOSED, f"{p.where}: the object was released during the call")
            if self.state != State.LIVE:
                raise _ended_error(self.state, self.error, p.where)
            if self.reading:
                self.cond.wait()
                continue
            self.reading = True
            self.cond.release()
            try:
                got = self.port.receive()
            except CapsaError as e:
                got = e
            finally:
                self.cond.acquire()
                self.reading = False
                # Wakes every waiter: one may read next, and those whose
                # answer route() files below see it once we let go of the
                # lock (we hold it from here until the next read).
                self.cond.notify_all()
            if self.state != State.LIVE:  # ended while we read: ours to close
                self.port.close()
                if not isinstance(got, CapsaError):
                    for fd in got[1]:
                        _close(fd)
                continue
            if isinstance(got, CapsaError):
                state = State.REVOKED if got.code == Errc.CLOSED else State.BROKEN
                self.end(state, got, fire)
                continue
            self.route(*got, fire)
        self.pending.pop(call_id, None)

    def route(self, data, fds, fire):
        """One packet to the call it answers, checked against that call
        first: call id in flight, same method, object and control, the
        payload against the reply table. Else the port is broken."""
        try:
            msg, payload_type = wire.parse(self.schema, data, fds, {wire.Kind.REPLY, wire.Kind.ERROR})
        except CapsaError as e:
            self.end(State.BROKEN, e, fire)
            return
        p = self.pending.get(msg.call_id)
        try:
            if p is None:
                raise CapsaError(Errc.BAD_MESSAGE, f"answer to call {msg.call_id}, which is not in flight")
            want = (p.method.ordinal, p.object, p.control)
            if (msg.method, msg.object, msg.control) != want:
                raise CapsaError(Errc.BAD_MESSAGE, f"{p.where}: answer to call {msg.call_id} method {msg.method} "
                                 f"object {msg.object}{' control' if msg.control else ''}, expected "
                                 f"method {want[0]} object {want[1]}{' control' if want[2] else ''}")
            if msg.kind != wire.Kind.ERROR:
                wire.check_payload(self.schema, msg, p.method.reply, payload_type, p.where)
        except CapsaError as e:
            msg.close()
            self.end(State.BROKEN, e, fire)
            return
        if p.dropped:  # a released object's answer: expected, and nobody wants it
            del self.pending[msg.call_id]
            msg.close()
            return
        p.message = msg


def _ended_error(state, error, where):
    if state == State.REVOKED:
        return CapsaError(Errc.REVOKED, f"{where}: revoked (the port is closed)")
    if state == State.BROKEN and error is not None:
        return error if error.message.startswith(where) else error.with_context(where)
    return CapsaError(Errc.CLOSED, f"{where}: the port is closed")


def _release_event(schema, obj):
    m = schema.interface("capsa.Object").method("Release")
    return wire.build(wire.Kind.EVENT, 0, m.ordinal, m.request.type_hash, _empty_table(),
                      object=obj, control=True)


def _empty_table():
    """A table with no fields: ReleaseRequest, DetachRequest."""
    b = flatbuffers.Builder(16)
    b.StartObject(0)
    b.Finish(b.EndObject())
    return bytes(b.Output())


def _close(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def _run(fire):
    for cb, state in fire:
        cb(state)


class Capability:
    def __init__(self, port, interface, rights, schema, name, _link=None, _object=0):
        """A port's capability (takes `port`), or with _link and _object an
        associated object on that link (Capability.object)."""
        self._link = _link or _Link(port, schema)
        self.interface = interface  # schema.Interface
        self.rights = rights
        self.name = name
        self.object_id = _object  # 0: the port's own capability
        self._schema = schema
        self._state = State.LIVE if self._link.state == State.LIVE else self._link.state
        self._on_closed = []
        self._link.members.add(self)

    @property
    def state(self):
        return self._state

    @property
    def _port(self):
        return self._link.port

    def object(self, object_id, interface, rights=None, name=None):
        """The associated object `object_id` that a reply on this port
        issued, as a Capability of `interface` (schema.Interface) on the
        same port. Its rights are unknown here unless given, so every
        method is allowed locally (as for an adopted port): the serving
        side enforces the real ones."""
        if not object_id:
            raise CapsaError(Errc.INVALID_ARGUMENT, "object id 0 is the port's own capability")
        return Capability(None, interface, ALL_RIGHTS if rights is None else rights, self._schema,
                          name or f"{self.name}#{object_id}", self._link, object_id)

    def fileno(self):
        return self._link.port.fileno()

    def on_closed(self, callback):
        """callback(state) runs once, when the capability stops being live."""
        if self._state != State.LIVE:
            callback(self._state)
        else:
            self._on_closed.append(callback)

    def close(self):
        """The port's capability: closes the port (the supervisor releases
        the grant's port) and so ends every object on it. An object:
        release()."""
        if self.object_id:
            self.release()
            return
        fire = []
        with self._link.cond:
            self._link.end(State.RELEASED, None, fire)
        _run(fire)

    def release(self):
        """An object: sends capsa.Object.Release (an Event: nothing to wait
        for); the port and its other capabilities are untouched. Answers to
        calls still in flight on it are dropped when they come, and those
        callers get CLOSED. The port's capability: close()."""
        if not self.object_id:
            self.close()
            return
        fire = []
        link = self._link
        with link.cond:
            if self._state != State.LIVE:
                return
            self._set_state(State.RELEASED, fire)
            for p in link.pending.values():
                if p.object == self.object_id:
                    p.dropped = True
            link.cond.notify_all()
            try:
                link.send(_release_event(self._schema, self.object_id))
            except CapsaError as e:
                link.end(State.REVOKED if e.code == Errc.CLOSED else State.BROKEN, e, fire)
        _run(fire)

    def detach(self):
        """The port's capability: the port's fd, to send in a message; the
        capability (and every object on the port) is released.
        An object: capsa.Object.Detach, a call: the object becomes a port
        of its own (it can then travel by SCM_RIGHTS), returned as a
        port-backed Capability of the same interface with the rights the
        reply reports; this object is RELEASED (its id is gone)."""
        if self.object_id:
            return self._detach_object()
        fire = []
        link = self._link
        with link.cond:
            if self._state != State.LIVE:
                raise self._not_live()
            if link.reading or link.pending:
                raise CapsaError(Errc.INVALID_ARGUMENT, f"grant {self.name}: calls in flight on its port")
            fd = link.port.detach()
            link.end(State.RELEASED, None, fire)
        _run(fire)
        return fd

    def _detach_object(self):
        from capsa import DetachReply
        reply = self._call(self._schema.interface("capsa.Object").method("Detach"), _empty_table(), (),
                           control=True)
        r = DetachReply.DetachReply.GetRootAs(reply.payload, 0)
        got = (r.Interface() or b"").decode("utf-8", "replace")
        if r.Port() is None or got != self.interface.name:
            reply.close()
            raise CapsaError(Errc.BAD_MESSAGE, f"{self.name}: Detach answered interface {got!r}"
                             f"{'' if r.Port() is not None else ' and no port'}, not {self.interface.name}")
        fd = reply.take(r.Port())
        fire = []
        with self._link.cond:
            self._set_state(State.RELEASED, fire)  # the id is gone: nothing to release
        _run(fire)
        return Capability(Port(fd), self.interface, r.Rights(), self._schema, self.name)

    def call(self, method, payload, handles=()):
        """Calls `method` (name) with `payload` (the request table's bytes)
        and `handles` [(HandleKind, fd)] (sent as copies: the caller still
        owns them). Returns a Reply; raises CapsaError: DENIED before
        sending for a method outside the rights, REVOKED when the port is
        closed under us, BAD_MESSAGE for a malformed reply (the port is then
        closed: BROKEN, with every object on it), CLOSED when this object
        is released during the call, or the code of the Error the peer
        sent."""
        m = self.interface.method(method)
        if m is None:
            raise CapsaError(Errc.INVALID_ARGUMENT, f"{self.interface.name} has no method {method}")
        if not self.rights >> m.ordinal & 1:
            raise CapsaError(Errc.DENIED, f"method {method} is not in the rights of grant {self.name}")
        return self._call(m, payload, handles)

    def _call(self, m, payload, handles, control=False):
        iface = "capsa.Object" if control else self.interface.name
        where = f"{iface}.{m.name}"
        fire = []
        link = self._link
        try:
            with link.cond:
                if self._state != State.LIVE:
                    raise self._not_live()
                call_id, link.next_id = link.next_id, link.next_id + 1
                packet = wire.build(wire.Kind.CALL, call_id, m.ordinal, m.request.type_hash, payload,
                                    [k for k, _ in handles], object=self.object_id, control=control)
                p = _Pending(self.object_id, control, m, where)
                try:
                    link.send(packet, [fd for _, fd in handles])
                except CapsaError as e:
                    if e.code == Errc.INVALID_ARGUMENT:
                        raise
                    link.end(State.REVOKED if e.code == Errc.CLOSED else State.BROKEN, e, fire)
                    raise _ended_error(link.state, e, where) from None
                link.pending[call_id] = p
                try:
                    link.wait(p, call_id, fire)
                except BaseException:
                    p.dropped = True  # an answer still to come is dropped
                    raise
                msg = p.message
                if msg.kind == wire.Kind.ERROR and msg.error_code == Errc.REVOKED and self.object_id:
                    # On an object: the object itself was revoked (or
                    # released) while the call waited; its port lives on.
                    self._set_state(State.REVOKED, fire)
        finally:
            _run(fire)
        if msg.kind == wire.Kind.ERROR:  # the peer's answer: the port stays live
            raise CapsaError(Errc(msg.error_code), msg.error_text)
        return Reply(msg)

    def _not_live(self):
        code = {State.REVOKED: Errc.REVOKED, State.BROKEN: Errc.BAD_MESSAGE}.get(self._state, Errc.CLOSED)
        return CapsaError(code, f"grant {self.name} is {self._state.value}")

    def _set_state(self, state, fire):
        """Called with the link's lock held; the callbacks run after it."""
        if self._state != State.LIVE:
            return
        self._state = state
        self._link.members.discard(self)
        fire.extend((cb, state) for cb in self._on_closed)
        self._on_closed = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # A collected object is released. Never blocks and never sends
        # from inside another send: the lock is only tried; when it is
        # held (by this thread, perhaps, if the collection runs in the
        # middle of a call), the Release waits for the next message on the
        # port. A collected port capability needs nothing: the port closes
        # when the last capability on it is gone.
        try:
            link = self._link
            if not self.object_id or self._state != State.LIVE or link.state != State.LIVE:
                return
            self._state = State.RELEASED
            link.deferred.append(self.object_id)
            if link.cond.acquire(blocking=False):
                try:
                    link.flush_deferred()
                except CapsaError:
                    pass  # the next caller sees the port's state
                finally:
                    link.cond.release()
        except Exception:  # interpreter shutdown: modules may be gone
            pass


ALL_RIGHTS = (1 << 64) - 1


def adopt_port(fd, interface, schema, name):
    """A Capability for a port received in a message (fd owned, checked).
    Its rights are unknown here, so every method is allowed locally (as the
    C++ SDK's Context::adopt): the serving side enforces the real ones."""
    return Capability(Port(fd), interface, ALL_RIGHTS, schema, name)
