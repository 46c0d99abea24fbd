#!/bin/sh
# Fairness benchmark, one command:  bench/fairness/run.sh [build-dir]
# Builds fair_bench in Release and runs it pinned to CPU 0: the
# supervisor's loop and pool, the victim and the three neighbours (threads
# of one process) all share one CPU, so the flood competes for the same
# CPU as the victim, and the ratio is against the victim alone in the
# same run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-bench-release}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=OFF >/dev/null
ninja -C "$build" fair_bench >/dev/null
taskset -c 0 "$build/bench/fairness/fair_bench" "${CALLS:-20000}" "${PORTS:-4}"
