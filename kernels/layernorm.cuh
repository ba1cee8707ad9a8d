// LayerNorm on the GPU; the CPU reference is av_layernorm_cpu.
#ifndef AV_LAYERNORM_CUH
#define AV_LAYERNORM_CUH

#include <cuda_runtime.h>

#include "attnviz.h"

#ifdef __cplusplus
extern "C" {
#endif

// out (T, C) = (inp - mean) / sqrt(var + eps) * weight + bias, per row; inp (T, C); weight, bias (C). Device memory.
// out may alias inp.
av_status av_layernorm_cuda(float *out, const float *inp, const float *weight, const float *bias, int T, int C,
                            float eps, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
