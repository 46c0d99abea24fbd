#!/usr/bin/env bash
# docs.commands (tests/docs/CMakeLists.txt): CHECKOUT FILE...
#
# Runs every ```sh block of each FILE (a path in CHECKOUT), in file order,
# as a reader would type it from the top of the checkout: each block in
# `bash -euo pipefail`, so every command in it must succeed. A block is
# preceded (on the line before its fence) by at most one marker, an HTML
# comment a reader does not see:
#   <!-- doc-test: skip: WHY -->     not run; WHY names what tests it instead
#   <!-- doc-test: while COMMAND --> COMMAND is started first, in the
#                                    background (a `capsa run` the block
#                                    talks to); the block runs once
#                                    `capsa audit` answers, then COMMAND gets
#                                    SIGTERM
# Blocks fenced as anything but sh (```text, ```cpp, a bare ```) are output,
# code or synopses, never run.
#
# The checkout is not written to: the blocks run in a scratch directory
# with build/ linked to the checkout's build and examples/ and docs/ copied,
# and with XDG_RUNTIME_DIR and XDG_STATE_HOME there too, so control sockets
# and default audit logs stay private to this run.
set -euo pipefail
CHECKOUT=$(cd "$1" && pwd)
shift
T=$(mktemp -d /tmp/capsa-doc-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/work" "$T/blocks" "$T/run" "$T/state"
chmod 0700 "$T/run"
ln -s "$CHECKOUT/build" "$T/work/build"
cp -r "$CHECKOUT/examples" "$CHECKOUT/docs" "$T/work/"
export XDG_RUNTIME_DIR="$T/run" XDG_STATE_HOME="$T/state"

ran=0 skipped=0 failed=0
for doc in "$@"; do
  rm -f "$T"/blocks/*
  # Writes blocks/N.sh, and blocks/N.skip or blocks/N.while with the marker's text.
  awk -v dir="$T/blocks" '
    /^<!-- doc-test: skip/ { marker = "skip"; arg = $0; next }
    /^<!-- doc-test: while / { marker = "while"; arg = $0
                               sub(/^<!-- doc-test: while /, "", arg); sub(/ -->$/, "", arg); next }
    !inblock && /^```sh[[:space:]]*$/ {
      inblock = 1; n++; file = sprintf("%s/%03d.sh", dir, n); printf "" > file
      if (marker != "") { print arg > sprintf("%s/%03d.%s", dir, n, marker) }
      marker = ""; next
    }
    inblock && /^```/ { inblock = 0; close(file); next }
    inblock { print >> file; next }
    /[^[:space:]]/ { marker = "" }
  ' "$CHECKOUT/$doc"
  for block in "$T"/blocks/*.sh; do
    [ -e "$block" ] || continue
    id="$doc block $(basename "$block" .sh)"
    if [ -e "${block%.sh}.skip" ]; then
      skipped=$((skipped + 1))
      echo "-- skip $id ($(sed 's/^<!-- doc-test: skip: //; s/ -->$//' "${block%.sh}.skip"))"
      continue
    fi
    echo "-- run  $id:"
    sed 's/^/     $ /' "$block"
    bg=
    if [ -e "${block%.sh}.while" ]; then
      (cd "$T/work" && exec bash -c "exec $(cat "${block%.sh}.while")") >"$T/background.out" 2>&1 &
      bg=$!
      for _ in $(seq 100); do
        (cd "$T/work" && build/supervisor/capsa audit >/dev/null 2>&1) && break
        sleep 0.1
      done
    fi
    status=0
    (cd "$T/work" && bash -euo pipefail "$block") >"$T/out" 2>&1 || status=$?
    if [ -n "$bg" ]; then
      kill -TERM "$bg" 2>/dev/null || true
      wait "$bg" || true
    fi
    ran=$((ran + 1))
    if [ "$status" -ne 0 ]; then
      failed=$((failed + 1))
      echo "FAIL: $id exited $status; its output:"
      sed 's/^/     /' "$T/out"
      [ -z "$bg" ] || { echo "     and the background command's:"; sed 's/^/     /' "$T/background.out"; }
    fi
  done
done
echo "docs.commands: $ran blocks run, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ] && [ "$ran" -gt 0 ]
