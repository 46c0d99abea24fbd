#!/bin/sh
# Growth benchmark, one command:  bench/growth/run.sh [build-dir]
# GRANTS (default 100000) live grants for the `capsa audit` figure, then
# COUNTS (default "10 100 1000") idle sandboxed workers at once. Not pinned:
# starting a thousand sandboxes is the supervisor's and the kernel's work
# on every CPU, and the load average is printed beside the figures.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-bench-release}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAPSA_BUILD_TESTS=OFF >/dev/null
ninja -C "$build" growth_bench growth_idle_worker capsa-launcher >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
"$build/bench/growth/growth_bench" "${GRANTS:-100000}" ${COUNTS:-10 100 1000}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
