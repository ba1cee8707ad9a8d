// Rotary position embedding on the GPU; the CPU reference is av_rope_cpu.
#ifndef AV_ROPE_CUH
#define AV_ROPE_CUH

#include <cuda_runtime.h>

#include "attnviz.h"

#ifdef __cplusplus
extern "C" {
#endif

// In place on the q and k heads of qkv (T, (NH + 2 NKV) HS), [q (NH heads) | k (NKV heads) | v (NKV heads)] per row:
// in each of them the pair (i, i + HS/2) of row t turns by the angle t * inv_freq[i], for i < HS/2; v is untouched.
// inv_freq (HS / 2). Device memory.
av_status av_rope_cuda(float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
