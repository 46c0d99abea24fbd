"""The Python SDK against hostile peers over real SOCK_SEQPACKET sockets
(no sandbox: the peer is this test). Each case asserts the exact error,
the capability's state afterwards, and that no fd leaked.

Run by ctest (tests/python/CMakeLists.txt) with /usr/bin/python3 and
PYTHONPATH=<plugins>/capsa_worker.zip.
"""
import os
import socket
import threading
import unittest

import flatbuffers

from capsa_worker import (CapsaError, Context, Directory, Errc, File, HandleKind, LogSink, Server,
                          State, WordCount, make_blob, read_blob, socketpair)
from capsa_worker import schema as schema_mod
from capsa_worker import wire
from capsa_worker.capability import Capability
from capsa_worker.schema import Schema

from demo import CountReply, CountRequest
from fs import ListReply

SCHEMA = Schema()
DIRECTORY = SCHEMA.interface("fs.Directory")
WORDCOUNT = SCHEMA.interface("demo.WordCount")


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def empty_list_reply():
    b = flatbuffers.Builder(32)
    ListReply.Start(b)
    b.Finish(ListReply.End(b))
    return bytes(b.Output())


class Peer:
    """The other end of a capability: reads the call, answers as told."""

    def __init__(self, port):
        self.port = port

    def call(self):
        data, fds = self.port.receive()
        msg, _ = wire.parse(SCHEMA, data, fds, {wire.Kind.CALL})
        return msg


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.fds = open_fds()
        ours, theirs = socketpair()
        self.cap = Capability(ours, DIRECTORY, DIRECTORY.defined_rights, SCHEMA, "texts")
        self.peer = Peer(theirs)

    def tearDown(self):
        self.cap.close()
        self.peer.port.close()
        self.assertEqual(open_fds(), self.fds, "an fd leaked")

    def answer_with(self, make):
        """Runs cap.list('.') while the peer answers make(call) (bytes, fds)."""
        def serve():
            call = self.peer.call()
            packet, fds = make(call)
            self.peer.port.send(packet, fds)
            for fd in fds:
                os.close(fd)
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            return Directory(self.cap).list(".")
        finally:
            t.join()

    def reply(self, call, payload, method=None, call_id=None, payload_type=None, kinds=()):
        m = DIRECTORY.method("List")
        return wire.build(wire.Kind.REPLY, call.call_id if call_id is None else call_id,
                          m.ordinal if method is None else method,
                          m.reply.type_hash if payload_type is None else payload_type, payload, kinds)

    def assert_broken(self, make, text):
        with self.assertRaises(CapsaError) as e:
            self.answer_with(make)
        self.assertEqual(e.exception.code, Errc.BAD_MESSAGE, str(e.exception))
        self.assertIn(text, str(e.exception))
        self.assertEqual(self.cap.state, State.BROKEN)

    def test_a_good_reply_is_read(self):
        self.assertEqual(self.answer_with(lambda c: (self.reply(c, empty_list_reply()), [])), ([], False))
        self.assertEqual(self.cap.state, State.LIVE)

    def test_an_error_answer_keeps_the_port(self):
        def deny(c):
            return wire.build(wire.Kind.ERROR, c.call_id, c.method, error_code=2, error_text="no"), []
        with self.assertRaises(CapsaError) as e:
            self.answer_with(deny)
        self.assertEqual((e.exception.code, e.exception.message), (Errc.DENIED, "no"))
        self.assertEqual(self.cap.state, State.LIVE)

    def test_garbage_breaks_the_port(self):
        self.assert_broken(lambda c: (b"this is not a capsa envelope", []), "identifier is not CPS1")

    def test_a_reply_to_another_call_breaks_the_port(self):
        self.assert_broken(lambda c: (self.reply(c, empty_list_reply(), call_id=c.call_id + 1), []),
                           "answer to call 2")

    def test_a_reply_for_another_method_breaks_the_port(self):
        self.assert_broken(lambda c: (self.reply(c, empty_list_reply(), method=0), []), "method 0")

    def test_an_error_code_off_the_wire_breaks_the_port(self):
        self.assert_broken(lambda c: (wire.build(wire.Kind.ERROR, c.call_id, c.method, error_code=9,
                                                 error_text=""), []), "code 9")

    def test_a_payload_of_another_type_breaks_the_port(self):
        self.assert_broken(lambda c: (self.reply(c, empty_list_reply(), payload_type=1), []),
                           "is not fs.ListReply")

    def test_an_offset_past_the_end_breaks_the_port(self):
        bad = bytearray(empty_list_reply())
        bad[0:4] = (len(bad) + 64).to_bytes(4, "little")
        self.assert_broken(lambda c: (self.reply(c, bytes(bad)), []), "out of bounds")

    def test_an_undeclared_fd_breaks_the_port_and_is_closed(self):
        def surplus(c):
            r, w = os.pipe()
            os.close(w)
            return self.reply(c, empty_list_reply()), [r]
        self.assert_broken(surplus, "1 fds for 0 declared handles")

    def test_a_pipe_declared_as_a_port_breaks_the_port(self):
        # fs.Directory.Open's reply carries a port; a pipe is sent instead.
        from fs import OpenReply
        def pipe_as_port(c):
            b = flatbuffers.Builder(32)
            OpenReply.Start(b)
            OpenReply.AddFile(b, 0)
            b.Finish(OpenReply.End(b))
            m = DIRECTORY.method("Open")
            r, w = os.pipe()
            os.close(w)
            return wire.build(wire.Kind.REPLY, c.call_id, m.ordinal, m.reply.type_hash,
                              bytes(b.Output()), [HandleKind.PORT]), [r]
        def serve():
            call = self.peer.call()
            packet, fds = pipe_as_port(call)
            self.peer.port.send(packet, fds)
            os.close(fds[0])
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with self.assertRaises(CapsaError) as e:
            Directory(self.cap).open("a.txt")
        t.join()
        self.assertEqual(e.exception.code, Errc.BAD_MESSAGE)
        self.assertIn("handle 0: declared port but the fd is not a socket", str(e.exception))
        self.assertEqual(self.cap.state, State.BROKEN)

    def test_a_closed_peer_is_a_revocation(self):
        self.peer.port.close()
        with self.assertRaises(CapsaError) as e:
            Directory(self.cap).list(".")
        self.assertEqual(e.exception.code, Errc.REVOKED)
        self.assertEqual(self.cap.state, State.REVOKED)
        seen = []
        self.cap.on_closed(seen.append)
        self.assertEqual(seen, [State.REVOKED])

    def test_a_method_outside_the_rights_is_not_sent(self):
        ours, theirs = socketpair()
        narrow = Capability(ours, DIRECTORY, 1 << DIRECTORY.method("List").ordinal, SCHEMA, "n")
        with self.assertRaises(CapsaError) as e:
            Directory(narrow).open_file("a.txt")
        self.assertEqual(e.exception.code, Errc.DENIED)
        self.assertEqual(narrow.state, State.LIVE)
        narrow.close()
        theirs.close()


