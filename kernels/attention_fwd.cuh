// Flash-style attention forward: O and the per-row log-sum-exp. Mirror: av_attention_forward_tiled
// (host/attention_tiled.c). Launched through av_attention_forward (kernels/attnviz_kernels.cu).
#ifndef AV_ATTENTION_FWD_CUH
#define AV_ATTENTION_FWD_CUH

#include "attnviz_kernels.h"

#include <cuda_runtime.h>

typedef struct attention_fwd_params {
    const void *q, *k, *v; // q (B, NH, T, D), k and v (B, NKV, T, D) with the strides below, in elements
    void *o;               // (B, NH, T, D)
    float *lse;            // (B, NH, T) contiguous
    int64_t q_batch, q_head, q_row;
    int64_t k_batch, k_head, k_row;
    int64_t v_batch, v_head, v_row;
    int64_t o_batch, o_head, o_row;
    int batch, n_heads, n_kv_heads, seq_len;
    float scale_log2;      // scale * log2(e): the softmax runs on exp2
} attention_fwd_params;

// Launches the instantiation for DTYPE (fp16 or bf16), HEAD_DIM (64 or 128) and CAUSAL; returns the launch error.
cudaError_t attention_fwd_launch(const attention_fwd_params *p, av_dtype dtype, int head_dim, bool causal,
                                 cudaStream_t stream);

#endif
