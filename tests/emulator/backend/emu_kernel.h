// Force-included into every transformed kernel file: the CUDA device features the backend kernels use, on the host.
// A launch runs every block in turn, its threads as fibers (../fibers.h: barriers, checked shuffles), on the streams
// of emu_runtime.cpp.
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

#include "../fibers.h"

// Launch checks as the runtime makes them (block <= 1024 threads, grid.x < 2^31, grid.y/z <= 65535, no zero,
// dynamic shared memory within 48 KiB or what cudaFuncSetAttribute allowed KERNEL), then the grid runs now or is
// queued on STREAM (emu_runtime.cpp).
void emu_launch_grid(const void *kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                     std::function<void()> body);

// glibc has no sincospi (CUDA's math library does; rope.cu uses it).
inline void sincospi(double x, double *s, double *c) {
    *s = std::sin(M_PI * x);
    *c = std::cos(M_PI * x);
}

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
