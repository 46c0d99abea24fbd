#!/bin/sh
# Spawn-to-ready benchmark, one command:  bench/spawn/run.sh [build-dir]
# Runs spawn_bench RUNS times pinned to CPU 0 (taskset -c 0: the supervisor,
# bubblewrap, the launcher and the worker share one CPU, so the figure is
# the total CPU work of a spawn) and RUNS times unpinned, alternating, and
# prints every run, each run's ratio, the median ratio of each set and the
# load average before and after (the machine is shared: keep the load with
# the figures), and the warm pool's median spawn-to-ready and its ratio to
# the cold spawn of the same run. The build must have the tests
# (spawn_bench starts the sandbox tests' worker), e.g. `build`;
# docs/PERFORMANCE.md reports RelWithDebInfo.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-spawn}
bin=$build/bench/spawn/spawn_bench
[ -x "$bin" ] || { echo "no $bin: ninja -C $build spawn_bench" >&2; exit 1; }
runs=${RUNS:-5}
n=${N:-100}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   runs=$runs n=$n   as $(id -un)"
ratio() { awk '/^ratio/ { sub("x", "", $3); print $3 }' "$out"; }
# The warm pool's median spawn-to-ready (ms) and its ratio to cold, same run.
pool() { awk '/^pool / { print $3 }' "$out"; }
pool_ratio() { awk '/^pool\/cold/ { print $3 }' "$out"; }
pinned="" unpinned="" pool_pinned="" pool_unpinned="" pr_pinned="" pr_unpinned=""
i=0
while [ "$i" -lt "$runs" ]; do
  taskset -c 0 "$bin" "$n" >"$out"
  sed 's/^/  pinned   /' "$out"
  pinned="$pinned $(ratio)"
  pool_pinned="$pool_pinned $(pool)"
  pr_pinned="$pr_pinned $(pool_ratio)"
  "$bin" "$n" >"$out"
  sed 's/^/  unpinned /' "$out"
  unpinned="$unpinned $(ratio)"
  pool_unpinned="$pool_unpinned $(pool)"
  pr_unpinned="$pr_unpinned $(pool_ratio)"
  i=$((i + 1))
done
median() { printf '%s\n' $1 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "pinned ratios:  $pinned   median $(median "$pinned")x"
echo "unpinned ratios:$unpinned   median $(median "$unpinned")x"
echo "pool pinned ms: $pool_pinned   median $(median "$pool_pinned") ms (pool/cold$pr_pinned)"
echo "pool unpinned ms:$pool_unpinned   median $(median "$pool_unpinned") ms (pool/cold$pr_unpinned)"
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)   (targets: capsa <= 1.5x bare; pool <= 1 ms median)"
