#!/usr/bin/python3
# The Python SDK's conformance runner (tests/conformance/scenario.json,
# docs/PYTHON.md "Conformance"): runs each step through capsa_worker and
# logs "step N DO: RESULT" to the "log" grant. It judges nothing: the
# harness compares the lines with the scenario's expectations, so a wrong
# SDK cannot pass by agreeing with itself. runner.cc is the C++ twin; the
# two must print the same result for the same behaviour.
#
#   runner.py STEPS   (the scenario's "steps" as JSON, without "expect")
import json
import os
import sys

from capsa_worker import CapsaError, Context, Directory, EntryType, File, LogSink, Port
from capsa_worker import wire

ctx = None
log = None
caps = {}  # "as" name -> Capability


def quoted(data):
    """Bytes as a JSON string (the scenario's texts are ASCII)."""
    return json.dumps(data.decode("latin-1"))


def entry(e):
    if e.type == EntryType.REGULAR:
        return f"{e.name}:{e.size}"
    return e.name + ("/" if e.type == EntryType.DIRECTORY else "?")


def raw_read(cap, max_bytes):
    import flatbuffers
    from fs import ReadRequest
    b = flatbuffers.Builder(32)
    ReadRequest.Start(b)
    ReadRequest.AddMaxBytes(b, max_bytes)
    b.Finish(ReadRequest.End(b))
    m = cap.interface.method("Read")
    call_id = 1 << 40
    cap._port.send(wire.build(wire.Kind.CALL, call_id, m.ordinal, m.request.type_hash, bytes(b.Output()),
                              object=cap.object_id))
    data, fds = cap._port.receive()
    msg, _ = wire.parse(ctx.schema, data, fds, {wire.Kind.REPLY, wire.Kind.ERROR})
    msg.close()
    if (msg.call_id, msg.object) != (call_id, cap.object_id):
        return f"answered call {msg.call_id} object {msg.object}"
    if msg.kind == wire.Kind.ERROR:
        raise CapsaError(msg.error_code, msg.error_text)
    return "answered"


def run(step):
    do = step["do"]
    if do == "list_grants":
        return " ".join(f"{g.name}:{g.interface}:{g.rights:#x}" for g in ctx.list())
    if do == "get":
        cap = ctx.get(step["grant"], step["interface"])
        caps[step.get("as", "")] = cap
        return f"rights {cap.rights:#x}"
    if do == "list":
        entries, _ = Directory(caps[step["cap"]]).list(step["path"])
        return " ".join(entry(e) for e in entries)
    if do == "open_file":
        fd, _ = Directory(caps[step["cap"]]).open_file(step["path"])
        with os.fdopen(fd, "rb") as f:
            return quoted(f.read())
    if do == "open":
        f = Directory(caps[step["cap"]]).open(step["path"], associated=step.get("associated", False))
        caps[step.get("as", "")] = f.cap
        return None
    if do == "release":
        caps[step["cap"]].release()
        return None
    if do == "detach":
        # An associated object becomes a port of its own (consumed).
        cap = caps[step["cap"]].detach()
        caps[step.get("as", "")] = cap
        return f"rights {cap.rights:#x}"
    if do == "read_bypassing_sdk":
        # fs.File.Read naming the object id of `cap` (released or not),
        # sent on its port past the SDK's own refusal: the supervisor's
        # answer. A call id the SDK never uses; nothing else is in flight.
        return raw_read(caps[step["cap"]], step["max"])
    if do == "open_bypassing_sdk":
        # A fresh port to the grant, adopted with every method allowed
        # locally: the call reaches the supervisor, which enforces the rights.
        wide = ctx.adopt(ctx.get(step["grant"], "fs.Directory").detach(), "fs.Directory")
        Directory(wide).open(step["path"])
        return None
    if do == "read":
        data, _ = File(caps[step["cap"]]).read(step["max"])
        return quoted(data)
    if do == "state":
        return caps[step["cap"]].state.value
    if do == "attenuate":
        caps[step.get("as", "")] = ctx.attenuate(caps.pop(step["cap"]), step["methods"])
        return f"rights {caps[step['as']].rights:#x}"
    if do == "ask_revoke":
        # The harness revokes every live grant of this interface that this
        # worker holds when it sees this line (before the write returns).
        log.write(LogSink.Level.INFO, "please revoke " + step["interface"])
        return None
    if do == "log":
        log.write(LogSink.Level.INFO, step["text"] * step.get("repeat", 1))
        return None
    if do == "send_garbage":
        # Bypasses the SDK: the raw port, then the supervisor's verdict.
        port = Port(caps.pop(step["cap"]).detach())
        port.send(b"this is not a capsa envelope")
        try:
            port.receive()
            return "answered"
        except CapsaError as e:
            return e.code.label
    raise ValueError(f"unknown step {do!r}")


def main():
    global ctx, log
    steps = json.loads(sys.argv[1])
    ctx = Context.from_fd()
    log = LogSink.get(ctx, "log")
    for n, step in enumerate(steps, 1):
        try:
            value = run(step)
            result = "ok" if value is None else f"ok {value}"
        except CapsaError as e:
            result = f"error {e.code.label}"
        try:
            log.write(LogSink.Level.INFO, f"step {n} {step['do']}: {result}")
        except CapsaError as e:  # as runner.cc: no log, no transcript
            print(f"conformance_runner_py: log: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
