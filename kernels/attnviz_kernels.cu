// The kernel-level public API (include/attnviz_kernels.h): validation at the edge, then the launchers of
// attention_fwd.cu and attention_probs.cu. Nothing here allocates or synchronizes.
extern "C" {
#include "attention_tiled.h"
}
#include "attention_fwd.cuh"
#include "attention_probs.cuh"

#include <cuda_runtime.h>

// A tensor the kernels read 16 bytes at a time: aligned data, strides in whole 16-byte chunks.
static av_status check_tensor(const char *name, av_attention_tensor t) {
    if (!t.data) return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention: %s is NULL", name);
    if ((uintptr_t)t.data % 16 || t.batch_stride % 8 || t.head_stride % 8 || t.row_stride % 8)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention: %s must be 16-byte aligned with strides in multiples "
                       "of 8 elements (strides %lld, %lld, %lld)", name, (long long)t.batch_stride,
                       (long long)t.head_stride, (long long)t.row_stride);
    return AV_SUCCESS;
}

static av_status launch_status(const char *what, cudaError_t err) {
    if (err == cudaSuccess) return AV_SUCCESS;
    return av_fail(AV_ERROR_CUDA, "%s: %s", what, cudaGetErrorString(err));
}

static const float LOG2E = 1.4426950408889634f;

extern "C" av_status av_attention_forward(const av_attention_shape *shape, av_attention_tensor q,
                                          av_attention_tensor k, av_attention_tensor v, av_attention_tensor o,
                                          float *lse, cudaStream_t stream) {
    AV_TRY(av_attention_check_shape(shape));
    AV_TRY(check_tensor("q", q));
    AV_TRY(check_tensor("k", k));
    AV_TRY(check_tensor("v", v));
    AV_TRY(check_tensor("o", o));
    if (!lse) return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention forward: lse is NULL");
    attention_fwd_params p = {};
    p.q = q.data;
    p.k = k.data;
    p.v = v.data;
    p.o = o.data;
    p.lse = lse;
    p.q_batch = q.batch_stride, p.q_head = q.head_stride, p.q_row = q.row_stride;
    p.k_batch = k.batch_stride, p.k_head = k.head_stride, p.k_row = k.row_stride;
    p.v_batch = v.batch_stride, p.v_head = v.head_stride, p.v_row = v.row_stride;
    p.o_batch = o.batch_stride, p.o_head = o.head_stride, p.o_row = o.row_stride;
    p.batch = shape->batch;
    p.n_heads = shape->n_heads;
    p.n_kv_heads = shape->n_kv_heads;
    p.seq_len = shape->seq_len;
    p.scale_log2 = av_attention_scale(shape) * LOG2E;
    return launch_status("attention forward",
                         attention_fwd_launch(&p, shape->dtype, shape->head_dim, shape->causal != 0, stream));
}

extern "C" av_status av_attention_probs(const av_attention_shape *shape, av_attention_tensor q,
                                        av_attention_tensor k, const float *lse, const av_probs_request *request,
                                        void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    av_probs_workspace plan;
    AV_TRY(av_probs_workspace_plan(shape, request, &plan));
    AV_TRY(check_tensor("q", q));
    AV_TRY(check_tensor("k", k));
    if (!lse) return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: lse is NULL");
    if (plan.bytes && (!workspace || workspace_bytes < plan.bytes))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: workspace of %zu bytes at %p, %zu needed "
                       "(av_attention_probs_workspace)", workspace_bytes, workspace, plan.bytes);
    attention_probs_params p = {};
    p.q = q.data;
    p.k = k.data;
    p.q_batch = q.batch_stride, p.q_head = q.head_stride, p.q_row = q.row_stride;
    p.k_batch = k.batch_stride, p.k_head = k.head_stride, p.k_row = k.row_stride;
    p.lse = lse;
    p.batch = shape->batch;
    p.n_heads = shape->n_heads;
    p.n_kv_heads = shape->n_kv_heads;
    p.seq_len = shape->seq_len;
    p.causal = shape->causal != 0;
    p.scale_log2 = av_attention_scale(shape) * LOG2E;
    p.n_query_tiles = plan.n_query_tiles;
    p.head_begin = request->head_begin;
    p.n_slots = av_probs_head_end(shape, request) - request->head_begin;
    p.out_dtype = request->probs_dtype;
    p.layout = request->layout;
    p.probs = request->probs;
    p.rows = request->rows;
    p.rows_begin = request->rows_begin;
    p.rows_end = request->rows_end;
    p.colsum = request->colsum;
    p.colmean = request->colmean;
    p.pooled = request->pooled;
    p.pool = plan.pool;
    p.n_bins = plan.n_bins;
    p.max_local_bins = plan.max_local_bins;
    if (request->colsum || request->colmean) p.col_partial = static_cast<float *>(workspace);
    if (request->pooled && !plan.pool_in_tiles)
        p.pool_partial = reinterpret_cast<float *>(static_cast<char *>(workspace) + plan.pool_offset);
    p.head_mean = request->head_mean;
    p.head_max = request->head_max;
    p.n_groups = request->head_group == AV_HEADS_ALL ? 1 : shape->n_kv_heads;
    return launch_status("attention probs", attention_probs_launch(&p, shape->dtype, shape->head_dim, stream));
}
