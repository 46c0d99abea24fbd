#!/bin/sh
# Channel benchmark, one command:  bench/channels/run.sh [build-dir]
# Builds channel_bench in Release and runs it pinned to CPU 0, so the
# supervisor's loop, the client and the server (threads of one process)
# and the raw baseline's two threads all ping-pong on one CPU.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-bench-release}
# The tests' option on: the benchmarks speak the test interface
# (capsa.test.Echo, built with the tests). Only the two targets are built.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=ON >/dev/null
ninja -C "$build" channel_bench revoke_bench >/dev/null
taskset -c 0 "$build/bench/channels/channel_bench" "${N:-100000}" "${CHANNELS:-1000}"
taskset -c 0 "$build/bench/channels/revoke_bench" "${HOLDERS:-100}"
