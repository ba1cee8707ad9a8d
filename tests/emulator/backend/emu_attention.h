// Force-included into the attention kernels (kernels/attention_{fwd,probs}.cu, attnviz_kernels.cu, as
// tests/emulator/attention/transform.py rewrites them) when they are built into the backend emulator, so the CUDA
// backend's flash path runs them on the same streams, device memory and fibers as the other kernels. It gives them
// what tests/emulator/attention/emu_device.h gives them there, on top of this emulator's runtime (emu_runtime.cpp):
// dynamic shared memory, lane and warp numbers and cp.async groups; the PTX primitives themselves come from
// tests/emulator/attention/emu_primitives.h unchanged (its collectives exchange through this runtime's checked slots).
#pragma once
#include "emu_kernel.h"

#undef __launch_bounds__
#define __launch_bounds__(...)

unsigned char *emu_shared();  // the running block's dynamic shared memory (garbage at block start, not zeros)
int emu_lane();
int emu_warp();
void emu_cp_async(void *dst, const void *src, bool valid);
void emu_cp_commit();
void emu_cp_wait(int pending);

// As in tests/emulator/attention/emu_device.h: __syncwarp meets the whole block (every one the kernels make is
// reached by all warps alike).
#define __syncwarp() emu_barrier()
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }

// The runtime header's kernel-pointer overload exists only for nvcc; this one forwards to emu_runtime.cpp's.
template <typename F> static inline cudaError_t cudaFuncSetAttribute(F *kernel, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)kernel, attr, value);
}
