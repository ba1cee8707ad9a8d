// Tiled CPU mirrors of kernels/attention_fwd.cu and kernels/attention_probs.cu, and plain references.
//
// A mirror walks the same AV_ATTENTION_TILE_M x AV_ATTENTION_TILE_N tiles in the same order as its kernel and
// reduces in the same order (the forward kernel takes two query tiles per block, which changes no row's key tiles,
// their order or the arithmetic), so that a kernel is a transliteration checked against its mirror on the GPU, and the
// mirror is checked here against the plain (untiled, double precision) reference. Host memory, batch-contiguous:
// q (B, NH, T, D), k and v (B, NKV, T, D), o (B, NH, T, D), lse (B, NH, T). The request's output pointers are host
// pointers with the shapes documented in include/attnviz_kernels.h.
#ifndef AV_ATTENTION_TILED_H
#define AV_ATTENTION_TILED_H

#include "attnviz_kernels.h"
#include "half.h"
#include "internal.h"

// Checks SHAPE and REQUEST (request may be NULL) with the rules of the kernel API, recording what is wrong.
av_status av_attention_check_shape(const av_attention_shape *shape);
av_status av_attention_check_request(const av_attention_shape *shape, const av_probs_request *request);
// The scale actually used: shape->scale, or 1/sqrt(head_dim) when it is 0.
float av_attention_scale(const av_attention_shape *shape);
// head_end with 0 read as n_heads.
int av_probs_head_end(const av_attention_shape *shape, const av_probs_request *request);

// Where av_attention_probs keeps its per-tile partials: column sums at offset 0, (B, NS, n_query_tiles, T) floats;
// pooling at pool_offset, (B, NS, n_query_tiles, max_local_bins, n_bins) floats, unless pool_in_tiles: the pool
// divides the tile size, so every bin lies inside one query tile and one key tile and the pooled means are written
// directly (no partials, no second pass).
typedef struct av_probs_workspace {
    size_t bytes, pool_offset;
    int n_query_tiles;
    int pool, n_bins, max_local_bins; // pool: the request's, at most T (same bins, products stay in int)
    bool pool_in_tiles;
} av_probs_workspace;
av_status av_probs_workspace_plan(const av_attention_shape *shape, const av_probs_request *request,
                                  av_probs_workspace *plan);

// Packed causal triangle: row i starts at i (i + 1) / 2 and holds keys 0..i.
int64_t av_packed_causal_index(int64_t i, int64_t j);
// The inverse: the (i, j) of packed entry INDEX.
void av_packed_causal_position(int64_t index, int64_t *i, int64_t *j);
// Entries of one (T, T) map in LAYOUT.
int64_t av_probs_map_entries(av_probs_layout layout, int T);

// x rounded to DTYPE and back (identity for fp32).
float av_round_to_dtype(float x, av_dtype dtype);
// Element INDEX of an array of DTYPE, as float; and the store of x rounded to DTYPE.
float av_load_as_float(const void *data, av_dtype dtype, size_t index);
void av_store_from_float(void *data, av_dtype dtype, size_t index, float x);
size_t av_dtype_size(av_dtype dtype);

// Online-softmax forward, tile by tile; P is rounded to shape->dtype before P V as the tensor cores see it.
av_status av_attention_forward_tiled(float *o, float *lse, const float *q, const float *k, const float *v,
                                     const av_attention_shape *shape);
// Every output of REQUEST from q, k and lse, tile by tile (allocates the workspace the kernel would get).
av_status av_attention_probs_tiled(const av_attention_shape *shape, const float *q, const float *k, const float *lse,
                                   const av_probs_request *request);

// Plain references in double precision: full softmax rows, no tiles, no LSE from elsewhere.
av_status av_attention_forward_plain(float *o, float *lse, const float *q, const float *k, const float *v,
                                     const av_attention_shape *shape);
av_status av_attention_probs_plain(const av_attention_shape *shape, const float *q, const float *k,
                                   const av_probs_request *request);

#endif
