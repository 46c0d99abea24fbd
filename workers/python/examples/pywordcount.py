#!/usr/bin/python3
# pywordcount - the Python twin of the wordcount example plugin
# (examples/pywordcount.json, docs/PYTHON.md): counts the words of every
# regular *.txt file of the fs.Directory granted as NAME and writes the 10
# most frequent words and a summary line to the log.Sink granted as "log".
# Same word rule as workers/examples/wordcount/count.h, so its output is the
# C++ plugin's, line for line (tested against examples/texts/expected_top10.out).
#
#   pywordcount.py --texts NAME
#
# Exit status: 0 done; 1 a capability call or a read failed (the reason on
# stderr); 2 bad arguments.
import collections
import os
import re
import sys

from capsa_worker import CapsaError, Context, Directory, EntryType, LogSink

MAX_TEXT_BYTES = 16 << 20  # the whole text is held while counted
# letter+ (apostrophe letter+)*; apostrophe: ' or U+2019 in UTF-8.
WORD = re.compile(rb"[A-Za-z]+(?:(?:'|\xe2\x80\x99)[A-Za-z]+)*")


def read_all(fd, name):
    chunks, size = [], 0
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(64 * 1024):
            size += len(chunk)
            if size > MAX_TEXT_BYTES:  # the host's file may grow while we read it
                raise CapsaError(6, f"{name} grew past {MAX_TEXT_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "--texts":
        print("usage: pywordcount.py --texts GRANT   (GRANT: an fs.Directory grant)", file=sys.stderr)
        return 2
    step = "start"
    try:
        ctx = Context.from_fd()
        step = "grant log"
        log = LogSink.get(ctx, "log")
        step = f'grant "{sys.argv[2]}"'
        texts = Directory.get(ctx, sys.argv[2])
        step = "List"
        entries, truncated = texts.list(".")
        freq, files = collections.Counter(), 0
        for e in entries:
            if e.type != EntryType.REGULAR or not e.name.endswith(".txt"):
                continue
            if e.size > MAX_TEXT_BYTES:
                log.write(LogSink.Level.WARNING, f"skipped {e.name}: {e.size} bytes, over the limit")
                continue
            step = f"OpenFile {e.name}"
            fd, _ = texts.open_file(e.name)
            text = read_all(fd, e.name)
            freq.update(w.lower().replace(b"\xe2\x80\x99", b"'") for w in WORD.findall(text))
            files += 1
        step = "log"
        if truncated:
            log.write(LogSink.Level.WARNING, f"the listing was truncated: files after the first "
                      f"{len(entries)} entries not counted")
        top = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        for i, (word, n) in enumerate(top, 1):
            log.write(LogSink.Level.INFO, f"top {i}: {word.decode()} {n}")
        log.write(LogSink.Level.INFO,
                  f"summary: files {files}, words {sum(freq.values())}, distinct {len(freq)}")
    except (CapsaError, OSError) as e:
        print(f"pywordcount: {step}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
