// Force-included into the attention kernels (kernels/attention_{fwd,probs}.cu, attnviz_kernels.cu, as
// tests/emulator/attention/transform.py rewrites them) when they are built into the backend emulator, so the CUDA
// backend's flash path runs them on the same streams, device memory and fibers as the other kernels. It gives them
// what tests/emulator/attention/emu_device.h gives them there, on this emulator's launches (emu_runtime.cpp); the
// PTX primitives themselves come from tests/emulator/attention/emu_primitives.h unchanged.
#pragma once
#include "emu_kernel.h"

#undef __launch_bounds__
#define __launch_bounds__(...)

// The runtime header's kernel-pointer overload exists only for nvcc; this one forwards to emu_runtime.cpp's.
template <typename F> static inline cudaError_t cudaFuncSetAttribute(F *kernel, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)kernel, attr, value);
}
