// SwiGLU on the GPU; the CPU reference is av_swiglu_cpu.
#ifndef AV_SWIGLU_CUH
#define AV_SWIGLU_CUH

#include <cuda_runtime.h>

#include "attnviz.h"

#ifdef __cplusplus
extern "C" {
#endif

// out (T, I) = silu(inp[:, :I]) * inp[:, I:], silu(x) = x / (1 + exp(-x)); inp (T, 2I). Device memory. out must not
// alias inp (its rows are half as wide).
av_status av_swiglu_cuda(float *out, const float *inp, int T, int I, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
