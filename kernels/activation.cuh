// Elementwise activations on the GPU; the CPU reference is av_activation_cpu.
#ifndef AV_ACTIVATION_CUH
#define AV_ACTIVATION_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "config.h"

// out (N) = act(inp (N)); in place allowed. Device memory.
av_status av_activation_cuda(float *out, const float *inp, size_t N, av_activation act, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
