// Force-included into every transformed kernel file: the CUDA device features the backend kernels use, on the host.
// A launch runs every block in turn, its threads as ucontext fibers (emu_runtime.cpp); warp shuffles exchange values
// through per-warp slots with a yield in between, and check that the whole warp reached the same shuffle.
#pragma once
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <tuple>
#include <type_traits>

#undef threadIdx
#undef blockIdx
#undef gridDim
#undef blockDim
struct emu_dim { unsigned x, y, z; };
extern "C" emu_dim emu_threadIdx, emu_blockIdx, emu_gridDim, emu_blockDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define gridDim emu_gridDim
#define blockDim emu_blockDim

void emu_barrier();
uint64_t *emu_post_slot();                // this lane's slot for its current shuffle
const uint64_t *emu_peer_slot(int lane);  // lane's slot for the same shuffle (checked: same shuffle, alive)
void emu_next_collective();
void emu_check_mask(unsigned mask);
#define __syncthreads() emu_barrier()

template <typename T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a 4/8-byte value");
    emu_check_mask(mask);
    uint64_t *slot = emu_post_slot();
    memcpy(slot, &v, sizeof v);
    emu_barrier();
    int lane = (int)(threadIdx.x % 32);
    int src = (lane ^ lane_mask) % width + lane / width * width;
    T r;
    memcpy(&r, emu_peer_slot(src), sizeof r);
    emu_next_collective();
    return r;
}

// Launch checks as the runtime makes them (block <= 1024 threads, grid.x < 2^31, grid.y/z <= 65535, no zero,
// dynamic shared memory within 48 KiB or what cudaFuncSetAttribute allowed KERNEL), then the grid runs now or is
// queued on STREAM (emu_runtime.cpp).
void emu_launch_grid(const void *kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                     std::function<void()> body);

void emu_check_kernel_pointer(const void *p, int index);
template <typename T> void emu_check_argument(const T &v, int index) {
    if constexpr (std::is_pointer_v<T>) emu_check_kernel_pointer((const void *)v, index);
}

template <typename... P, typename... A>
void emu_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, A &&...args) {
    // Arguments converted to the parameter types now, as the launch copies them.
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    // Every pointer argument must be device memory (NULL allowed): a host pointer would fault on the device.
    std::apply([](const auto &...v) { int i = 0; (emu_check_argument(v, i++), ...); }, params);
    emu_launch_grid((const void *)kernel, grid, block, smem, stream, [kernel, params] { std::apply(kernel, params); });
}
