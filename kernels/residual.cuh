// Residual add and bias add on the GPU; the CPU references are av_residual_cpu and the bias of av_matmul_cpu.
#ifndef AV_RESIDUAL_CUH
#define AV_RESIDUAL_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "attnviz.h"

#ifdef __cplusplus
extern "C" {
#endif

// out (N) = a (N) + b (N); out may alias a. Device memory.
av_status av_residual_cuda(float *out, const float *a, const float *b, size_t N, cudaStream_t stream);

// out (T, OC) += bias (OC), every row. Device memory.
av_status av_add_bias_cuda(float *out, const float *bias, int T, int OC, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
