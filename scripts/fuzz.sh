#!/usr/bin/env bash
# Builds and runs one libFuzzer target (docs/FUZZING.md) for SECONDS.
# Usage: scripts/fuzz.sh TARGET|all SECONDS [extra libFuzzer flags...]
# TARGET: validator, policy, audit, launcher_config (or all, one after the
# other). Builds in build-fuzz with clang-19 (CAPSA_FUZZ_CXX to override):
# Debian 12's clang-14 cannot compile libstdc++-12's <expected>.
# The corpus grows in build-fuzz/corpus/TARGET (kept between runs); seeds
# come from capsa-fuzz-seeds, fuzz/corpus/TARGET (checked-in regressions)
# and, for policy, examples/*.json. A finding is written to
# build-fuzz/artifacts/ and the script fails. Run one target at a time:
# two runs of one target share its corpus and its log.
set -euo pipefail
CAPSA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deps.sh
. "$CAPSA_ROOT/scripts/deps.sh"

TARGETS=(validator policy audit launcher_config)
if [ $# -lt 2 ]; then
  echo "usage: scripts/fuzz.sh ${TARGETS[*]// /|}|all SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
target=$1 seconds=$2
shift 2
case " ${TARGETS[*]} all " in
  *" $target "*) ;;
  *) echo "capsa: unknown fuzz target '$target' (${TARGETS[*]} or all)" >&2; exit 2 ;;
esac
capsa_ensure_deps

dir=$CAPSA_ROOT/build-fuzz
cxx=${CAPSA_FUZZ_CXX:-clang++-19}
capsa_configure "$dir" -DCMAKE_CXX_COMPILER="$cxx" -DCAPSA_FUZZ=ON -DCAPSA_BUILD_TESTS=OFF \
  -DCAPSA_BUILD_BENCH=OFF -DCMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-}"
cmake --build "$dir" --target capsa_fuzz -j "$(capsa_jobs)" ||
  { echo "capsa: fuzz build failed in $dir" >&2; exit 1; }
rm -rf "$dir/seeds"
"$dir/fuzz/capsa-fuzz-seeds" "$dir/seeds"
mkdir -p "$dir/seeds/policy" "$dir/artifacts"
cp "$CAPSA_ROOT"/examples/*.json "$dir/seeds/policy/"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 corpus=$dir/corpus/$1 seeds=("$dir/seeds/$1") log=$dir/artifacts/$1.log status=0
  shift
  mkdir -p "$corpus"
  [ -d "$CAPSA_ROOT/fuzz/corpus/$t" ] && seeds+=("$CAPSA_ROOT/fuzz/corpus/$t")
  echo "== capsa fuzz: $t for ${seconds}s (log: $log)"
  # -timeout: one input taking 10 s is a finding (a hang), not slowness.
  "$dir/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" "$@" "$corpus" "${seeds[@]}" \
    >"$log" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$log"
    echo "capsa: fuzz target $t failed (status $status); reproducer in $dir/artifacts/" >&2
    return "$status"
  fi
  grep -a -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log"
}

if [ "$target" = all ]; then
  for t in "${TARGETS[@]}"; do run_one "$t" "$@"; done
else
  run_one "$target" "$@"
fi
