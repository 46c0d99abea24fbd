#!/usr/bin/python3
# pycounter - the Python twin of the counter example plugin: the serving
# half of a pair (docs/PYTHON.md; tests/python run it with the C++ asker).
#
# Gets the "wordcount" channel end from its bootstrap port and serves
# demo.WordCount on it: each Count answers the words, lines and bytes of a
# text (the rule of workers/examples/wordcount/count.h), sent inline or as a
# sealed blob. The supervisor keeps no end of the channel, so it validates
# none of this traffic: the SDK's Server validates every request itself.
# Logs one line per request to its "log" grant; exits when the asker closes
# the channel.
#
# Exit status: 0 the asker closed the channel; 1 a capability failed.
import os
import re
import sys

import flatbuffers

from capsa_worker import CapsaError, Context, Errc, LogSink, read_blob

from demo import CountReply, CountRequest  # flatc --python, in the SDK's zip

WORD = re.compile(rb"[A-Za-z]+(?:(?:'|\xe2\x80\x99)[A-Za-z]+)*")


def stats(text):
    lines = text.count(b"\n") + (1 if text and not text.endswith(b"\n") else 0)
    return len(WORD.findall(text)), lines, len(text)


def blob_text(fd):
    try:
        return read_blob(fd, limit=64 << 20)
    finally:
        os.close(fd)


def main():
    try:
        ctx = Context.from_fd()
        log = LogSink.get(ctx, "log")
        server = ctx.serve(ctx.get("wordcount", "demo.WordCount"),
                           on_refused=lambda e: log.write(LogSink.Level.WARNING, f"refused a request: {e}"))
        log.write(LogSink.Level.INFO, "serving demo.WordCount on the \"wordcount\" port")
        served = 0

        def count(call):
            nonlocal served
            req = CountRequest.CountRequest.GetRootAs(call.payload, 0)
            blob, text = req.Blob(), req.Text()
            if (blob is None) == (text is None):
                raise CapsaError(Errc.BAD_MESSAGE, "exactly one of text and blob")
            how = "inline text" if blob is None else "sealed blob"
            data = text if blob is None else blob_text(call.take(blob))
            words, lines, size = stats(data)
            b = flatbuffers.Builder(64)
            CountReply.Start(b)
            CountReply.AddWords(b, words)
            CountReply.AddLines(b, lines)
            CountReply.AddBytes(b, size)
            b.Finish(CountReply.End(b))
            served += 1
            log.write(LogSink.Level.INFO, f"served Count #{served} ({how}): {words} words, "
                      f"{lines} lines, {size} bytes")
            return bytes(b.Output())

        server.serve(count)
        log.write(LogSink.Level.INFO, f"the channel closed after {served} requests")
    except CapsaError as e:
        print(f"pycounter: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