def count_handler(call):
    req = CountRequest.CountRequest.GetRootAs(call.payload, 0)
    if req.Blob() is not None:
        fd = call.take(req.Blob())
        try:
            text = read_blob(fd)
        finally:
            os.close(fd)
    else:
        text = req.Text() or b""
    if text == b"fail":
        raise CapsaError(Errc.NOT_FOUND, "asked to fail")
    b = flatbuffers.Builder(32)
    CountReply.Start(b)
    CountReply.AddWords(b, len(text.split()))
    CountReply.AddBytes(b, len(text))
    b.Finish(CountReply.End(b))
    return bytes(b.Output())


class ServerTest(unittest.TestCase):
    def start(self, rights=None, on_bad_message="close"):
        self.fds = open_fds()
        client, served = socketpair()
        self.refused = []
        self.server = Server(served, WORDCOUNT, SCHEMA, rights=rights, on_bad_message=on_bad_message,
                             on_refused=self.refused.append)
        # daemon: a failed case must not leave the process waiting on it.
        self.thread = threading.Thread(target=self.server.serve, args=(count_handler,), daemon=True)
        self.thread.start()
        self.client_port = client
        self.wc = WordCount(Capability(client, WORDCOUNT, ~0 & (2**64 - 1), SCHEMA, "wc"))

    def stop(self):
        self.wc.close()
        self.thread.join()
        self.assertTrue(self.server.closed)
        self.assertEqual(open_fds(), self.fds, "an fd leaked")

    def test_inline_text_and_a_sealed_blob(self):
        self.start()
        self.assertEqual(self.wc.count(b"one two three"), (3, 0, 13))
        big = b"word " * 10000  # 50000 bytes: sent as a blob
        self.assertEqual(self.wc.count(big), (10000, 0, 50000))
        self.stop()

    def test_a_handler_error_is_answered_and_serving_goes_on(self):
        self.start()
        with self.assertRaises(CapsaError) as e:
            self.wc.count(b"fail")
        self.assertEqual((e.exception.code, e.exception.message), (Errc.NOT_FOUND, "asked to fail"))
        self.assertEqual(self.wc.count(b"a b"), (2, 0, 3))
        self.stop()

    def test_a_call_outside_the_rights_is_denied_and_serving_goes_on(self):
        self.start(rights=0)
        with self.assertRaises(CapsaError) as e:
            self.wc.count(b"x")
        self.assertEqual(e.exception.code, Errc.DENIED)
        self.assertEqual(self.server.denied, 1)
        self.assertEqual(self.wc.state, State.LIVE)
        self.stop()

    def test_an_unsealed_memfd_as_a_blob_closes_the_port(self):
        self.start()
        fd = os.memfd_create("unsealed", os.MFD_CLOEXEC)
        os.write(fd, b"text")
        b = flatbuffers.Builder(32)
        CountRequest.Start(b)
        CountRequest.AddBlob(b, 0)
        b.Finish(CountRequest.End(b))
        with self.assertRaises(CapsaError) as e:
            self.wc.cap.call("Count", bytes(b.Output()), [(HandleKind.BLOB, fd)])
        os.close(fd)
        self.assertEqual(e.exception.code, Errc.REVOKED)  # the server closed the port
        self.assertEqual(len(self.refused), 1)
        self.assertIn("handle 0: declared blob but the memfd is not sealed", str(self.refused[0]))
        self.stop()

    def test_garbage_is_answered_bad_message_under_reply(self):
        self.start(on_bad_message="reply")
        port = self.wc.cap._port
        port.send(b"garbage, not an envelope")
        data, fds = port.receive()
        msg, _ = wire.parse(SCHEMA, data, fds, {wire.Kind.ERROR})
        self.assertEqual((msg.call_id, msg.error_code), (0, Errc.BAD_MESSAGE))
        self.assertEqual(self.wc.count(b"still served"), (2, 0, 12))
        self.stop()


