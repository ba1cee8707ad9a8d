// Token + position (+ token type) embedding on the GPU; the CPU reference is av_embedding_cpu.
#ifndef AV_EMBEDDING_CUH
#define AV_EMBEDDING_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "attnviz.h"

#ifdef __cplusplus
extern "C" {
#endif

// out (T, C) = wte[ids[t]] (+ wpe[t] when not NULL) (+ wtt when not NULL); ids (T); wte (V, C); wpe (P, C) or NULL
// (rotary models); wtt (C) or NULL.
// All pointers in device memory.
av_status av_embedding_cuda(float *out, const int32_t *ids, const float *wte, const float *wpe, const float *wtt,
                            int T, int C, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
