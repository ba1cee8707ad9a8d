// Force-included into the attention kernels (as transform.py rewrites them) for tests/test_cuda_attention.c: the
// CUDA device features they use, on the host. A launch runs its blocks now, one at a time, on the fibers of
// ../fibers.h (barriers, collectives through checked per-warp slots, NaN-filled shared memory, cp.async groups).
#pragma once
#include "../fibers.h"
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#define __launch_bounds__(...)

template <typename P>
void emu_launch(void (*kernel)(P), dim3 grid, dim3 block, size_t smem, cudaStream_t, const P &params) {
    emu_run_blocks(grid, block, smem, [kernel, &params] { kernel(params); });
}
#define cudaFuncSetAttribute(...) cudaSuccess
#define cudaGetDevice(d) (*(d) = 0, cudaSuccess)
#define cudaDeviceGetAttribute(v, attr, d) (*(v) = emu_sm_count(), cudaSuccess)
#define cudaGetLastError() cudaSuccess