def table(module, **fields):
    """A reply table built with the generated code (`fields`: Add* names)."""
    b = flatbuffers.Builder(64)
    made = {k: b.CreateByteVector(v) if isinstance(v, bytes) else
            (b.CreateString(v) if isinstance(v, str) else v) for k, v in fields.items()}
    module.Start(b)
    for k, v in made.items():
        getattr(module, "Add" + k)(b, v)
    b.Finish(module.End(b))
    return bytes(b.Output())


FILE = SCHEMA.interface("fs.File")
OBJECT = SCHEMA.interface("capsa.Object")


class ObjectPeer:
    """A test peer that speaks the protocol of section 8: the serving side
    of an fs.Directory port that issues fs.File objects. Each method reads
    one message and checks what the SDK put in the envelope; the test
    decides what to answer."""

    def __init__(self, port):
        self.port = port

    def next(self, kinds=(wire.Kind.CALL, wire.Kind.EVENT)):
        data, fds = self.port.receive()
        msg, _ = wire.parse(SCHEMA, data, fds, set(kinds))
        return msg

    def answer(self, msg, iface, method, payload, obj=None, control=None, kinds=(), fds=()):
        m = iface.method(method)
        self.port.send(wire.build(wire.Kind.REPLY, msg.call_id, m.ordinal, m.reply.type_hash, payload,
                                  list(kinds), object=msg.object if obj is None else obj,
                                  control=msg.control if control is None else control), list(fds))

    def error(self, msg, code, text, obj=None):
        self.port.send(wire.build(wire.Kind.ERROR, msg.call_id, msg.method, error_code=code, error_text=text,
                                  object=msg.object if obj is None else obj, control=msg.control))

    def open_object(self, obj):
        """Answers the next call, an associated Open, with object `obj`."""
        from fs import OpenReply, OpenRequest
        msg = self.next()
        req = OpenRequest.OpenRequest.GetRootAs(msg.payload, 0)
        assert (msg.method, msg.object, req.Associated()) == (0, 0, True), (msg.method, msg.object)
        self.answer(msg, DIRECTORY, "Open", table(OpenReply, Object=obj))

    def read(self, data, obj=None):
        """Answers the next call, a Read on an object, with `data`."""
        from fs import ReadReply
        msg = self.next()
        assert (msg.method, msg.control) == (0, False)
        self.answer(msg, FILE, "Read", table(ReadReply, Data=data, Eof=True), obj=obj)
        return msg


