"""capsa_worker: the Python worker SDK of capsa (docs/PYTHON.md).

    from capsa_worker import Context, LogSink, Directory
    ctx = Context.from_fd()              # fd 3, checked to be a port
    log = LogSink.get(ctx, "log")        # a grant named by the policy
    log.write(LogSink.Level.INFO, "hello")

The flatc --python output for the built-in schemas and schema.json (the
interfaces, from the same .bfbs the C++ validator loads) are made at build
time into _generated/, which is put on sys.path here: the generated code
imports its namespaces (capsa, fs, log, demo) as top-level packages. The
SDK is usually imported from capsa_worker.zip; a path inside a zip is a
valid sys.path entry.
"""
import os as _os
import sys as _sys

_gen = _os.path.join(_os.path.dirname(__file__), "_generated")
if _gen not in _sys.path:
    _sys.path.insert(0, _gen)

from .builtins import Directory, Entry, EntryType, File, LogSink, WordCount  # noqa: E402
from .capability import Capability, State  # noqa: E402
from .context import Context, GrantInfo  # noqa: E402
from .errors import CapsaError, Errc  # noqa: E402
from .handles import HandleKind, make_blob, read_blob  # noqa: E402
from .port import Port, socketpair  # noqa: E402
from .server import Call, Server  # noqa: E402

__all__ = ["Call", "Capability", "CapsaError", "Context", "Directory", "Entry", "EntryType",
           "Errc", "File", "GrantInfo", "HandleKind", "LogSink", "Port", "Server", "State",
           "WordCount", "make_blob", "read_blob", "socketpair"]
