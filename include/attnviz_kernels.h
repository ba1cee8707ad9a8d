// attnviz kernel-level API: exact attention probabilities for other CUDA projects.
//
// Two kernels, both on device pointers the caller owns, on the caller's stream:
//   av_attention_forward  O = softmax(Q K^T * scale) V and the per-row log-sum-exp, tensor cores, online softmax;
//   av_attention_probs    recomputes S tile by tile and derives exact P = exp(s * scale - LSE) and reductions of it
//                         (full P, selected rows, column sums, pooled maps, head mean and max) without n x n scratch.
// Nothing here allocates: av_attention_probs_workspace says how many bytes of device scratch a request needs.
// Results are deterministic run to run (fixed-order reductions, no floating-point atomics).
//
//   av_attention_shape shape = {.batch = 1, .n_heads = 32, .n_kv_heads = 8, .seq_len = T, .head_dim = 128,
//                               .dtype = AV_DTYPE_BF16, .causal = 1};
//   av_attention_forward(&shape, q, k, v, o, lse, stream);
//   av_probs_request req = {.pooled = pooled, .pool = 8, .head_end = 32};
//   av_attention_probs_workspace(&shape, &req, &bytes);   // then cudaMalloc it once, reuse it
//   av_attention_probs(&shape, q, k, lse, &req, workspace, bytes, stream);
#ifndef ATTNVIZ_KERNELS_H
#define ATTNVIZ_KERNELS_H

#include "attnviz.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// The runtime's own definition, repeated so that this header needs no CUDA include path to be read.
typedef struct CUstream_st *cudaStream_t;

typedef enum av_dtype { AV_DTYPE_FP32, AV_DTYPE_FP16, AV_DTYPE_BF16 } av_dtype;

// Query and key tiles of the probability kernel and of the tiled CPU mirrors. The forward's query tile is two of
// these (each warp owns 32 rows); every row still sees the same key tiles in the same order.
#define AV_ATTENTION_TILE_M 64
#define AV_ATTENTION_TILE_N 64

// A (batch, heads, seq_len, head_dim) tensor in device memory. The head_dim elements of a row are contiguous; the
// strides are in elements, multiples of 8, and data is 16-byte aligned. A fused qkv buffer (T, 3C) of one sequence
// is three tensors: row_stride 3C, head_stride head_dim, data offset 0, C and 2C.
typedef struct av_attention_tensor {
    void *data;
    int64_t batch_stride;
    int64_t head_stride;
    int64_t row_stride;
} av_attention_tensor;

typedef struct av_attention_shape {
    int batch;
    int n_heads;       // query heads
    int n_kv_heads;    // key/value heads; divides n_heads (grouped-query attention when smaller)
    int seq_len;       // T: queries and keys (self-attention)
    int head_dim;      // 64 or 128
    av_dtype dtype;    // q, k, v and o: AV_DTYPE_FP16 or AV_DTYPE_BF16
    int causal;        // nonzero: query i sees keys j <= i
    float scale;       // of q.k; 0 means 1/sqrt(head_dim)
} av_attention_shape;

// o (B, NH, T, D) = softmax(q k^T * scale) v; lse (B, NH, T) float32, contiguous: log sum_j exp(s_ij * scale).
// q, o (B, NH, T, D); k, v (B, NKV, T, D); query head h reads key/value head h / (NH / NKV).
av_status av_attention_forward(const av_attention_shape *shape, av_attention_tensor q, av_attention_tensor k,
                               av_attention_tensor v, av_attention_tensor o, float *lse, cudaStream_t stream);

typedef enum av_probs_layout {
    AV_PROBS_SQUARE,        // (T, T) row-major; zeros above the diagonal when causal
    AV_PROBS_PACKED_CAUSAL  // causal only: row i holds keys 0..i and starts at i (i + 1) / 2; T (T + 1) / 2 entries
} av_probs_layout;

typedef enum av_head_group {
    AV_HEADS_ALL,         // head_mean / head_max over all n_heads: (B, 1, ...)
    AV_HEADS_PER_KV_GROUP // over the n_heads / n_kv_heads query heads sharing a key/value head: (B, NKV, ...)
} av_head_group;

// What av_attention_probs writes. Every output pointer may be NULL (not produced); all are device memory and
// contiguous. Per-head outputs cover the heads [head_begin, head_end) only: NS = head_end - head_begin slots.
typedef struct av_probs_request {
    int head_begin, head_end;  // query heads of the per-head outputs (head_end 0 means n_heads)
    av_dtype probs_dtype;      // of probs, rows, head_mean and head_max: fp32, fp16 or bf16
    av_probs_layout layout;    // of probs, head_mean and head_max

    void *probs;               // (B, NS, T, T) or (B, NS, T (T + 1) / 2) packed: P itself
    void *rows;                // (B, NS, rows_end - rows_begin, T): the query rows [rows_begin, rows_end) of P
    int rows_begin, rows_end;
    float *colsum;             // (B, NS, T): sum_i P_ij, the attention key j receives
    float *colmean;            // (B, NS, T): colsum over the number of queries that see key j (T - j when causal)
    float *pooled;             // (B, NS, NB, NB), NB = ceil(T / pool): P summed over key bins, averaged over
    int pool;                  //   query bins of pool rows (the last bin may be short), so rows still sum to 1
    void *head_mean;           // (B, G, T, T) or packed: mean over the heads of a group (G per head_group)
    void *head_max;            // (B, G, T, T) or packed: max over the heads of a group
    av_head_group head_group;
} av_probs_request;

// Bytes of device workspace av_attention_probs needs for REQUEST (0 when it needs none).
av_status av_attention_probs_workspace(const av_attention_shape *shape, const av_probs_request *request,
                                       size_t *bytes);

// Writes what REQUEST asks for. q (B, NH, T, D), k (B, NKV, T, D) as for the forward; lse (B, NH, T) from
// av_attention_forward on the same q and k. workspace: device memory of at least the queried bytes (may be NULL
// when that is 0); it is overwritten.
av_status av_attention_probs(const av_attention_shape *shape, av_attention_tensor q, av_attention_tensor k,
                             const float *lse, const av_probs_request *request, void *workspace,
                             size_t workspace_bytes, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