class AssociatedObjectTest(unittest.TestCase):
    """Associated objects (PROTOCOL section 8) on one real socket pair."""

    def setUp(self):
        self.fds = open_fds()
        ours, theirs = socketpair()
        # A failing case must fail, not hang: no read waits past 5 s.
        ours._sock.settimeout(5)
        theirs._sock.settimeout(5)
        self.dir = Directory(Capability(ours, DIRECTORY, DIRECTORY.defined_rights, SCHEMA, "texts"))
        self.peer = ObjectPeer(theirs)
        self.thread_errors = []

    def tearDown(self):
        self.dir.close()
        self.peer.port.close()
        self.assertEqual(self.thread_errors, [])
        self.assertEqual(open_fds(), self.fds, "an fd leaked")

    def in_thread(self, fn, *args):
        """fn(*args) in a thread; what it raises fails the case (tearDown)."""
        def run():
            try:
                fn(*args)
            except BaseException as e:  # noqa: B036: reported, not swallowed
                self.thread_errors.append(e)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def open(self, obj=7):
        t = self.in_thread(self.peer.open_object, obj)
        f = self.dir.open("a.txt", associated=True)
        t.join()
        return f

    def list_ok(self):
        """The port still works: a List on the directory's own capability."""
        def serve():
            msg = self.peer.next()
            self.assertEqual((msg.object, msg.control), (0, False))
            self.peer.answer(msg, DIRECTORY, "List", empty_list_reply())
        t = self.in_thread(serve)
        self.assertEqual(self.dir.list("."), ([], False))
        t.join()

    def test_an_object_shares_the_port_and_its_calls_name_it(self):
        f = self.open(7)
        self.assertIsInstance(f, File)
        self.assertEqual((f.object_id, f.cap.fileno()), (7, self.dir.cap.fileno()))
        got = []
        t = self.in_thread(lambda: got.append(self.peer.read(b"hello")))
        self.assertEqual(f.read(16), (b"hello", True))
        t.join()
        self.assertEqual((got[0].object, got[0].call_id), (7, 2))  # one call-id sequence per port
        self.list_ok()
        self.assertEqual((f.state, self.dir.state), (State.LIVE, State.LIVE))

    def test_an_answer_naming_another_object_breaks_the_port(self):
        f = self.open(7)
        t = self.in_thread(self.peer.read, b"x", 8)
        with self.assertRaises(CapsaError) as e:
            f.read(16)
        t.join()
        self.assertEqual(e.exception.code, Errc.BAD_MESSAGE)
        self.assertIn("fs.File.Read: answer to call 2 method 0 object 8, expected method 0 object 7", str(e.exception))
        self.assertEqual((f.state, self.dir.state), (State.BROKEN, State.BROKEN))

    def test_an_answer_flagged_control_breaks_the_port(self):
        f = self.open(7)
        def serve():
            from fs import ReadReply
            msg = self.peer.next()
            self.peer.answer(msg, FILE, "Read", table(ReadReply, Eof=True), control=True)
        t = self.in_thread(serve)
        with self.assertRaises(CapsaError) as e:
            f.read(16)
        t.join()
        self.assertIn("object 7 control, expected method 0 object 7", str(e.exception))
        self.assertEqual(self.dir.state, State.BROKEN)

    def test_an_objects_answer_is_checked_against_its_interface(self):
        f = self.open(7)
        def serve():  # a Directory List reply to a File Read, same ordinal 0 slot
            msg = self.peer.next()
            self.peer.port.send(wire.build(wire.Kind.REPLY, msg.call_id, 0, DIRECTORY.method("List").reply.type_hash,
                                           empty_list_reply(), object=7))
        t = self.in_thread(serve)
        with self.assertRaises(CapsaError) as e:
            f.read(16)
        t.join()
        self.assertIn("fs.File.Read: payload type", str(e.exception))
        self.assertIn("is not fs.ReadReply", str(e.exception))
        self.assertEqual((f.state, self.dir.state), (State.BROKEN, State.BROKEN))

    def test_an_error_keeps_the_object(self):
        f = self.open(7)
        t = self.in_thread(lambda: self.peer.error(self.peer.next(), 4, "no such object"))
        with self.assertRaises(CapsaError) as e:
            f.read(16)
        t.join()
        self.assertEqual((e.exception.code, e.exception.message), (Errc.NOT_FOUND, "no such object"))
        self.assertEqual(f.state, State.LIVE)

    def test_an_error_revoked_ends_the_object_not_the_port(self):
        f = self.open(7)
        t = self.in_thread(lambda: self.peer.error(self.peer.next(), 3, "object 7 was released or revoked"))
        with self.assertRaises(CapsaError) as e:
            f.read(16)
        t.join()
        self.assertEqual(e.exception.code, Errc.REVOKED)
        self.assertEqual((f.state, self.dir.state), (State.REVOKED, State.LIVE))
        self.list_ok()

    def test_release_sends_an_event_and_keeps_the_port(self):
        from capsa import ReleaseRequest
        f = self.open(7)
        f.release()
        ev = self.peer.next()
        self.assertEqual((ev.kind, ev.call_id, ev.method, ev.object, ev.control), (wire.Kind.EVENT, 0, 0, 7, True))
        SCHEMA.verify(ev.payload, "capsa.ReleaseRequest")
        ReleaseRequest.ReleaseRequest.GetRootAs(ev.payload, 0)
        self.assertEqual(f.state, State.RELEASED)
        with self.assertRaises(CapsaError) as e:  # refused here, nothing sent
            f.read(1)
        self.assertEqual(e.exception.code, Errc.CLOSED)
        f.release()  # twice: nothing more
        self.list_ok()

    def test_answers_to_a_released_objects_calls_are_dropped(self):
        f = self.open(7)
        outcome = []
        def reader():
            try:
                f.read(16)
            except CapsaError as e:
                outcome.append(e.code)
        t = self.in_thread(reader)
        call = self.peer.next()  # the Read is in flight; its caller reads the port
        f.release()
        self.assertEqual(self.peer.next().control, True)  # the Release, after the Read
        listed = []
        b = self.in_thread(lambda: listed.append(self.dir.list(".")))  # waits on the reader
        lst = self.peer.next()
        from fs import ReadReply
        self.peer.answer(call, FILE, "Read", table(ReadReply, Data=b"late", Eof=True))
        t.join()  # the late answer came and was dropped: not a bad message
        self.assertEqual(outcome, [Errc.CLOSED])
        self.peer.answer(lst, DIRECTORY, "List", empty_list_reply())
        b.join()
        self.assertEqual(listed, [([], False)])
        self.assertEqual((self.dir.state, f.state), (State.LIVE, State.RELEASED))
        self.list_ok()

    def test_calls_on_an_object_and_its_port_are_routed_by_call_id(self):
        f = self.open(7)
        got = {}
        def file_read():
            got["file"] = f.read(16)
        def dir_list():
            got["dir"] = self.dir.list(".")
        a = self.in_thread(file_read)
        first = self.peer.next()
        b = self.in_thread(dir_list)
        second = self.peer.next()
        self.assertEqual({first.object, second.object}, {0, 7})
        from fs import ReadReply
        for msg in (second, first):  # answered in the other order
            if msg.object:
                self.peer.answer(msg, FILE, "Read", table(ReadReply, Data=b"abc", Eof=False))
            else:
                self.peer.answer(msg, DIRECTORY, "List", empty_list_reply())
        a.join()
        b.join()
        self.assertEqual(got, {"file": (b"abc", False), "dir": ([], False)})

    def test_detach_makes_a_port_of_the_same_interface(self):
        from capsa import DetachReply
        f = self.open(7)
        mine, far = socketpair()
        def serve():
            msg = self.peer.next()
            self.assertEqual((msg.kind, msg.method, msg.object, msg.control), (wire.Kind.CALL, 1, 7, True))
            self.peer.answer(msg, OBJECT, "Detach", table(DetachReply, Port=0, Interface="fs.File", Rights=5),
                             kinds=[HandleKind.PORT], fds=[mine.fileno()])
        t = self.in_thread(serve)
        g = f.detach()
        t.join()
        mine.close()
        self.assertIsInstance(g, File)
        self.assertEqual((g.object_id, g.cap.rights, f.state), (0, 5, State.RELEASED))
        self.assertNotEqual(g.cap.fileno(), self.dir.cap.fileno())
        far_peer = ObjectPeer(far)
        t = self.in_thread(far_peer.read, b"moved")
        self.assertEqual(g.read(5), (b"moved", True))
        t.join()
        g.close()
        far.close()
        self.list_ok()

    def test_detach_answering_another_interface_is_refused_and_the_port_closed(self):
        from capsa import DetachReply
        f = self.open(7)
        mine, far = socketpair()
        def serve():
            msg = self.peer.next()
            self.peer.answer(msg, OBJECT, "Detach", table(DetachReply, Port=0, Interface="log.Sink", Rights=1),
                             kinds=[HandleKind.PORT], fds=[mine.fileno()])
        t = self.in_thread(serve)
        with self.assertRaises(CapsaError) as e:
            f.detach()
        t.join()
        mine.close()
        self.assertEqual(e.exception.code, Errc.BAD_MESSAGE)
        self.assertIn("Detach answered interface 'log.Sink'", str(e.exception))
        far.close()  # and the fd we received was closed: tearDown counts

    def test_an_open_reply_with_a_port_for_an_object_is_refused(self):
        from fs import OpenReply
        mine, far = socketpair()
        def serve():
            msg = self.peer.next()
            self.peer.answer(msg, DIRECTORY, "Open", table(OpenReply, File=0, Object=3),
                             kinds=[HandleKind.PORT], fds=[mine.fileno()])
        t = self.in_thread(serve)
        with self.assertRaises(CapsaError) as e:
            self.dir.open("a.txt", associated=True)
        t.join()
        mine.close()
        far.close()
        self.assertIn("carries a port and object 3", str(e.exception))

    def test_a_collected_object_is_released_without_touching_the_port(self):
        import gc
        f = self.open(7)
        del f
        gc.collect()
        ev = self.peer.next()
        self.assertEqual((ev.kind, ev.object, ev.control), (wire.Kind.EVENT, 7, True))
        # Collected while the port's lock is held: the Release goes first
        # with the next message instead.
        g = self.open(8)
        with self.dir.cap._link.cond:
            del g
            gc.collect()
        seen = []
        def serve():
            seen.append(self.peer.next())
            seen.append(self.peer.next())
            self.peer.answer(seen[1], DIRECTORY, "List", empty_list_reply())
        t = self.in_thread(serve)
        self.assertEqual(self.dir.list("."), ([], False))
        t.join()
        self.assertEqual([(m.kind, m.object, m.control) for m in seen],
                         [(wire.Kind.EVENT, 8, True), (wire.Kind.CALL, 0, False)])
        self.assertEqual(self.dir.state, State.LIVE)

    def test_objects_end_with_their_port(self):
        f = self.open(7)
        seen = []
        f.cap.on_closed(seen.append)
        self.dir.cap.on_closed(seen.append)
        self.peer.port.close()
        with self.assertRaises(CapsaError) as e:
            f.read(1)
        self.assertEqual(e.exception.code, Errc.REVOKED)
        self.assertEqual((f.state, self.dir.state), (State.REVOKED, State.REVOKED))
        self.assertEqual(seen, [State.REVOKED, State.REVOKED])

    def test_closing_the_port_releases_its_objects(self):
        f = self.open(7)
        with self.dir:
            pass
        self.assertEqual((f.state, self.dir.state), (State.RELEASED, State.RELEASED))
        with self.assertRaises(CapsaError) as e:
            f.read(1)
        self.assertEqual(e.exception.code, Errc.CLOSED)

    def test_a_server_refuses_a_call_naming_an_object(self):
        client, served = socketpair()
        refused = []
        server = Server(served, WORDCOUNT, SCHEMA, on_bad_message="reply", on_refused=refused.append)
        t = self.in_thread(server.next_call)
        m = WORDCOUNT.method("Count")
        client.send(wire.build(wire.Kind.CALL, 1, m.ordinal, m.request.type_hash,
                               table(CountRequest, Text="a"), object=5))
        data, fds = client.receive()
        msg, _ = wire.parse(SCHEMA, data, fds, {wire.Kind.ERROR})
        self.assertEqual((msg.call_id, msg.object, msg.error_code), (1, 5, Errc.BAD_MESSAGE))
        self.assertIn("names object 5, and this port has no objects", str(refused[0]))
        client.close()
        t.join()
        server.close()


