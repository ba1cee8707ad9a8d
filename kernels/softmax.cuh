// The softmax of attention on the GPU: causal mask, scale, softmax, normalized P out. The CPU reference is the
// softmax inside av_attention_cpu.
#ifndef AV_SOFTMAX_CUH
#define AV_SOFTMAX_CUH

#include <cuda_runtime.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "backend.h"

// One head. scores (T, T): raw q.k on entry, the float32 P on return (what P.V reads), exactly 0 where masked.
// probs (T, T) in DTYPE, or NULL when this head is not captured: P again, for the side buffer.
// causal masks key j > query i. Device memory.
av_status av_attention_softmax_cuda(float *scores, void *probs, int T, float scale, bool causal, av_attn_dtype dtype,
                                    cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
