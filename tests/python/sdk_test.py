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

from capsa_worker import (CapsaError, Context, Directory, Errc, HandleKind, LogSink, Server,
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


class WireTest(unittest.TestCase):
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
