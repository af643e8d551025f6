#!/usr/bin/env bash
# The NEON kernels, cross-compiled for AArch64 and tested under qemu-aarch64 (CI runs this; so can anyone on an
# x86 Linux box with g++-aarch64-linux-gnu and qemu-user installed):
#   tests/neon/run.sh [build-dir]      (default: build-neon next to the checkout's other builds)
# Builds kernels/ and the kernel tests only (STRATA_KERNELS_ONLY, cmake/aarch64.cmake), GoogleTest from
# /usr/src/googletest, then runs them on an emulated CPU with dotprod and on a Cortex-A53 without it.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD="${1:-${STRATA_NEON_BUILD_DIR:-build-neon}}"
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "neon: $tool missing (apt install g++-aarch64-linux-gnu qemu-user)" >&2; exit 1; }
done
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_DIR="${CCACHE_DIR:-${STRATA_CACHE:-$HOME/.cache/strata}/ccache}"
  # Paths relative to the checkout, so a clone in another folder still hits the cache.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64.cmake" -DSTRATA_KERNELS_ONLY=ON \
      -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target strata_kernel_tests
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)"
