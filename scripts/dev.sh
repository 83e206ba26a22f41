#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (see README.md):
#   bash scripts/dev.sh demo   install what is missing, build, run tutorial 01
#   bash scripts/dev.sh test   install what is missing, build (release), run every test
#   bash scripts/dev.sh test-sanitize   the same with AddressSanitizer + UBSan (used by CI)
# Safe to run again: packages already present are not reinstalled, build dirs are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
# The CUDA toolkit lives in /usr/local/cuda on these machines; with nvcc on the
# PATH the release build includes the CUDA backend (Meson option cuda=auto).
# Its GPU tests skip (exit 77) where no GPU answers.
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi

PACKAGES=(g++ meson ninja-build pkg-config libxtensor-dev libxsimd-dev libopenblas-dev
          libfmt-dev catch2 libbenchmark-dev)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

run_tests() {  # run_tests DIR [meson test args...]: prints "N passed, N failed, N skipped"
  local dir=$1
  shift
  local rc=0
  meson test -C "$dir" --print-errorlogs "$@" | tee "$dir/meson-test.out" || rc=$?
  local ok fail skip
  ok=$(awk '/^Ok:/ {print $2}' "$dir/meson-test.out")
  fail=$(awk '/^Fail:/ {print $2}' "$dir/meson-test.out")
  skip=$(awk '/^Skipped:/ {print $2}' "$dir/meson-test.out")
  echo "tests: ${ok:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
  return $rc
}

configure() {  # configure DIR [meson args...]
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
}

case "${1:-}" in
  demo)
    install_missing
    configure build -Dbuildtype=release
    ninja -C build tutorials/quickstart
    ./build/tutorials/quickstart
    ;;
  test)
    install_missing
    configure build -Dbuildtype=release
    ninja -C build
    run_tests build
    ;;
  test-sanitize)
    install_missing
    # -O1 with asserts on, as the sanitizers' own docs advise (-O2 took 1.5-3x
    # the compile time, which dominates CI on two cores); the test programs
    # themselves build at -O0 (tests/meson.build). No GPU under the
    # sanitizers: the CUDA runtime and ASan do not mix.
    configure build-sanitize -Doptimization=1 -Ddebug=true -Db_ndebug=false \
      -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false -Dcuda=disabled
    ninja -C build-sanitize
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      run_tests build-sanitize --timeout-multiplier 4
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test|test-sanitize" >&2
    exit 2
    ;;
esac
