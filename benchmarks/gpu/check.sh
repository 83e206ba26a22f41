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
echo "== GPU tests"
status=0
# Time limits: a hang must not spend the whole device budget.
timeout -k 10 300 "./$BUILD/tests/gpu_tests" --order decl --durations yes || status=$?
echo "== GPU benchmarks"
timeout -k 10 180 "./$BUILD/benchmarks/bench_gpu" || status=$?
exit $status
