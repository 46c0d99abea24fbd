#!/bin/sh
# Port core benchmark, one command:  bench/port/run.sh [build-dir]
# Builds port_bench in Release, runs it pinned to CPU 0 (both processes),
# then counts syscalls per round trip for real with strace -f -c: two runs of
# N1 and N2 round trips each, (calls(N2) - calls(N1)) / (N2 - N1), which
# cancels start-up and fork costs. strace comes from Debian (scripts/ deps).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-bench-release}
if [ ! -x "$build/bench/port/port_bench" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=OFF >/dev/null
  ninja -C "$build" port_bench >/dev/null
fi
bin=$build/bench/port/port_bench
command -v strace >/dev/null || { echo "strace is missing: apt-get install strace" >&2; exit 1; }

taskset -c 0 "$bin" "${N:-200000}"

calls() {  # total syscalls of both processes for `--only $1 $2`
  strace -f -c -o /tmp/port_bench.strace.$$ taskset -c 0 "$bin" --only "$1" "$2" >/dev/null
  awk '/ total$/ { print $4 }' /tmp/port_bench.strace.$$
  rm -f /tmp/port_bench.strace.$$
}
n1=2000
n2=12000
for mode in raw-rt capsa-rt; do
  a=$(calls $mode $n1)
  b=$(calls $mode $n2)
  echo "syscalls per round trip, $mode: $(awk -v a="$a" -v b="$b" -v n="$((n2 - n1))" 'BEGIN { printf "%.2f", (b - a) / n }')  (target: capsa <= 5, raw needs 4)"
done
