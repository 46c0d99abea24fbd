# Sourced by the other scripts: makes sure the Debian 12 packages capsa needs
# are installed. As root it installs what is missing with apt-get; otherwise
# it names the missing packages and the command to install them, and fails.

CAPSA_PACKAGES=(
  g++ cmake ninja-build pkg-config git
  bubblewrap libseccomp-dev
  flatbuffers-compiler libflatbuffers-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev libcli11-dev
  util-linux procps strace
  python3 python3-flatbuffers
  graphviz  # `capsa graph --format svg|png` and its tests
  # The fuzz build (scripts/fuzz.sh, docs/FUZZING.md): Debian 12's default
  # clang-14 cannot compile libstdc++-12's <expected>; clang-19 (bookworm)
  # can, and libclang-rt-19-dev holds libFuzzer and the sanitizer runtimes.
  clang-19 libclang-rt-19-dev
)

# Optional: the real browser `capsa report`'s page is opened in by
# supervisor/cli/report_browser_test.cc. Large (chromium: ~80 MB to
# download, ~290 MB installed with its libraries, ~40 s to install), so not
# needed to build: scripts/test.sh installs it as root and then makes the
# test required (CAPSA_REQUIRE_BROWSER=1); elsewhere the test is skipped
# without it.
CAPSA_BROWSER_PACKAGES=(chromium)

# capsa_missing_packages [PACKAGE...]: those not installed (default: CAPSA_PACKAGES).
capsa_missing_packages() {
  local missing=() p list=("$@")
  [ $# -eq 0 ] && list=("${CAPSA_PACKAGES[@]}")
  for p in "${list[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  echo "${missing[@]}"
}

# capsa_ensure_deps [PACKAGE...]: installs what is missing (default: CAPSA_PACKAGES).
capsa_ensure_deps() {
  local missing
  missing=$(capsa_missing_packages "$@")
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    echo "capsa: installing missing packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || { echo "capsa: apt-get update failed" >&2; return 1; }
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
      { echo "capsa: apt-get install failed for: $missing" >&2; return 1; }
  else
    echo "capsa: these Debian packages are missing: $missing" >&2
    echo "capsa: install them as root with:" >&2
    echo "    sudo apt-get install -y $missing" >&2
    return 1
  fi
}

# Number of parallel build jobs: all cores, at least one.
capsa_jobs() { nproc 2>/dev/null || echo 1; }

# capsa_configure DIR [cmake options...]: configure DIR (quietly; errors shown).
capsa_configure() {
  local dir=$1
  shift
  cmake -S "$CAPSA_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null ||
    { echo "capsa: cmake configure failed in $dir" >&2; return 1; }
}

# capsa_build DIR [cmake options...]: configure (once) and build everything.
capsa_build() {
  local dir=$1
  shift
  capsa_configure "$dir" "$@" || return 1
  cmake --build "$dir" -j "$(capsa_jobs)" ||
    { echo "capsa: build failed in $dir" >&2; return 1; }
}
