#!/usr/bin/env bash
# The demo: builds capsa and its example plugins, then runs them under
# `capsa run`, each with its policy from examples/:
#   1. wordcount: reads the sample texts through an fs.Directory grant and
#      logs the top words;
#   2. asker + counter: two workers that talk over a channel the supervisor
#      connected, and then without it;
#   3. hostile: tries to escape, one attempt after another; each is refused
#      and audited;
#   4. revocation: a reader holds a file capability; `capsa audit` lists the
#      live grants (and whether the kernel agrees who holds each port), and
#      `capsa revoke` takes the file away while the reader is using it;
#   5. the audit summary of all runs, and `capsa check` on a broken policy.
# Installs missing packages first (as root). Builds only what it runs (capsa,
# the launcher, the example plugins; not the tests or benchmarks), showing
# ninja's progress, and keeps the audit log of its runs in
# build/demo-audit.jsonl (started afresh each time; it says where).
set -euo pipefail
CAPSA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deps.sh
. "$CAPSA_ROOT/scripts/deps.sh"
capsa_ensure_deps
BUILD="$CAPSA_ROOT/build"
echo "== building capsa, its launcher and the example plugins in $BUILD"
capsa_configure "$BUILD"
cmake --build "$BUILD" -j "$(capsa_jobs)" --target capsa capsa-launcher capsa_example_plugins ||
  { echo "capsa: build failed in $BUILD" >&2; exit 1; }

CAPSA="$BUILD/supervisor/capsa"
PLUGINS="$BUILD/plugins"
WORK=$(mktemp -d /tmp/capsa-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
AUDIT="$BUILD/demo-audit.jsonl"
: >"$AUDIT"

run() {  # run POLICY: capsa run with the demo's audit log and plugin dir
  "$CAPSA" run -q --control none --audit-log "$AUDIT" --define bin="$PLUGINS" "$CAPSA_ROOT/examples/$1" || true
}

echo
echo "== 1. wordcount: word frequencies of examples/texts, through an fs.Directory grant"
echo "   $ capsa run examples/wordcount.json"
run wordcount.json

echo
echo "== 2. asker and counter: a channel the supervisor connected, then left"
echo "   $ capsa run examples/pair.json"
run pair.json

echo
echo "== 3. hostile: every escape attempt refused (its policy kills it on a bad message)"
echo "   $ capsa run examples/hostile.json"
run hostile.json 2>&1 | grep -v '^hostile: '
echo "   -- the audit lines of those refusals:"
grep '"worker":"hostile"' "$AUDIT" | grep -E '"(call_denied|seccomp_violation|bad_message|worker_killed)"' |
  sed 's/^/   /'

if [ -x "$PLUGINS/reader" ] && [ -f "$CAPSA_ROOT/examples/reader.json" ]; then
  echo
  echo "== 4. revocation: a reader holds a file capability; the operator takes it away"
  SOCK="$WORK/control.sock"
  "$CAPSA" run -q --control "$SOCK" --audit-log "$AUDIT" --define bin="$PLUGINS" \
    "$CAPSA_ROOT/examples/reader.json" &
  sup=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && "$CAPSA" audit --control "$SOCK" >/dev/null 2>&1 && break; sleep 0.1; done
  sleep 1
  echo "   $ capsa audit"
  "$CAPSA" audit --control "$SOCK" | sed 's/^/   /'
  file_grant=$("$CAPSA" audit --control "$SOCK" --json | grep -o '"id":[0-9]*,[^}]*"interface":"fs.File"' | head -1 | grep -o '^"id":[0-9]*' | cut -d: -f2)
  echo "   $ capsa revoke $file_grant"
  "$CAPSA" revoke --control "$SOCK" --reason "demo: operator revoked the file" "$file_grant" | sed 's/^/   /'
  wait "$sup" || true
fi

echo
echo "== 5. audit summary (the log is kept: $AUDIT)"
count() { grep -c "\"event\":\"$1\"" "$AUDIT" || true; }
printf '   workers started %s, grants created %s, ports transferred %s, released %s, revoked %s\n' \
  "$(count worker_started)" "$(count grant_created)" "$(count port_transferred)" "$(count released)" "$(count revoked)"
printf '   calls denied %s, seccomp violations %s, bad messages %s, workers killed %s\n' \
  "$(count call_denied)" "$(count seccomp_violation)" "$(count bad_message)" "$(count worker_killed)"

echo
echo "== a policy with mistakes: every error, with file:line:column"
bad="$WORK/bad.json"
cat >"$bad" <<'JSON'
{
  "workers": [
    { "name": "w", "program": "relative/path",
      "grants": [ { "name": "g", "api": "fs.Directry", "rights": ["Open"] } ],
      "limits": { "cpu_seconds": "5", "memroy": "128MB" } }
  ]
}
JSON
"$CAPSA" check --no-fs-checks "$bad" || echo "   (capsa check exited $? : invalid policy)"

echo
echo "== the audit log of these runs is kept in $AUDIT"
