"""Typed clients of the built-in interfaces (capabilities/interfaces/*.fbs):
log.Sink, fs.Directory, fs.File, demo.WordCount. Each builds its request
with the flatc-generated code and reads the validated reply with it."""
import enum
import os
from collections import namedtuple

import flatbuffers

from demo import CountReply, CountRequest
from fs import (FileStatReply, FileStatRequest, ListReply, ListRequest, OpenFileReply,
                OpenFileRequest, OpenReply, OpenRequest, ReadReply, ReadRequest, SeekReply,
                SeekRequest, StatReply, StatRequest)
from log import WriteRequest

from .capability import adopt_port
from .errors import CapsaError, Errc
from .handles import HandleKind, make_blob
from .schema import vector_bytes

# As capabilities/interfaces/builtin.h (schemas have no constants).
MAX_READ_BYTES = 60 * 1024  # fs.File.Read
MAX_LOG_TEXT = 4096  # log.Sink.Write
Entry = namedtuple("Entry", "name type size")
Stat = namedtuple("Stat", "type size modified_ns")


class EntryType(enum.IntEnum):
    UNKNOWN = 0
    REGULAR = 1
    DIRECTORY = 2
    SYMLINK = 3
    OTHER = 4


def _entry_type(value):
    """A value this SDK does not know (a newer service) reads as UNKNOWN."""
    try:
        return EntryType(value)
    except ValueError:
        return EntryType.UNKNOWN


def _request(module, size=64, **fields):
    """One request table: `fields` name the generated Add* functions, in
    order; a str or bytes value becomes a string, created before the table
    starts (flatbuffers cannot nest them)."""
    b = flatbuffers.Builder(size)
    made = {k: b.CreateString(v) if isinstance(v, (str, bytes)) else v for k, v in fields.items()}
    module.Start(b)
    for k, v in made.items():
        getattr(module, "Add" + k)(b, v)
    b.Finish(module.End(b))
    return bytes(b.Output())


class _Typed:
    INTERFACE = None

    def __init__(self, cap):
        if cap.interface.name != self.INTERFACE:
            raise CapsaError(Errc.INVALID_ARGUMENT, f"{cap.name} is {cap.interface.name}, not {self.INTERFACE}")
        self.cap = cap

    @classmethod
    def get(cls, ctx, name):
        return cls(ctx.get(name, cls.INTERFACE))

    @property
    def state(self):
        return self.cap.state

    @property
    def object_id(self):
        """Non-zero for an associated object (docs/PROTOCOL.md section 8)."""
        return self.cap.object_id

    def close(self):
        """Closes the port, or releases an associated object."""
        self.cap.close()

    def release(self):
        self.cap.release()

    def detach(self):
        """An associated object as a port of its own: the same typed
        wrapper over a port-backed capability (this one is released)."""
        if not self.cap.object_id:
            raise CapsaError(Errc.INVALID_ARGUMENT, f"{self.cap.name} is a port already (cap.detach() gives its fd)")
        return type(self)(self.cap.detach())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LogSink(_Typed):
    INTERFACE = "log.Sink"

    class Level(enum.IntEnum):
        DEBUG = 0
        INFO = 1
        WARNING = 2
        ERROR = 3

    def write(self, level, text):
        """One line. INVALID_ARGUMENT (nothing sent) over MAX_LOG_TEXT bytes."""
        if len(text.encode()) > MAX_LOG_TEXT:
            raise CapsaError(Errc.INVALID_ARGUMENT, f"log text over {MAX_LOG_TEXT} bytes")
        self.cap.call("Write", _request(WriteRequest, 64 + len(text), Level=int(level), Text=text)).close()


class File(_Typed):
    INTERFACE = "fs.File"

    def read(self, max_bytes=MAX_READ_BYTES, offset=-1):
        """(data, eof); offset -1 reads at the position and advances it."""
        reply = self.cap.call("Read", _request(ReadRequest, Offset=offset, MaxBytes=max_bytes))
        r = ReadReply.ReadReply.GetRootAs(reply.payload, 0)
        return vector_bytes(r, 4), r.Eof()

    def seek(self, offset, whence=0):
        reply = self.cap.call("Seek", _request(SeekRequest, Offset=offset, Whence=whence))
        return SeekReply.SeekReply.GetRootAs(reply.payload, 0).Position()

    def stat(self):
        reply = self.cap.call("Stat", _request(FileStatRequest))
        r = FileStatReply.FileStatReply.GetRootAs(reply.payload, 0)
        return r.Size(), r.ModifiedNs()


class Directory(_Typed):
    INTERFACE = "fs.Directory"

    def list(self, path=""):
        """([Entry], truncated): at most 512 entries per reply."""
        reply = self.cap.call("List", _request(ListRequest, 64 + len(path), Path=path))
        r = ListReply.ListReply.GetRootAs(reply.payload, 0)
        out = []
        for i in range(r.EntriesLength()):
            e = r.Entries(i)
            out.append(Entry((e.Name() or b"").decode("utf-8", "replace"), _entry_type(e.Type()), e.Size()))
        return out, r.Truncated()

    def open(self, path, associated=False):
        """The file as an fs.File capability (revocable, metered): a new
        port, or with `associated` an object on this directory's port (no
        socket, no fd; it ends with the port). Both are a File and are used
        the same way; an object also has release() and detach()."""
        fields = {"Path": path, "Associated": True} if associated else {"Path": path}
        reply = self.cap.call("Open", _request(OpenRequest, 64 + len(path), **fields))
        r = OpenReply.OpenReply.GetRootAs(reply.payload, 0)
        name = f"{self.cap.name}/{path}"
        iface = self.cap._schema.interface("fs.File")
        # The reply must carry what was asked for, and only that: a port
        # where an object was asked (or none at all) is refused, its fd closed.
        if associated != (r.File() is None) or associated != (r.Object() != 0):
            reply.close()
            raise CapsaError(Errc.BAD_MESSAGE, f"fs.Directory.Open: reply for {name} carries "
                             f"{'a port' if r.File() is not None else 'no port'} and object {r.Object()}")
        if associated:
            return File(self.cap.object(r.Object(), iface, name=name))
        return File(adopt_port(reply.take(r.File()), iface, self.cap._schema, name))

    def open_file(self, path):
        """(fd, size): a read-only fd of the file (not revocable); the caller owns fd."""
        reply = self.cap.call("OpenFile", _request(OpenFileRequest, 64 + len(path), Path=path))
        r = OpenFileReply.OpenFileReply.GetRootAs(reply.payload, 0)
        return reply.take(r.File()), r.Size()

    def stat(self, path):
        reply = self.cap.call("Stat", _request(StatRequest, 64 + len(path), Path=path))
        r = StatReply.StatReply.GetRootAs(reply.payload, 0)
        return Stat(r.Type(), r.Size(), r.ModifiedNs())


class WordCount(_Typed):
    INTERFACE = "demo.WordCount"

    def count(self, text):
        """(words, lines, bytes) of `text` (bytes); past 32 KiB it travels
        as a sealed blob, so the packet stays under 64 KiB."""
        if len(text) <= 32 * 1024:
            payload, handles = _request(CountRequest, 64 + len(text), Text=text), []
        else:
            fd = make_blob(text)
            payload, handles = _request(CountRequest, Blob=0), [(HandleKind.BLOB, fd)]
        try:
            reply = self.cap.call("Count", payload, handles)
        finally:
            for _, fd in handles:
                os.close(fd)
        r = CountReply.CountReply.GetRootAs(reply.payload, 0)
        return r.Words(), r.Lines(), r.Bytes()
