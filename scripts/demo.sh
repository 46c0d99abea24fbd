#!/usr/bin/env bash
# The demo: builds capsa, then
#   1. starts a worker in the sandbox (bubblewrap + seccomp + limits) and
#      serves it one capability over its bootstrap port: a validated call
#      round trip, a call outside its rights (denied), a forbidden syscall
#      (reported by seccomp), a host file it cannot see, and a malformed
#      message (refused; the port is closed);
#   2. checks and explains the example policies with `capsa check`.
# Installs missing packages first (as root).
set -euo pipefail
CAPSA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deps.sh
. "$CAPSA_ROOT/scripts/deps.sh"
capsa_ensure_deps
BUILD="$CAPSA_ROOT/build"
echo "== building capsa in $BUILD"
capsa_build "$BUILD" >/dev/null

echo
echo "== 1. a sandboxed worker and its one capability"
"$BUILD/examples/roundtrip/capsa-demo-host"

echo
echo "== 2. an operator's policy, checked and explained"
echo "   (the example plugins it names are not built yet, so existence checks are off)"
"$BUILD/supervisor/capsa" check --no-fs-checks --define bin="$BUILD/workers/examples" \
  "$CAPSA_ROOT/examples/pair.json"
echo "== a policy with mistakes: every error, with file:line:column"
bad=$(mktemp --suffix=.json)
trap 'rm -f "$bad"' EXIT
cat >"$bad" <<'JSON'
{
  "workers": [
    { "name": "w", "program": "relative/path",
      "grants": [ { "name": "g", "api": "fs.Directry", "rights": ["Open"] } ],
      "limits": { "cpu_seconds": -3 } }
  ]
}
JSON
"$BUILD/supervisor/capsa" check --no-fs-checks "$bad" || echo "   (capsa check exited $? : invalid policy)"
