// Exact attention probabilities and their reductions from Q, K and the forward's LSE. Mirror:
// av_attention_probs_tiled (host/attention_tiled.c). Launched through av_attention_probs (kernels/attnviz_kernels.cu).
#ifndef AV_ATTENTION_PROBS_CUH
#define AV_ATTENTION_PROBS_CUH

#include "attnviz_kernels.h"

#include <cuda_runtime.h>

typedef struct attention_probs_params {
    const void *q, *k;   // q (B, NH, T, D), k (B, NKV, T, D) with the strides below, in elements
    int64_t q_batch, q_head, q_row;
    int64_t k_batch, k_head, k_row;
    const float *lse;    // (B, NH, T)
    int batch, n_heads, n_kv_heads, seq_len, causal;
    float scale_log2;    // scale * log2(e)
    int n_query_tiles;   // ceil(T / TILE_M)
    int key_chunks;      // blocks a query tile's keys are split among, at most (set by the launch: key_chunks_for)

    // Per-head outputs, slots for heads [head_begin, head_begin + n_slots); NULL when not asked for.
    int head_begin, n_slots;
    int out_dtype, layout; // av_dtype and av_probs_layout of probs, rows, head_mean and head_max
    void *probs;           // (B, NS, T, T) or packed (B, NS, T (T + 1) / 2)
    void *rows;            // (B, NS, rows_end - rows_begin, T)
    int rows_begin, rows_end;
    float *colsum, *colmean; // (B, NS, T)
    float *pooled;           // (B, NS, n_bins, n_bins)
    int pool, n_bins, max_local_bins;
    float *col_partial;      // workspace (B, NS, n_query_tiles, T) when colsum or colmean
    float *pool_partial;     // workspace (B, NS, n_query_tiles, max_local_bins, n_bins) when pooled, unless the pool
                             // divides the tile size (every bin inside one tile: means written directly)

    // Reductions over heads: (B, n_groups, T, T) or packed.
    void *head_mean, *head_max;
    int n_groups;
} attention_probs_params;

// Launches every kernel P asks for on STREAM: the per-head pass, the fixed-order second passes of the column sums
// and pooling, and the head reduction; returns the first launch error.
cudaError_t attention_probs_launch(const attention_probs_params *p, av_dtype dtype, int head_dim,
                                   cudaStream_t stream);

#endif
