// RMSNorm on the GPU; the CPU reference is av_rmsnorm_cpu.
#ifndef AV_RMSNORM_CUH
#define AV_RMSNORM_CUH

#include <cuda_runtime.h>

#include "attnviz.h"

#ifdef __cplusplus
extern "C" {
#endif

// out (T, C) = inp / sqrt(mean(inp^2) + eps) * weight, per row; inp (T, C); weight (C). Device memory. out may alias
// inp.
av_status av_rmsnorm_cuda(float *out, const float *inp, const float *weight, int T, int C, float eps,
                          cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
