#!/usr/bin/env bash
# Runs the GPU tests on a CPU emulation of the device (see README.md here): tests/test_cuda_kernels.c and
# tests/test_cuda_model.c against the real CUDA backend and kernels, tests/test_cuda_attention.c against the real
# attention kernels, and whole CLI runs on the emulated device against --device cpu. Logic, not hardware: it needs
# the CUDA Toolkit's headers (and libcudart for the attention run), never a GPU.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rc=0
step() { # name, command...
  local name=$1
  shift
  echo "== emulator: $name"
  "$@" || { echo "== emulator: $name FAILED"; rc=1; }
}
step "build (backend)" bash "$here/backend/build.sh"
step "backend tests, four stream schedules" bash "$here/backend/run.sh"
step "CLI on the emulated device vs --device cpu" bash "$here/backend/cli_check.sh"
step "build (attention kernels)" bash "$here/attention/build.sh"
step "attention kernel tests" bash "$here/attention/run.sh"
echo "emulator: $([ $rc -eq 0 ] && echo "all passed" || echo "FAILURES")"
exit $rc
