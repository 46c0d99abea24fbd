"""What the SDK knows of each interface, and the payload verifier.

Both come from schema.json, which capsa-schema-dump writes at build time
from the same .bfbs files the C++ validator loads (workers/python/
schema_dump.cc): ordinals, payload type hashes, handle fields and every
table's field layout. Nothing here is written per API.

Python's flatbuffers package reads without checking: an offset past the
end raises or, worse, a crafted offset reads another part of the packet.
So every buffer from a peer is walked by verify() first, with the limits of
docs/PROTOCOL.md (depth 16, 1024 tables), before generated code reads it.
"""
import json
import pkgutil
import struct

MAX_DEPTH = 16
MAX_TABLES = 1024

# struct format of each scalar type; its size is its alignment.
_SCALARS = {
    "bool": "<B", "byte": "<b", "ubyte": "<B", "short": "<h", "ushort": "<H", "int": "<i",
    "uint": "<I", "long": "<q", "ulong": "<Q", "float": "<f", "double": "<d",
}


def _size(t):
    return struct.calcsize(_SCALARS[t]) if t in _SCALARS else 4  # offsets are 4 bytes


def fnv1a32(name):
    """The envelope's payload_type: 32-bit FNV-1a of a table's full name."""
    h = 0x811C9DC5
    for b in name.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


class Table:
    """A method's request or reply table: name, hash and handle fields."""

    def __init__(self, d):
        self.name = d["table"]
        self.type_hash = d["type_hash"]
        # [(field name, vtable offset, kind name, is vector)]
        self.handles = [(h["name"], h["offset"], h["kind"], h["vector"]) for h in d["handles"]]


class Method:
    def __init__(self, d):
        self.name = d["name"]
        self.ordinal = d["ordinal"]
        self.request = Table(d["request"])
        self.reply = Table(d["reply"])


class Interface:
    def __init__(self, name, d):
        self.name = name
        self.methods = [Method(m) for m in d["methods"]]
        self._by_ordinal = {m.ordinal: m for m in self.methods}
        self._by_name = {m.name: m for m in self.methods}
        self.defined_rights = 0
        for m in self.methods:
            self.defined_rights |= 1 << m.ordinal

    def method(self, key):
        """By ordinal (int) or by name (str); None when there is none."""
        return (self._by_ordinal if isinstance(key, int) else self._by_name).get(key)


class Schema:
    def __init__(self, path=None):
        # get_data, not open(): the SDK is imported from a zip.
        if path is None:
            d = json.loads(pkgutil.get_data(__package__, "_generated/schema.json"))
        else:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        self.tables = d["tables"]
        self.interfaces = {n: Interface(n, i) for n, i in d["interfaces"].items()}

    def interface(self, name):
        return self.interfaces.get(name)

    def verify(self, buf, table, start=0, end=None):
        """Raises ValueError naming the first fault unless buf[start:end]
        is a flatbuffer whose root is a `table`, every offset inside it,
        every scalar aligned, within the depth and table limits."""
        _Verifier(self.tables, buf, start, len(buf) if end is None else end).root(table)


class _Verifier:
    def __init__(self, tables, buf, start, end):
        self.tables, self.buf, self.start, self.end = tables, buf, start, end
        self.count = 0

    def _u(self, fmt, pos, size):
        if pos < self.start or pos + size > self.end:
            raise ValueError(f"offset {pos - self.start} out of bounds")
        if (pos - self.start) % size:
            raise ValueError(f"offset {pos - self.start} misaligned")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def root(self, table):
        self.table(table, self.start + self._u("<I", self.start, 4), 1)

    def table(self, name, pos, depth):
        self.count += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"{name}: nesting deeper than {MAX_DEPTH}")
        if self.count > MAX_TABLES:
            raise ValueError(f"more than {MAX_TABLES} tables")
        vt = pos - self._u("<i", pos, 4)
        vsize = self._u("<H", vt, 2)
        tsize = self._u("<H", vt + 2, 2)
        if vsize < 4 or vsize % 2 or vt + vsize > self.end or tsize < 4 or pos + tsize > self.end:
            raise ValueError(f"{name}: bad vtable")
        for f in self.tables[name]["fields"]:
            if f["offset"] + 2 > vsize:
                continue
            fo = self._u("<H", vt + f["offset"], 2)
            if fo == 0:
                continue
            size = _size(f["type"])
            if fo + size > tsize:
                raise ValueError(f"{name}.{f['name']}: outside its table")
            self.field(name, f, pos + fo, depth)

    def field(self, name, f, at, depth):
        t = f["type"]
        if t in _SCALARS:
            self._u(_SCALARS[t], at, _size(t))
            return
        target = at + self._u("<I", at, 4)
        if t == "table":
            self.table(f["table"], target, depth + 1)
            return
        # A vector is a level of nesting too, as in the C++ verifier.
        if t == "vector" and depth + 1 > MAX_DEPTH:
            raise ValueError(f"{name}: nesting deeper than {MAX_DEPTH}")
        n = self._u("<I", target, 4)
        elem = 1 if t == "string" else _size(f["element"])
        data = target + 4
        if data + n * elem + (1 if t == "string" else 0) > self.end:
            raise ValueError(f"{name}.{f['name']}: {t} past the end")
        if t == "string":
            if self.buf[data + n] != 0:
                raise ValueError(f"{name}.{f['name']}: string not terminated")
            return
        if n and elem > 1:
            if (data - self.start) % elem:
                raise ValueError(f"{name}.{f['name']}: misaligned vector")
        for i in range(n if f["element"] in ("string", "table") else 0):
            e = data + 4 * i
            sub = {"name": f["name"], "type": f["element"], "table": f.get("table")}
            self.field(name, sub, e, depth + (1 if f["element"] == "table" else 0))


def read_u32(buf, pos):
    return struct.unpack_from("<I", buf, pos)[0]


def vector_bytes(obj, voffset):
    """The bytes of a [ubyte] field of a generated table object (flatc
    2.0.8's Python code reads them one by one, or through numpy)."""
    o = obj._tab.Offset(voffset)
    if o == 0:
        return b""
    start = obj._tab.Vector(o)
    return bytes(obj._tab.Bytes[start:start + obj._tab.VectorLen(o)])
