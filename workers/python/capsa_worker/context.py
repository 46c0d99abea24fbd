"""Context: the worker's bootstrap port (fd 3) and what it hands out.

Get, List and Attenuate on capsa.Bootstrap (capabilities/interfaces/
capsa_bootstrap.fbs), each reply checked like the C++ SDK's
(workers/sdk/context.cc): the port is there, the interface is the one asked
for and known to this SDK; otherwise the port is closed unused.
"""
import fcntl
import os
from collections import namedtuple

import flatbuffers

from capsa import AttenuateReply, AttenuateRequest, GetReply, GetRequest, ListReply, ListRequest

from .capability import Capability, adopt_port
from .errors import CapsaError, Errc
from .handles import HandleKind, check_kind
from .port import Port
from .schema import Schema
from .server import Server

BOOTSTRAP_FD = 3
GrantInfo = namedtuple("GrantInfo", "name interface rights")


def _text(b):
    return (b or b"").decode("utf-8", "replace")


class Context:
    def __init__(self, bootstrap_port, schema=None):
        self.schema = schema or Schema()
        boot = self.schema.interface("capsa.Bootstrap")
        self.bootstrap = Capability(bootstrap_port, boot, boot.defined_rights, self.schema, "bootstrap")

    @classmethod
    def from_fd(cls, fd=BOOTSTRAP_FD):
        """The context of a worker started by capsa. CapsaError
        (INVALID_ARGUMENT) when fd is not open or not a port (then closed)."""
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            raise CapsaError(Errc.INVALID_ARGUMENT,
                             f"fd {fd} is not open: the program was not started by a capsa supervisor") from None
        try:
            check_kind(fd, HandleKind.PORT)
        except CapsaError as e:
            os.close(fd)
            raise CapsaError(Errc.INVALID_ARGUMENT, f"fd {fd} is not a capsa port: {e.message}") from None
        # The bootstrap port must not leak into programs this worker execs.
        os.set_inheritable(fd, False)
        return cls(Port(fd))

    def get(self, name, interface):
        """The capability granted under `name`, checked to be `interface`."""
        b = flatbuffers.Builder(64)
        n = b.CreateString(name)
        GetRequest.Start(b)
        GetRequest.AddName(b, n)
        b.Finish(GetRequest.End(b))
        reply = self.bootstrap.call("Get", bytes(b.Output()))
        r = GetReply.GetReply.GetRootAs(reply.payload, 0)
        return self._capability(reply, r.Port(), _text(r.Interface()), r.Rights(), name, interface)

    def list(self):
        """Every grant this worker may Get: [GrantInfo(name, interface, rights)]."""
        b = flatbuffers.Builder(16)
        ListRequest.Start(b)
        b.Finish(ListRequest.End(b))
        reply = self.bootstrap.call("List", bytes(b.Output()))
        r = ListReply.ListReply.GetRootAs(reply.payload, 0)
        out = []
        for i in range(r.GrantsLength()):
            g = r.Grants(i)
            out.append(GrantInfo(_text(g.Name()), _text(g.Interface()), g.Rights()))
        return out

    def attenuate(self, cap, methods):
        """A narrower copy of `cap` (consumed: it is released whatever the
        outcome) whose rights are its rights and `methods`. An associated
        object is detached first (an object cannot travel, a port can)."""
        if cap.object_id:
            cap = cap.detach()
        b = flatbuffers.Builder(128)
        names = [b.CreateString(m) for m in methods]
        AttenuateRequest.StartMethodsVector(b, len(names))
        for n in reversed(names):
            b.PrependUOffsetTRelative(n)
        vec = b.EndVector()
        AttenuateRequest.Start(b)
        AttenuateRequest.AddPort(b, 0)
        AttenuateRequest.AddMethods(b, vec)
        b.Finish(AttenuateRequest.End(b))
        fd = cap.detach()
        try:
            reply = self.bootstrap.call("Attenuate", bytes(b.Output()), [(HandleKind.PORT, fd)])
        finally:
            os.close(fd)
        r = AttenuateReply.AttenuateReply.GetRootAs(reply.payload, 0)
        return self._capability(reply, r.Port(), _text(r.Interface()), r.Rights(), cap.name,
                                cap.interface.name)

    def adopt(self, fd, interface, name="adopted"):
        """A Capability for a port received in a reply or message."""
        iface = self.schema.interface(interface)
        if iface is None:
            os.close(fd)
            raise CapsaError(Errc.NOT_FOUND, f"interface {interface} is not known to this SDK")
        return adopt_port(fd, iface, self.schema, name)

    def serve(self, cap, **options):
        """A Server for the interface of `cap` (consumed), on its port: a
        channel end this worker serves (e.g. a "channels" server end the
        policy hands it). Options: on_bad_message, on_refused (Server)."""
        if cap.object_id:
            raise CapsaError(Errc.INVALID_ARGUMENT, f"{cap.name} is an associated object, not a port")
        interface = cap.interface
        return Server(cap.detach(), interface, self.schema, **options)

    def _capability(self, reply, port_index, got, rights, name, expected):
        if port_index is None:
            reply.close()
            raise CapsaError(Errc.BAD_MESSAGE, f"bootstrap reply for {name} carries no port")
        fd = reply.take(port_index)
        iface = self.schema.interface(got)
        if got != expected or iface is None:
            os.close(fd)
            why = f"is {got}, not {expected}" if got != expected else f"is interface {got}, which this SDK does not know"
            raise CapsaError(Errc.NOT_FOUND, f"grant {name} {why}")
        return Capability(Port(fd), iface, rights, self.schema, name)
