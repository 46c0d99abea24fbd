#!/bin/sh
# Scale check, one command:  bench/scale/run.sh [N] [build-dir]
# Starts N wordcount workers at once under one `capsa run` (one policy
# with N copies of examples/wordcount.json's worker, wordcount-0 ..
# wordcount-N-1) and reports how many finished correctly (exit 0, their log
# lines equal to examples/texts/expected_top10.out, no refusal), the total
# time, and the supervisor's peak RSS (VmHWM of the `capsa run` process
# itself, sampled every 50 ms; the sandboxes are not counted). Exits 1
# unless all N are correct. Builds capsa, the launcher and the example
# plugins in Release first, unless SCALE_NO_BUILD=1 (the ctest smoke run
# uses the binaries of the build it runs in).
# The worker's wall-clock limit is raised from the example's 30 s to 300 s:
# what is measured is whether a burst waits instead of failing, not the
# example's deadline on a shared machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-100}
build=${2:-$root/build-bench-release}
if [ "${SCALE_NO_BUILD:-0}" != 1 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=OFF >/dev/null
  ninja -C "$build" capsa capsa-launcher capsa_example_plugins >/dev/null
fi
capsa=$build/supervisor/capsa
plugins=$build/plugins
[ -x "$capsa" ] && [ -x "$plugins/wordcount" ] || { echo "scale: no capsa or wordcount in $build" >&2; exit 2; }
work=$(mktemp -d /tmp/capsa-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$root/examples/texts" "$work/texts"

# The policy: N workers, each as examples/wordcount.json's.
{
  echo '{ "workers": ['
  i=0
  while [ "$i" -lt "$n" ]; do
    [ "$i" -gt 0 ] && echo ','
    cat <<POLICY
{ "name": "wordcount-$i", "program": "\${bin}/wordcount", "args": ["--texts", "texts"],
  "env": ["LANG=C.UTF-8"],
  "limits": { "memory": "128M", "cpu_seconds": 5, "wall_seconds": 300, "processes": 1,
              "open_files": 32, "message_bytes": "64K" },
  "on_bad_message": "kill",
  "grants": [
    { "name": "texts", "api": "fs.Directory", "rights": ["Open", "OpenFile", "List", "Stat"],
      "constraints": { "root": "\${policy_dir}/texts", "read_only": true }, "rate": 1000 },
    { "name": "log", "api": "log.Sink", "rights": ["*"], "byte_budget": "1M" } ] }
POLICY
    i=$((i + 1))
  done
  echo '] }'
} >"$work/policy.json"

start=$(date +%s.%N)
"$capsa" run -q --control none --audit-log "$work/audit.jsonl" --define bin="$plugins" \
  "$work/policy.json" >"$work/out.txt" 2>"$work/err.txt" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
  sleep 0.05
done
rc=0
wait "$pid" || rc=$?
end=$(date +%s.%N)

# Correct: the worker's lines are the expected ones, in order, and it exited 0.
expected=$(cat "$root/examples/texts/expected_top10.out")
correct=0
i=0
while [ "$i" -lt "$n" ]; do
  got=$(sed -n "s/^\[wordcount-$i\] //p" "$work/out.txt")
  if [ "$got" = "$expected" ] &&
     grep -q "\"event\":\"worker_exited\".*\"worker\":\"wordcount-$i\".*\"status\":\"exited\",\"exit_code\":0" "$work/audit.jsonl"; then
    correct=$((correct + 1))
  fi
  i=$((i + 1))
done
overloaded=$(grep -c 'overloaded' "$work/audit.jsonl" || true)
printf 'scale: %d wordcount workers at once: %d correct, %d overloaded refusals, %.2f s, supervisor peak RSS %.1f MiB (capsa run exit %d)\n' \
  "$n" "$correct" "$overloaded" "$(awk "BEGIN { print $end - $start }")" "$(awk "BEGIN { print $peak / 1024 }")" "$rc"
if [ "$correct" -ne "$n" ]; then
  echo "scale: first errors:" >&2
  head -5 "$work/err.txt" >&2
  grep -m5 'overloaded\|worker_killed\|"status":"[a-z_]*",' "$work/audit.jsonl" | grep -v '"exit_code":0' | head -5 >&2 || true
  exit 1
fi