class WireTest(unittest.TestCase):
    def test_object_and_control_round_trip_and_default_to_absent(self):
        for obj, control in ((0, False), (1, False), (2**64 - 1, True)):
            packet = wire.build(wire.Kind.CALL, 3, 1, 9, empty_list_reply(), object=obj, control=control)
            msg, _ = wire.parse(SCHEMA, packet, [], {wire.Kind.CALL})
            self.assertEqual((msg.object, msg.control, msg.call_id, msg.method), (obj, control, 3, 1))
        plain = wire.build(wire.Kind.CALL, 3, 1, 9, empty_list_reply())
        self.assertEqual(plain, wire.build(wire.Kind.CALL, 3, 1, 9, empty_list_reply(), object=0))

    def test_control_without_an_object_is_refused(self):
        with self.assertRaises(CapsaError) as e:
            wire.parse(SCHEMA, wire.build(wire.Kind.CALL, 1, 0, 0, b"", control=True), [], {wire.Kind.CALL})
        self.assertEqual(e.exception.code, Errc.BAD_MESSAGE)
        self.assertIn("control without an object", str(e.exception))

    def test_an_error_to_call_0_naming_an_object_is_refused(self):
        with self.assertRaises(CapsaError) as e:
            wire.parse(SCHEMA, wire.build(wire.Kind.ERROR, 0, 0, error_code=1, error_text="", object=4), [],
                       {wire.Kind.ERROR})
        self.assertIn("error to call 0 names object 4", str(e.exception))

    def test_fnv1a32_examples_of_the_protocol(self):
        self.assertEqual([schema_mod.fnv1a32(s) for s in ("", "a", "foobar")],
                         [0x811C9DC5, 0xE40C292C, 0xBF9CF968])

    def test_the_payload_is_8_aligned_and_round_trips(self):
        for n in range(0, 40):
            payload = bytes(range(n)) if n else empty_list_reply()
            packet = wire.build(wire.Kind.CALL, 7, 2, 123, payload)
            msg, ptype = wire.parse(SCHEMA, packet, [], {wire.Kind.CALL})
            self.assertEqual((msg.call_id, msg.method, ptype, msg.payload), (7, 2, 123, payload))

    def test_a_call_with_id_0_is_refused(self):
        with self.assertRaises(CapsaError) as e:
            wire.parse(SCHEMA, wire.build(wire.Kind.CALL, 0, 0, 0, b""), [], {wire.Kind.CALL})
        self.assertIn("call id 0", str(e.exception))

    def test_a_blob_is_sealed(self):
        fd = make_blob(b"abc")
        try:
            with self.assertRaises(OSError):
                os.write(fd, b"x")
            self.assertEqual(read_blob(fd), b"abc")
        finally:
            os.close(fd)

    def test_from_fd_refuses_what_is_not_a_port(self):
        r, w = os.pipe()
        os.close(w)
        with self.assertRaises(CapsaError) as e:
            Context.from_fd(r)
        self.assertEqual(e.exception.code, Errc.INVALID_ARGUMENT)
        with self.assertRaises(OSError):
            os.fstat(r)  # closed by from_fd
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.assertRaises(CapsaError):
            Context.from_fd(s.detach())

    def test_log_text_over_the_limit_is_not_sent(self):
        ours, theirs = socketpair()
        log = LogSink(Capability(ours, SCHEMA.interface("log.Sink"), 1, SCHEMA, "log"))
        with self.assertRaises(CapsaError) as e:
            log.write(LogSink.Level.INFO, "x" * 4097)
        self.assertEqual(e.exception.code, Errc.INVALID_ARGUMENT)
        log.close()
        theirs.close()


if __name__ == "__main__":
    unittest.main()
