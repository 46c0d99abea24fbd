#!/usr/bin/env bash
# install.plugin_template (tests/install/CMakeLists.txt): BUILD SOURCE.
# Every step is what docs/SDK.md, "A plugin outside the tree", tells a user
# to do; a failure names the step.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SOURCE=$(cd "$2" && pwd)
T=$(mktemp -d /tmp/capsa-install-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
chmod 0755 "$T"  # uid 65534 runs the installed capsa from here below
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect FILE TEXT: FILE holds the line TEXT
  grep -qxF -- "$2" "$1" || { cat "$1" >&2; fail "no line \"$2\" in $1"; }
}

echo "== cmake --install into $T/prefix"
cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null
CAPSA="$T/prefix/bin/capsa"
"$CAPSA" --version | grep -qx "capsa [0-9]*\.[0-9]*\.[0-9]*" || fail "capsa --version"
for f in libexec/capsa/capsa-launcher lib/cmake/capsa/capsaConfig.cmake \
         include/capsa/workers/sdk/builtins.h include/capsa/generated/log_sink_generated.h \
         share/capsa/schemas/log_sink.fbs share/capsa/schemas/log_sink.bfbs; do
  [ -e "$T/prefix/$f" ] || fail "not installed: $f"
done
[ -z "$(find "$T/prefix/include" -name '*test*')" ] || fail "a test header was installed"

echo "== the template, copied out of the tree, built with find_package(capsa)"
cp -r "$SOURCE/examples/plugin-template" "$T/src"
cmake -S "$T/src" -B "$T/build" -DCMAKE_PREFIX_PATH="$T/prefix" >"$T/configure.log" 2>&1 ||
  { cat "$T/configure.log" >&2; fail "configuring the template"; }
cmake --build "$T/build" >"$T/build.log" 2>&1 || { cat "$T/build.log" >&2; fail "building the template"; }

echo "== the same main.cc built with pkg-config"
mkdir "$T/pc"
# shellcheck disable=SC2046  # pkg-config's flags are meant to split
c++ "$T/src/main.cc" -o "$T/pc/my-plugin" \
  $(PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" pkg-config --cflags --libs capsa-worker) ||
  fail "building with pkg-config capsa-worker"

echo "== capsa check and capsa run, from the template's folder, -D bin relative"
cd "$T/src"
"$CAPSA" check -D bin=../build policy.json >"$T/check.out" || { cat "$T/check.out" >&2; fail "capsa check"; }
expect "$T/check.out" "  program          $T/build/my-plugin"
for bin in ../build ../pc; do
  "$CAPSA" run -v --control none --audit-log "$T/audit.jsonl" -D bin=$bin policy.json >"$T/run.out" 2>&1 ||
    { cat "$T/run.out" >&2; fail "capsa run with bin=$bin"; }
  expect "$T/run.out" "[my-plugin] data holds 1 entries"
  expect "$T/run.out" "[my-plugin] hello.txt says: Hello from the host, read through a capability."
  grep -q "\[debug\] launcher $T/prefix/libexec/capsa/capsa-launcher$" "$T/run.out" ||
    { cat "$T/run.out" >&2; fail "the installed capsa did not use the installed launcher"; }
done
grep -q '"event":"worker_exited","worker":"my-plugin".*"status":"exited"' "$T/audit.jsonl" ||
  fail "no worker_exited in the audit log"

if [ "$(id -u)" -eq 0 ]; then
  echo "== again as uid 65534, with the default audit log under \$XDG_STATE_HOME"
  chmod -R a+rX "$T"
  mkdir -m 0777 "$T/home"
  setpriv --reuid 65534 --regid 65534 --clear-groups \
    env -i PATH=/usr/bin:/bin HOME="$T/home" XDG_STATE_HOME="$T/home/state" \
    "$CAPSA" run --control none -D bin=../build policy.json >"$T/run65534.out" 2>&1 ||
    { cat "$T/run65534.out" >&2; fail "capsa run as uid 65534"; }
  expect "$T/run65534.out" "[my-plugin] hello.txt says: Hello from the host, read through a capability."
  grep -qE "^capsa: audit log $T/home/state/capsa/audit\.jsonl \(run [0-9a-f]{16}\)\$" "$T/run65534.out" ||
    { cat "$T/run65534.out" >&2; fail "no line naming the default audit log and the run"; }
  grep -q '"event":"worker_started","worker":"my-plugin"' "$T/home/state/capsa/audit.jsonl" ||
    fail "no worker_started in the default audit log"
  [ "$(stat -c %a "$T/home/state/capsa")" = 700 ] || fail "the audit log's directory is not 0700"
fi

echo "== cpack -G DEB"
(cd "$T" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$T/deb" >"$T/cpack.log" 2>&1) ||
  { cat "$T/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$T"/deb/capsa_*.deb)
dpkg-deb -c "$deb" >"$T/deb.list"
for f in ./usr/bin/capsa ./usr/libexec/capsa/capsa-launcher ./usr/lib/cmake/capsa/capsaConfig.cmake \
         ./usr/lib/pkgconfig/capsa-worker.pc ./usr/include/capsa/workers/sdk/builtins.h; do
  grep -q " $f\$" "$T/deb.list" || fail "not in the .deb: $f"
done
dpkg-deb -f "$deb" Depends | grep -q bubblewrap || fail "the .deb does not depend on bubblewrap"
echo "install.plugin_template: passed"
