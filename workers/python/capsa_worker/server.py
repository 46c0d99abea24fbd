"""Serving an interface on a port the worker holds (a channel end), the
Python counterpart of capabilities::Server. Blocking, one call at a time:
unread calls wait in the kernel's socket buffer, which is bounded.

Every call is validated as docs/PROTOCOL.md section 4 says before the
handler sees it. A call outside `rights` is answered `denied` and serving
goes on; a bad message runs `on_bad_message`: "close" (the default, Mojo's
rule) closes the port, "reply" answers `bad message` and serves on.
"""
from . import wire
from .errors import CapsaError, Errc
from .port import Port


class Call:
    """One validated call. Answer it exactly once, with reply() or error()
    (Server.serve() does for a handler that returns or raises)."""

    def __init__(self, server, msg, method):
        self.method = method  # schema.Method
        self.payload = msg.payload
        self.call_id = msg.call_id  # 0 for an event: no answer
        self._msg = msg
        self._server = server

    def take(self, index):
        """The fd of handle `index` (checked to be its declared kind); the
        caller owns it."""
        return self._msg.take(index)

    def reply(self, payload, handles=()):
        """Sends the reply table's bytes and handles [(HandleKind, fd)]
        (copies: the caller still owns and closes its fds)."""
        self._msg.close()
        if self.call_id:
            self._server._send(wire.build(wire.Kind.REPLY, self.call_id, self.method.ordinal,
                                          self.method.reply.type_hash, payload,
                                          [k for k, _ in handles]), [fd for _, fd in handles])

    def error(self, code, text):
        self._msg.close()
        if self.call_id:
            self._server._send_error(self.call_id, self.method.ordinal, code, text)


class Server:
    def __init__(self, port, interface, schema, rights=None, on_bad_message="close", on_refused=None):
        if on_bad_message not in ("close", "reply"):
            raise CapsaError(Errc.INVALID_ARGUMENT, f"on_bad_message {on_bad_message!r}")
        self._port = port if isinstance(port, Port) else Port(port)
        self.interface = interface
        self.rights = interface.defined_rights if rights is None else rights
        self._schema = schema
        self._on_bad = on_bad_message
        self._on_refused = on_refused  # on_refused(CapsaError): a log hook
        self.bad_messages = 0
        self.denied = 0

    @property
    def closed(self):
        return self._port.closed

    def close(self):
        self._port.close()

    def next_call(self):
        """Blocks for the next valid call; None once the port is closed (by
        the peer, or by us after a bad message)."""
        while not self._port.closed:
            try:
                data, fds = self._port.receive()
                msg, payload_type = wire.parse(self._schema, data, fds, {wire.Kind.CALL, wire.Kind.EVENT})
            except CapsaError as e:
                if e.code == Errc.CLOSED:
                    self._port.close()
                    return None
                self._bad(e, 0, 0)
                continue
            m = self.interface.method(msg.method)
            where = f"{self.interface.name}.{m.name if m else msg.method}"
            if msg.object or msg.control:
                # This server issues no associated objects (PROTOCOL section 8:
                # a mediated channel carries none): no id can be valid.
                msg.close()
                self._bad(CapsaError(Errc.BAD_MESSAGE, f"{where}: names object {msg.object}, "
                                     "and this port has no objects"), msg.call_id, msg.method,
                          msg.object, msg.control)
                continue
            if m is None:
                msg.close()
                self._bad(CapsaError(Errc.BAD_MESSAGE, f"{where}: no method with ordinal {msg.method}"),
                          msg.call_id, msg.method)
                continue
            if not self.rights >> m.ordinal & 1:
                msg.close()
                self.denied += 1
                self._refused(CapsaError(Errc.DENIED, f"{where}: outside the capability's rights"))
                if msg.call_id:
                    self._send_error(msg.call_id, m.ordinal, Errc.DENIED, "method not in the capability's rights")
                continue
            try:
                wire.check_payload(self._schema, msg, m.request, payload_type, where)
            except CapsaError as e:
                msg.close()
                self._bad(e, msg.call_id, m.ordinal)
                continue
            return Call(self, msg, m)
        return None

    def serve(self, handler):
        """Runs until the port closes: handler(call) returns the reply's
        payload bytes, or (payload, handles), or raises CapsaError (a wire
        code is sent as is, any other as `failed`)."""
        while (call := self.next_call()) is not None:
            try:
                out = handler(call)
            except CapsaError as e:
                call.error(e.code if e.code.on_wire else Errc.FAILED, e.message)
                continue
            payload, handles = out if isinstance(out, tuple) else (out, ())
            call.reply(payload, handles)

    def _bad(self, e, call_id, method, obj=0, control=False):
        self.bad_messages += 1
        self._refused(e)
        if self._on_bad == "reply":
            self._send_error(call_id, method, Errc.BAD_MESSAGE, e.message, obj, control)
        else:
            self._port.close()

    def _refused(self, e):
        if self._on_refused:
            self._on_refused(e)

    def _send_error(self, call_id, method, code, text, obj=0, control=False):
        # An Error carries the object of the call it answers (none for call 0).
        text = text.encode()[:wire.MAX_ERROR_TEXT].decode("utf-8", "ignore")
        self._send(wire.build(wire.Kind.ERROR, call_id, method, error_code=int(code), error_text=text,
                              object=obj if call_id else 0, control=control and bool(call_id)), [])

    def _send(self, packet, fds):
        try:
            self._port.send(packet, fds)
        except CapsaError:
            self._port.close()  # the peer is gone: nothing left to serve
