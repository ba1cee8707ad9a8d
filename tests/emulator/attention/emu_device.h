// Host emulation of the CUDA features the attention kernels use: one block at a time, its 128 threads as fibers
// (ucontext) switched at every barrier; warp collectives (shfl, ldmatrix, mma) exchange through double-buffered
// per-warp slots with one barrier per collective. All warps run the same collective sequence in these kernels.
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <ucontext.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <algorithm>

#define __launch_bounds__(...)
#undef threadIdx
#undef blockIdx
#undef gridDim
#undef blockDim
struct emu_dim { unsigned x, y, z; };
extern emu_dim emu_threadIdx, emu_blockIdx, emu_gridDim, emu_blockDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define gridDim emu_gridDim
#define blockDim emu_blockDim

void emu_barrier();                     // __syncthreads and the exchange point of every collective
unsigned char *emu_shared();            // this block's dynamic shared memory
int emu_lane();
int emu_warp();
// Per-warp exchange slot of this lane for the current collective (16 x 64-bit words), and of lane L after the barrier.
uint64_t *emu_post_slot();
const uint64_t *emu_peer_slot(int lane);
void emu_next_collective();
void emu_cp_async(void *dst, const void *src, bool valid);
void emu_cp_commit();
void emu_cp_wait(int pending);

#define __syncthreads() emu_barrier()
// Stricter than the hardware's (the whole block meets), which the kernels allow: every __syncwarp they make is
// reached by all warps of the block alike.
#define __syncwarp() emu_barrier()
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }

static inline float __shfl_xor_sync(unsigned, float v, int mask) {
    uint64_t *slot = emu_post_slot();
    memcpy(slot, &v, 4);
    emu_barrier();
    float r;
    memcpy(&r, emu_peer_slot(emu_lane() ^ mask), 4);
    emu_next_collective();
    return r;
}

typedef void (*emu_kernel_fn)(const void *params);
void emu_run_grid(void (*body)(const void *), const void *params, dim3 grid, dim3 block, size_t smem);

template <typename P>
void emu_launch(void (*kernel)(P), dim3 grid, dim3 block, size_t smem, cudaStream_t, const P &params) {
    static void (*k)(P);
    k = kernel;
    emu_run_grid([](const void *p) { k(*static_cast<const P *>(p)); }, &params, grid, block, smem);
}
#define cudaFuncSetAttribute(...) cudaSuccess
#define cudaGetLastError() cudaSuccess
