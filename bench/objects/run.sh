#!/bin/sh
# Associated objects benchmark, one command:  bench/objects/run.sh [build-dir]
# Builds objects_bench in Release and runs it pinned to CPU 0, so the
# supervisor's loop and the worker (threads of one process) ping-pong on
# one CPU for the port and the object alike.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-bench-release}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=ON >/dev/null
ninja -C "$build" objects_bench >/dev/null
taskset -c 0 "$build/bench/objects/objects_bench" "${N:-100000}" "${CYCLES:-20000}" "${OBJECTS:-5000}"
