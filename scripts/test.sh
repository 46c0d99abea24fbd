#!/usr/bin/env bash
# Runs the whole test suite twice: a normal build, then an AddressSanitizer +
# UndefinedBehaviorSanitizer build; then each libFuzzer target briefly
# (scripts/fuzz.sh, CAPSA_FUZZ_SECONDS each, default 10; 0 skips them).
# Installs missing packages first (as root), warnings are errors.
# Usage: scripts/test.sh [extra ctest args...]
set -euo pipefail
CAPSA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deps.sh
. "$CAPSA_ROOT/scripts/deps.sh"
capsa_ensure_deps
# The browser for report_browser_test: installed as root, then required.
# An install that fails (no network) skips that test, not the suite.
if [ "$(id -u)" -eq 0 ]; then
  capsa_ensure_deps "${CAPSA_BROWSER_PACKAGES[@]}" || true
fi
if [ -z "$(capsa_missing_packages "${CAPSA_BROWSER_PACKAGES[@]}")" ]; then
  export CAPSA_REQUIRE_BROWSER=1
else
  echo "capsa: ${CAPSA_BROWSER_PACKAGES[*]} missing: report_browser_test is skipped" >&2
fi

# Each phase says how long it took, so a slow CI run shows where.
run_suite() {
  local name=$1 dir=$2 start=$SECONDS
  shift 2
  echo "== capsa tests: $name build ($dir)"
  capsa_build "$dir" -DCAPSA_WERROR=ON "$@"
  echo "== capsa tests: $name build took $((SECONDS - start)) s"
  start=$SECONDS
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j "$(capsa_jobs)" "${CTEST_ARGS[@]}")
  echo "== capsa tests: $name tests took $((SECONDS - start)) s"
}

CTEST_ARGS=("$@")
run_suite normal "$CAPSA_ROOT/build"
# ASan needs a large virtual address space, and leak checking runs at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Line tables only (-g1): full debug info of the instrumented build took
# most of CI's time, and file:line in a sanitizer's report needs only the
# line tables. (-O1 is not used: GCC 12 then warns inside flatbuffers'
# reflection header, -Wstringop-overread, a false positive.)
run_suite "sanitizer (ASan+UBSan)" "$CAPSA_ROOT/build-asan" -DCAPSA_SANITIZE=ON -DCAPSA_BUILD_BENCH=OFF \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
echo "== capsa tests: both builds passed"
# A short run finds regressions near the seeds and proves the targets still
# build and run; the long runs are recorded in docs/FUZZING.md.
fuzz_seconds=${CAPSA_FUZZ_SECONDS:-10}
if [ "$fuzz_seconds" -gt 0 ]; then
  start=$SECONDS
  "$CAPSA_ROOT/scripts/fuzz.sh" all "$fuzz_seconds"
  echo "== capsa tests: fuzz targets passed (${fuzz_seconds}s each), $((SECONDS - start)) s with their build"
fi
