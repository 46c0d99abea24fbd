#!/bin/sh
# Supervisor benchmark, one command:  bench/supervisor/run.sh [build-dir]
# Builds sup_bench in Release and runs it pinned to CPU 0: the supervisor,
# bubblewrap, the launcher and the worker all inherit the affinity, so the
# call path and the raw baseline both ping-pong on one CPU.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-bench-release}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=OFF >/dev/null
ninja -C "$build" sup_bench sup_bench_worker capsa-launcher >/dev/null
taskset -c 0 "$build/bench/supervisor/sup_bench" "${N:-100000}" "${GRANTS:-10000}"
