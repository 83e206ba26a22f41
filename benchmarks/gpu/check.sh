#!/usr/bin/env bash
# One command on a bare GPU machine (nvcc, meson, ninja, a C++ compiler; no
# Debian -dev packages): builds ember with the CUDA backend, runs the GPU test
# program and prints the GPU benchmark table.
#
#   bash benchmarks/gpu/check.sh            (from the repository root)
#
# Dependencies come as Debian packages in .deps/debs (fetched on a Debian 12
# machine with `bash benchmarks/gpu/check.sh --fetch`): they are unpacked
# with dpkg -x into .deps/root and found through pkg-config's sysroot, so
# nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEBS=(libxtensor-dev xtl-dev libxsimd-dev libfmt-dev libfmt9 catch2 libopenblas-dev libopenblas-pthread-dev
      libopenblas0-pthread libgfortran5 pkgconf-bin libpkgconf3)
if [ "${1:-}" = "--fetch" ]; then
  mkdir -p .deps/debs && (cd .deps/debs && apt-get download "${DEBS[@]}")
  exit 0
fi

# --pack (here, after a CUDA build in $BUILD): the test and benchmark programs,
# libember and the runtime libraries they load that a bare GPU machine lacks,
# in one .deps/prebuilt.tar.xz. nvcc here must be the device's CUDA major
# version (libcudart/libcublas come from its /usr/local/cuda).
# --prebuilt (on the device): unpack it and run, with no compile there: the
# build costs minutes of device time that the tests then lack.
PROGRAMS=(tests/gpu_tests benchmarks/bench_gpu tests/ember_tests tests/capture_tests tests/autograd_tests)
# The GPU tests, then the benchmark table; a failure is kept in $status.
# Time limits: a hang must not spend the whole device budget.
status=0
run_gpu_checks() {  # gpu_tests bench_gpu
  echo "== GPU tests"
  timeout -k 10 300 "$1" --order decl --durations yes || status=$?
  echo "== GPU benchmarks"
  timeout -k 10 180 "$2" || status=$?
}
if [ "${1:-}" = "--pack" ]; then
  BUILD=${BUILD:-build-gpu}
  STAGE=$(mktemp -d)
  mkdir -p "$STAGE/bin" "$STAGE/lib"
  for p in "${PROGRAMS[@]}"; do cp "$BUILD/$p" "$STAGE/bin/"; done
  cp "$BUILD/lib/libember.so" "$BUILD/capture/libember_capture.so" "$STAGE/lib/"
  for l in libfmt.so.9 libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
    cp -L "$(ldd "$BUILD/lib/libember.so" | awk -v l="$l" '$1 == l { print $3 }')" "$STAGE/lib/"
  done
  strip --strip-unneeded "$STAGE"/bin/* "$STAGE"/lib/*
  mkdir -p .deps && tar -C "$STAGE" -cJf .deps/prebuilt.tar.xz bin lib
  rm -rf "$STAGE"
  ls -l .deps/prebuilt.tar.xz
  exit 0
fi
if [ "${1:-}" = "--prebuilt" ]; then
  PRE=$(mktemp -d)
  tar -C "$PRE" -xJf .deps/prebuilt.tar.xz
  export LD_LIBRARY_PATH=$PRE/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  nvidia-smi -L || true
  run_gpu_checks "$PRE/bin/gpu_tests" "$PRE/bin/bench_gpu"
  # The CPU suites again, now with a GPU present: their no-GPU paths step
  # aside and the device-placement tests take the GPU branch.
  for t in ember_tests capture_tests autograd_tests; do
    echo "== $t (GPU present)"
    timeout -k 10 120 "$PRE/bin/$t" --order decl || status=$?
  done
  exit $status
fi

[ -x /usr/local/cuda/bin/nvcc ] && export PATH=/usr/local/cuda/bin:$PATH
ROOT=$PWD/.deps/root
if [ ! -d /usr/include/xtensor ] && [ ! -d .deps/debs ]; then
  echo "check.sh: no xtensor here and no .deps/debs; run 'bash benchmarks/gpu/check.sh --fetch' on Debian 12 first" >&2
  exit 2
fi
if [ ! -d /usr/include/xtensor ] && [ -d .deps/debs ]; then
  mkdir -p "$ROOT"
  for f in .deps/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
  ML=$ROOT/usr/lib/x86_64-linux-gnu
  export PKG_CONFIG_LIBDIR=$ML/pkgconfig:$ROOT/usr/share/pkgconfig:$ML/openblas-pthread/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$ROOT
  export LD_LIBRARY_PATH=$ML:$ML/openblas-pthread:${LD_LIBRARY_PATH:-}
  command -v pkg-config >/dev/null 2>&1 || export PKG_CONFIG=$ROOT/usr/bin/pkgconf
fi
BUILD=${BUILD:-build-gpu}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" -Dbuildtype=release -Dcuda=enabled -Dtutorials=false -Dbenchmarks=true
ninja -C "$BUILD" tests/gpu_tests benchmarks/bench_gpu
run_gpu_checks "./$BUILD/tests/gpu_tests" "./$BUILD/benchmarks/bench_gpu"
exit $status
