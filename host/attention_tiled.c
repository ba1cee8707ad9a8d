// Tiled CPU mirrors of the attention kernels, plain double-precision references, and the checks and conversions the
// kernel API shares with them. See attention_tiled.h; the kernels (kernels/attention_fwd.cu, attention_probs.cu)
// follow these loops line for line.
#include "attention_tiled.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TM AV_ATTENTION_TILE_M
#define TN AV_ATTENTION_TILE_N
#define LOG2E_F 1.4426950408889634f
#define LN2_F 0.6931471805599453f

static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int min_int(int a, int b) { return a < b ? a : b; }
static int max_int(int a, int b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------------------------------
// Checks shared with the kernel API

av_status av_attention_check_shape(const av_attention_shape *shape) {
    if (!shape) return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention: shape is NULL");
    if (shape->batch < 1 || shape->n_heads < 1 || shape->n_kv_heads < 1 || shape->seq_len < 1)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention: batch %d, n_heads %d, n_kv_heads %d, seq_len %d: each "
                       "must be >= 1", shape->batch, shape->n_heads, shape->n_kv_heads, shape->seq_len);
    if (shape->n_heads % shape->n_kv_heads)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention: n_kv_heads %d does not divide n_heads %d",
                       shape->n_kv_heads, shape->n_heads);
    if (shape->head_dim != 64 && shape->head_dim != 128)
        return av_fail(AV_ERROR_UNSUPPORTED, "attention: head_dim %d (64 and 128 are supported)", shape->head_dim);
    if (shape->dtype != AV_DTYPE_FP16 && shape->dtype != AV_DTYPE_BF16)
        return av_fail(AV_ERROR_UNSUPPORTED, "attention: q/k/v dtype %d (fp16 and bf16 are supported)",
                       (int)shape->dtype);
    if (!(shape->scale >= 0.0f) || isinf(shape->scale))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention: scale %g must be finite and >= 0 (0 means "
                       "1/sqrt(head_dim))", (double)shape->scale);
    // Packed offsets and pooled workspaces are computed in int64; T^2 must stay far inside it.
    if (shape->seq_len > (1 << 22))
        return av_fail(AV_ERROR_UNSUPPORTED, "attention: seq_len %d beyond %d", shape->seq_len, 1 << 22);
    return AV_SUCCESS;
}

int av_probs_head_end(const av_attention_shape *shape, const av_probs_request *request) {
    return request->head_end ? request->head_end : shape->n_heads;
}

av_status av_attention_check_request(const av_attention_shape *shape, const av_probs_request *request) {
    AV_TRY(av_attention_check_shape(shape));
    if (!request) return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: request is NULL");
    int head_end = av_probs_head_end(shape, request);
    if (request->head_begin < 0 || head_end > shape->n_heads || request->head_begin >= head_end)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: heads [%d, %d) outside [0, %d)",
                       request->head_begin, head_end, shape->n_heads);
    if (request->probs_dtype != AV_DTYPE_FP32 && request->probs_dtype != AV_DTYPE_FP16 &&
        request->probs_dtype != AV_DTYPE_BF16)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: probs_dtype %d", (int)request->probs_dtype);
    if (request->layout != AV_PROBS_SQUARE && request->layout != AV_PROBS_PACKED_CAUSAL)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: layout %d", (int)request->layout);
    if (request->layout == AV_PROBS_PACKED_CAUSAL && !shape->causal)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: the packed causal layout needs causal attention");
    if (request->rows && (request->rows_begin < 0 || request->rows_end > shape->seq_len ||
                          request->rows_begin >= request->rows_end))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: rows [%d, %d) outside [0, %d) or empty",
                       request->rows_begin, request->rows_end, shape->seq_len);
    if (request->pooled && request->pool < 1)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: pool factor %d must be >= 1", request->pool);
    if ((request->head_mean || request->head_max) && request->head_group != AV_HEADS_ALL &&
        request->head_group != AV_HEADS_PER_KV_GROUP)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs: head_group %d", (int)request->head_group);
    return AV_SUCCESS;
}

// Bytes of B * NS * count floats, rounded up to 256 so that the next part of the workspace stays aligned.
static bool workspace_part(size_t slots, size_t count, size_t *bytes) {
    size_t floats;
    if (!av_mul_size(slots, count, &floats) || !av_mul_size(floats, sizeof(float), bytes)) return false;
    *bytes = (*bytes + 255) / 256 * 256;
    return true;
}

av_status av_probs_workspace_plan(const av_attention_shape *shape, const av_probs_request *request,
                                  av_probs_workspace *plan) {
    AV_TRY(av_attention_check_request(shape, request));
    int T = shape->seq_len;
    memset(plan, 0, sizeof *plan);
    plan->n_query_tiles = ceil_div(T, TM);
    size_t slots = (size_t)shape->batch * (av_probs_head_end(shape, request) - request->head_begin);
    size_t colsum_bytes = 0, pool_bytes = 0;
    if (request->pooled) {
        plan->pool = min_int(request->pool, T);
        plan->n_bins = ceil_div(T, plan->pool);
        // Query bins a tile of TM rows can touch: floor((TM - 1) / pool) + 2, at most all of them.
        plan->max_local_bins = min_int(plan->n_bins, (TM - 1) / plan->pool + 2);
        plan->pool_in_tiles = TM % plan->pool == 0 && TN % plan->pool == 0;
    }
    bool fits = true;
    if (request->colsum || request->colmean)
        fits = workspace_part(slots, (size_t)plan->n_query_tiles * T, &colsum_bytes);
    if (fits && request->pooled && !plan->pool_in_tiles)
        fits = workspace_part(slots, (size_t)plan->n_query_tiles * plan->max_local_bins * plan->n_bins, &pool_bytes);
    if (!fits || !av_add_size(colsum_bytes, pool_bytes, &plan->bytes))
        return av_fail(AV_ERROR_OUT_OF_MEMORY, "attention probs: workspace size overflows (T %d)", T);
    plan->pool_offset = colsum_bytes;
    return AV_SUCCESS;
}

av_status av_attention_probs_workspace(const av_attention_shape *shape, const av_probs_request *request,
                                       size_t *bytes) {
    if (!bytes) return av_fail(AV_ERROR_INVALID_ARGUMENT, "attention probs workspace: bytes is NULL");
    av_probs_workspace plan;
    AV_TRY(av_probs_workspace_plan(shape, request, &plan));
    *bytes = plan.bytes;
    return AV_SUCCESS;
}

float av_attention_scale(const av_attention_shape *shape) {
    return shape->scale > 0.0f ? shape->scale : 1.0f / sqrtf((float)shape->head_dim);
}

// ---------------------------------------------------------------------------------------------------------------
// Layouts and conversions

int64_t av_packed_causal_index(int64_t i, int64_t j) { return i * (i + 1) / 2 + j; }

void av_packed_causal_position(int64_t index, int64_t *i, int64_t *j) {
    // Row from the quadratic formula, then corrected for the rounding of sqrt.
    int64_t row = (int64_t)((sqrt(8.0 * (double)index + 1.0) - 1.0) / 2.0);
    while (row * (row + 1) / 2 > index) row--;
    while ((row + 1) * (row + 2) / 2 <= index) row++;
    *i = row;
    *j = index - row * (row + 1) / 2;
}

int64_t av_probs_map_entries(av_probs_layout layout, int T) {
    return layout == AV_PROBS_PACKED_CAUSAL ? (int64_t)T * (T + 1) / 2 : (int64_t)T * T;
}

float av_round_to_dtype(float x, av_dtype dtype) {
    switch (dtype) {
    case AV_DTYPE_FP16: return av_f16_to_f32(av_f32_to_f16(x));
    case AV_DTYPE_BF16: return av_bf16_to_f32(av_f32_to_bf16(x));
    case AV_DTYPE_FP32: break;
    }
    return x;
}

size_t av_dtype_size(av_dtype dtype) { return dtype == AV_DTYPE_FP32 ? 4 : 2; }

float av_load_as_float(const void *data, av_dtype dtype, size_t index) {
    switch (dtype) {
    case AV_DTYPE_FP16: return av_f16_to_f32(((const uint16_t *)data)[index]);
    case AV_DTYPE_BF16: return av_bf16_to_f32(((const uint16_t *)data)[index]);
    case AV_DTYPE_FP32: break;
    }
    return ((const float *)data)[index];
}

void av_store_from_float(void *data, av_dtype dtype, size_t index, float x) {
    switch (dtype) {
    case AV_DTYPE_FP16: ((uint16_t *)data)[index] = av_f32_to_f16(x); return;
    case AV_DTYPE_BF16: ((uint16_t *)data)[index] = av_f32_to_bf16(x); return;
    case AV_DTYPE_FP32: ((float *)data)[index] = x; return;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Forward mirror

// Scores of rows [r0, r1) against keys [c0, c1) of one head in the log2 domain: s (TM, TN) = (q.k) * scale_log2,
// -inf where causal masks. The dot product is a float32 sum, as the tensor cores accumulate it.
static void score_tile(float *s, const float *q, const float *k, int r0, int r1, int c0, int c1, int D, bool causal,
                       float scale_log2) {
    for (int r = r0; r < r1; r++) {
        for (int c = c0; c < c1; c++) {
            float dot = 0.0f;
            for (int d = 0; d < D; d++) dot += q[(size_t)r * D + d] * k[(size_t)c * D + d];
            s[(r - r0) * TN + (c - c0)] = causal && c > r ? -INFINITY : dot * scale_log2;
        }
    }
}

// The last key tile (exclusive) query tile QT looks at: the diagonal tile when causal.
static int key_tiles_end(int qt, int T, bool causal) { return causal ? qt + 1 : ceil_div(T, TN); }

// One query tile of one head: O rows [r0, r1) and their LSE, online softmax over the key tiles in order.
static void forward_query_tile(float *o, float *lse, const float *q, const float *k, const float *v, int T, int D,
                               bool causal, float scale_log2, av_dtype dtype, int qt, float *s, float *acc) {
    int r0 = qt * TM, r1 = min_int(T, r0 + TM);
    float m[TM], l[TM];
    for (int r = 0; r < TM; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(acc, 0, sizeof(float) * TM * (size_t)D);
    int kt_end = key_tiles_end(qt, T, causal);
    for (int kt = 0; kt < kt_end; kt++) {
        int c0 = kt * TN, c1 = min_int(T, c0 + TN);
        score_tile(s, q, k, r0, r1, c0, c1, D, causal, scale_log2);
        for (int r = 0; r < r1 - r0; r++) {
            float *row = s + r * TN;
            float m_new = m[r];
            for (int c = 0; c < c1 - c0; c++) m_new = fmaxf(m_new, row[c]);
            // m_new is finite: key 0 of tile 0 is visible to every row.
            float alpha = exp2f(m[r] - m_new);
            float row_sum = 0.0f;
            float *a = acc + (size_t)r * D;
            for (int d = 0; d < D; d++) a[d] *= alpha;
            for (int c = 0; c < c1 - c0; c++) {
                float p = exp2f(row[c] - m_new);
                row_sum += p;
                float p_rounded = av_round_to_dtype(p, dtype); // the A operand of P V on the tensor cores
                const float *vr = v + (size_t)(c0 + c) * D;
                for (int d = 0; d < D; d++) a[d] += p_rounded * vr[d];
            }
            l[r] = l[r] * alpha + row_sum;
            m[r] = m_new;
        }
    }
    for (int r = 0; r < r1 - r0; r++) {
        float inv_l = 1.0f / l[r];
        for (int d = 0; d < D; d++) o[(size_t)(r0 + r) * D + d] = acc[(size_t)r * D + d] * inv_l;
        lse[r0 + r] = (m[r] + log2f(l[r])) * LN2_F;
    }
}

av_status av_attention_forward_tiled(float *o, float *lse, const float *q, const float *k, const float *v,
                                     const av_attention_shape *shape) {
    AV_TRY(av_attention_check_shape(shape));
    int T = shape->seq_len, D = shape->head_dim, NH = shape->n_heads, NKV = shape->n_kv_heads;
    float scale_log2 = av_attention_scale(shape) * LOG2E_F;
    float *s = av_malloc(sizeof(float) * TM * TN, "score tile");
    float *acc = av_malloc(sizeof(float) * TM * (size_t)D, "output accumulator");
    if (!s || !acc) {
        free(s);
        free(acc);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    for (int b = 0; b < shape->batch; b++) {
        for (int h = 0; h < NH; h++) {
            size_t qo = ((size_t)b * NH + h) * T;
            size_t kv = ((size_t)b * NKV + h / (NH / NKV)) * T;
            for (int qt = 0; qt < ceil_div(T, TM); qt++)
                forward_query_tile(o + qo * D, lse + qo, q + qo * D, k + kv * D, v + kv * D, T, D,
                                   shape->causal != 0, scale_log2, shape->dtype, qt, s, acc);
        }
    }
    free(s);
    free(acc);
    return AV_SUCCESS;
}

// ---------------------------------------------------------------------------------------------------------------
// Probabilities mirror

// P (TM, TN) of rows [r0, r1) and keys [c0, c1): exp2(s * scale_log2 - lse * log2 e); exactly 0 where masked.
static void probs_tile(float *p, const float *q, const float *k, const float *lse, int r0, int r1, int c0, int c1,
                       int D, bool causal, float scale_log2) {
    score_tile(p, q, k, r0, r1, c0, c1, D, causal, scale_log2);
    for (int r = r0; r < r1; r++) {
        float lse2 = lse[r] * LOG2E_F;
        for (int c = c0; c < c1; c++) {
            float *x = p + (r - r0) * TN + (c - c0);
            *x = exp2f(*x - lse2); // exp2(-inf) is exactly 0
        }
    }
}

// Writes P tile rows [r0, r1) x keys [c0, c1) into one (T, T) map in LAYOUT; p NULL writes zeros.
static void write_map_tile(void *map, av_dtype dtype, av_probs_layout layout, int T, const float *p, int r0, int r1,
                           int c0, int c1) {
    for (int r = r0; r < r1; r++) {
        int c_end = layout == AV_PROBS_PACKED_CAUSAL ? min_int(c1, r + 1) : c1;
        for (int c = c0; c < c_end; c++) {
            size_t index = layout == AV_PROBS_PACKED_CAUSAL ? (size_t)av_packed_causal_index(r, c)
                                                            : (size_t)r * T + c;
            av_store_from_float(map, dtype, index, p ? p[(r - r0) * TN + (c - c0)] : 0.0f);
        }
    }
}

// Everything one request needs while walking the tiles, host-side.
typedef struct probs_plan {
    const av_attention_shape *shape;
    const av_probs_request *request;
    int T, D, n_slots, n_query_tiles, n_bins, max_local_bins;
    int pool; // the request's, at most T: a larger factor gives the same single bin and keeps products in int
    bool pool_in_tiles, causal;
    float scale_log2;
    float *colsum_partial; // (B, NS, n_query_tiles, T)
    float *pool_partial;   // (B, NS, n_query_tiles, max_local_bins, n_bins)
    float *row_bins;       // (TM, max_local_bins) scratch of the pooling's first stage
} probs_plan;

// Column sums of one (query tile, key tile): partial[c] over the tile's rows in ascending order.
static void colsum_tile(float *partial, const float *p, int rows, int c0, int c1) {
    for (int c = c0; c < c1; c++) {
        float sum = 0.0f;
        for (int r = 0; r < rows; r++) sum += p[r * TN + (c - c0)];
        partial[c] = sum;
    }
}

// Pooling of one (query tile, key tile): first each row summed over the key bins the tile overlaps, then those row
// sums summed over the query bins, into out (one row of n_bins per query bin the tile touches, from bin r0 / pool).
// pool_in_tiles: out is the pooled map, and a bin, whole in this tile, gets its mean. Otherwise out is the tile's
// partials (max_local_bins, n_bins): a key bin that starts in this key tile is written, one that started in an
// earlier key tile is added to. (When pooling is all a request asks for, the kernel sums a pool that spans whole
// tiles in registers over the bin's key tiles and writes its partial once, pool_key_tiles: the same sums in another
// order.)
static void pool_tile(const probs_plan *plan, float *out, const float *p, int r0, int r1, int c0, int c1) {
    int pool = plan->pool;
    int kb0 = c0 / pool, kb1 = (c1 - 1) / pool;
    int qb0 = r0 / pool, qb1 = (r1 - 1) / pool;
    int n_local_keys = kb1 - kb0 + 1;
    float *row_bins = plan->row_bins; // (TM, n_local_keys)
    for (int r = 0; r < r1 - r0; r++) {
        for (int lk = 0; lk < n_local_keys; lk++) {
            int j0 = max_int(c0, (kb0 + lk) * pool), j1 = min_int(c1, (kb0 + lk + 1) * pool);
            float sum = 0.0f;
            for (int j = j0; j < j1; j++) sum += p[r * TN + (j - c0)];
            row_bins[r * n_local_keys + lk] = sum;
        }
    }
    for (int lq = 0; lq <= qb1 - qb0; lq++) {
        int i0 = max_int(r0, (qb0 + lq) * pool), i1 = min_int(r1, (qb0 + lq + 1) * pool);
        for (int lk = 0; lk < n_local_keys; lk++) {
            float sum = 0.0f;
            for (int i = i0; i < i1; i++) sum += row_bins[(i - r0) * n_local_keys + lk];
            int J = kb0 + lk;
            float *bin = out + (size_t)lq * plan->n_bins + J;
            if (plan->pool_in_tiles) *bin = sum / (float)(i1 - i0);
            else *bin = J * pool >= c0 ? sum : *bin + sum;
        }
    }
}

// Keys [0, key_end(qt)) are the ones query tile QT processed; its partials beyond are never written.
static int processed_keys_end(const probs_plan *plan, int qt) {
    return min_int(plan->T, key_tiles_end(qt, plan->T, plan->causal) * TN);
}

// Second pass of the column sums of one slot: partials summed over query tiles in ascending order.
static void colsum_finish(const probs_plan *plan, const float *partial, float *colsum, float *colmean) {
    int T = plan->T;
    for (int j = 0; j < T; j++) {
        float sum = 0.0f;
        for (int qt = 0; qt < plan->n_query_tiles; qt++)
            if (j < processed_keys_end(plan, qt)) sum += partial[(size_t)qt * T + j];
        if (colsum) colsum[j] = sum;
        if (colmean) colmean[j] = sum / (float)(plan->causal ? T - j : T);
    }
}

// Second pass of the pooling of one slot: for each query bin, the partials of the query tiles it overlaps, in
// ascending order, divided by the rows in the bin.
static void pool_finish(const probs_plan *plan, const float *partial, float *pooled) {
    int pool = plan->pool, nb = plan->n_bins, T = plan->T;
    size_t tile_stride = (size_t)plan->max_local_bins * nb;
    for (int I = 0; I < nb; I++) {
        int i0 = I * pool, i1 = min_int(T, i0 + pool);
        for (int J = 0; J < nb; J++) {
            float sum = 0.0f;
            for (int qt = i0 / TM; qt <= (i1 - 1) / TM; qt++)
                if (J * pool < processed_keys_end(plan, qt))
                    sum += partial[qt * tile_stride + (size_t)(I - qt * TM / pool) * nb + J];
            pooled[(size_t)I * nb + J] = sum / (float)(i1 - i0);
        }
    }
}

// pool_in_tiles: the pooled means of query rows [r0, r1) for the key bins from key c_end on, which causal query
// tiles never reach, are 0.
static void zero_pooled_past(const probs_plan *plan, float *pooled, int r0, int r1, int c_end) {
    int nb = plan->n_bins;
    for (int I = r0 / plan->pool; I <= (r1 - 1) / plan->pool; I++)
        for (int J = c_end / plan->pool; J < nb; J++) pooled[(size_t)I * nb + J] = 0.0f;
}

// Does query tile QT contribute to any per-head output of the request?
static bool query_tile_needed(const probs_plan *plan, int qt) {
    const av_probs_request *rq = plan->request;
    if (rq->probs || rq->colsum || rq->colmean || rq->pooled) return true;
    return rq->rows && qt * TM < rq->rows_end && (qt + 1) * TM > rq->rows_begin;
}

// Rows [r0, r1) of the P tile that fall into the requested row range go to the rows output of the slot.
static void write_rows_tile(const probs_plan *plan, void *rows_out, const float *p, int r0, int r1, int c0, int c1) {
    const av_probs_request *rq = plan->request;
    for (int r = max_int(r0, rq->rows_begin); r < min_int(r1, rq->rows_end); r++)
        for (int c = c0; c < c1; c++)
            av_store_from_float(rows_out, rq->probs_dtype, (size_t)(r - rq->rows_begin) * plan->T + c,
                                p ? p[(r - r0) * TN + (c - c0)] : 0.0f);
}

// Per-head outputs of one slot (batch b, head h) from q, k and lse of that head.
static void probs_slot(const probs_plan *plan, int b, int h, const float *q, const float *k, const float *lse,
                       float *p) {
    const av_probs_request *rq = plan->request;
    int T = plan->T;
    size_t slot = (size_t)b * plan->n_slots + (h - rq->head_begin);
    size_t map_entries = (size_t)av_probs_map_entries(rq->layout, T);
    size_t esize = av_dtype_size(rq->probs_dtype);
    void *probs = rq->probs ? (char *)rq->probs + slot * map_entries * esize : NULL;
    void *rows = rq->rows ? (char *)rq->rows + slot * (size_t)(rq->rows_end - rq->rows_begin) * T * esize : NULL;
    float *col_partial = plan->colsum_partial + slot * plan->n_query_tiles * (size_t)T;
    float *pool_partial = plan->pool_partial + slot * plan->n_query_tiles * (size_t)plan->max_local_bins *
                                                   plan->n_bins;
    float *pooled = rq->pooled ? rq->pooled + slot * (size_t)plan->n_bins * plan->n_bins : NULL;
    bool want_cols = rq->colsum || rq->colmean;
    for (int qt = 0; qt < plan->n_query_tiles; qt++) {
        if (!query_tile_needed(plan, qt)) continue;
        int r0 = qt * TM, r1 = min_int(T, r0 + TM);
        int kt_end = key_tiles_end(qt, T, plan->causal);
        for (int kt = 0; kt < kt_end; kt++) {
            int c0 = kt * TN, c1 = min_int(T, c0 + TN);
            probs_tile(p, q, k, lse, r0, r1, c0, c1, plan->D, plan->causal, plan->scale_log2);
            if (probs) write_map_tile(probs, rq->probs_dtype, rq->layout, T, p, r0, r1, c0, c1);
            if (rows) write_rows_tile(plan, rows, p, r0, r1, c0, c1);
            if (want_cols) colsum_tile(col_partial + (size_t)qt * T, p, r1 - r0, c0, c1);
            if (pooled && plan->pool_in_tiles)
                pool_tile(plan, pooled + (size_t)(r0 / plan->pool) * plan->n_bins, p, r0, r1, c0, c1);
            else if (pooled)
                pool_tile(plan, pool_partial + (size_t)qt * plan->max_local_bins * plan->n_bins, p, r0, r1, c0, c1);
        }
        if (pooled && plan->pool_in_tiles) zero_pooled_past(plan, pooled, r0, r1, kt_end * TN);
        // Square maps of causal attention hold zeros past the diagonal tile.
        for (int kt = kt_end; kt < ceil_div(T, TN); kt++) {
            int c0 = kt * TN, c1 = min_int(T, c0 + TN);
            if (probs && rq->layout == AV_PROBS_SQUARE)
                write_map_tile(probs, rq->probs_dtype, rq->layout, T, NULL, r0, r1, c0, c1);
            if (rows) write_rows_tile(plan, rows, NULL, r0, r1, c0, c1);
        }
    }
    if (want_cols)
        colsum_finish(plan, col_partial, rq->colsum ? rq->colsum + slot * T : NULL,
                      rq->colmean ? rq->colmean + slot * T : NULL);
    if (pooled && !plan->pool_in_tiles) pool_finish(plan, pool_partial, pooled);
}

// Head mean and max of one group (heads [h0, h1) of batch b): key tiles outer, heads inner in ascending order.
static void head_reduce_group(const probs_plan *plan, int b, int g, int h0, int h1, const float *q, const float *k,
                              const float *lse, float *p, float *sum, float *max) {
    const av_attention_shape *sh = plan->shape;
    const av_probs_request *rq = plan->request;
    int T = plan->T, D = plan->D, NH = sh->n_heads, NKV = sh->n_kv_heads;
    int G = rq->head_group == AV_HEADS_ALL ? 1 : NKV;
    size_t map_offset = ((size_t)b * G + g) * (size_t)av_probs_map_entries(rq->layout, T) *
                        av_dtype_size(rq->probs_dtype);
    void *mean_map = rq->head_mean ? (char *)rq->head_mean + map_offset : NULL;
    void *max_map = rq->head_max ? (char *)rq->head_max + map_offset : NULL;
    for (int qt = 0; qt < plan->n_query_tiles; qt++) {
        int r0 = qt * TM, r1 = min_int(T, r0 + TM);
        int kt_end = key_tiles_end(qt, T, plan->causal);
        for (int kt = 0; kt < ceil_div(T, TN); kt++) {
            int c0 = kt * TN, c1 = min_int(T, c0 + TN);
            if (kt >= kt_end) {
                if (rq->layout == AV_PROBS_SQUARE) {
                    if (mean_map) write_map_tile(mean_map, rq->probs_dtype, rq->layout, T, NULL, r0, r1, c0, c1);
                    if (max_map) write_map_tile(max_map, rq->probs_dtype, rq->layout, T, NULL, r0, r1, c0, c1);
                }
                continue;
            }
            for (int h = h0; h < h1; h++) {
                size_t qh = ((size_t)b * NH + h) * T, kh = ((size_t)b * NKV + h / (NH / NKV)) * T;
                probs_tile(p, q + qh * D, k + kh * D, lse + qh, r0, r1, c0, c1, D, plan->causal, plan->scale_log2);
                for (int r = 0; r < r1 - r0; r++) {
                    for (int c = 0; c < c1 - c0; c++) {
                        int x = r * TN + c;
                        sum[x] = h == h0 ? p[x] : sum[x] + p[x];
                        max[x] = h == h0 ? p[x] : fmaxf(max[x], p[x]);
                    }
                }
            }
            for (int r = 0; r < r1 - r0; r++)
                for (int c = 0; c < c1 - c0; c++) sum[r * TN + c] /= (float)(h1 - h0);
            if (mean_map) write_map_tile(mean_map, rq->probs_dtype, rq->layout, T, sum, r0, r1, c0, c1);
            if (max_map) write_map_tile(max_map, rq->probs_dtype, rq->layout, T, max, r0, r1, c0, c1);
        }
    }
}

av_status av_attention_probs_tiled(const av_attention_shape *shape, const float *q, const float *k, const float *lse,
                                   const av_probs_request *request) {
    AV_TRY(av_attention_check_request(shape, request));
    av_probs_workspace layout;
    AV_TRY(av_probs_workspace_plan(shape, request, &layout));
    probs_plan plan = {.shape = shape, .request = request, .T = shape->seq_len, .D = shape->head_dim,
                       .n_slots = av_probs_head_end(shape, request) - request->head_begin,
                       .n_query_tiles = layout.n_query_tiles, .n_bins = layout.n_bins,
                       .max_local_bins = layout.max_local_bins, .pool = layout.pool,
                       .pool_in_tiles = layout.pool_in_tiles, .causal = shape->causal != 0,
                       .scale_log2 = av_attention_scale(shape) * LOG2E_F};
    av_status status = AV_SUCCESS;
    // The kernel's workspace, laid out the same; the extra byte keeps a request without partials from allocating 0.
    char *workspace = av_malloc(layout.bytes + 1, "attention probs workspace");
    plan.colsum_partial = (float *)workspace;
    plan.pool_partial = (float *)(workspace + layout.pool_offset);
    plan.row_bins = av_malloc(sizeof(float) * TM * (TN + 1), "pooling row bins");
    float *p = av_malloc(sizeof(float) * TM * TN * 3, "probability tiles");
    if (!workspace || !plan.row_bins || !p) {
        status = AV_ERROR_OUT_OF_MEMORY;
        goto done;
    }
    const int NH = shape->n_heads, NKV = shape->n_kv_heads, T = plan.T, D = plan.D;
    for (int b = 0; b < shape->batch; b++) {
        for (int h = request->head_begin; h < av_probs_head_end(shape, request); h++) {
            size_t qh = ((size_t)b * NH + h) * T, kh = ((size_t)b * NKV + h / (NH / NKV)) * T;
            probs_slot(&plan, b, h, q + qh * D, k + kh * D, lse + qh, p);
        }
        if (request->head_mean || request->head_max) {
            int G = request->head_group == AV_HEADS_ALL ? 1 : NKV;
            for (int g = 0; g < G; g++)
                head_reduce_group(&plan, b, g, g * (NH / G), (g + 1) * (NH / G), q, k, lse, p, p + TM * TN,
                                  p + 2 * TM * TN);
        }
    }
done:
    free(workspace);
    free(plan.row_bins);
    free(p);
    return status;
}

// ---------------------------------------------------------------------------------------------------------------
// Plain references

// P (NH, T, T) of batch b in double: softmax of each full score row; masked entries 0. lse (NH, T) may be NULL.
static void plain_probs(double *P, double *lse, const float *q, const float *k, const av_attention_shape *shape,
                        int b) {
    int T = shape->seq_len, D = shape->head_dim, NH = shape->n_heads, NKV = shape->n_kv_heads;
    double scale = av_attention_scale(shape);
    for (int h = 0; h < NH; h++) {
        const float *qh = q + ((size_t)b * NH + h) * T * D;
        const float *kh = k + ((size_t)b * NKV + h / (NH / NKV)) * T * D;
        for (int i = 0; i < T; i++) {
            double *row = P + ((size_t)h * T + i) * T;
            int visible = shape->causal ? i + 1 : T;
            double max = -INFINITY;
            for (int j = 0; j < visible; j++) {
                double dot = 0.0;
                for (int d = 0; d < D; d++) dot += (double)qh[(size_t)i * D + d] * kh[(size_t)j * D + d];
                row[j] = dot * scale;
                if (row[j] > max) max = row[j];
            }
            double sum = 0.0;
            for (int j = 0; j < visible; j++) sum += exp(row[j] - max);
            for (int j = 0; j < visible; j++) row[j] = exp(row[j] - max) / sum;
            for (int j = visible; j < T; j++) row[j] = 0.0;
            if (lse) lse[(size_t)h * T + i] = max + log(sum);
        }
    }
}

av_status av_attention_forward_plain(float *o, float *lse, const float *q, const float *k, const float *v,
                                     const av_attention_shape *shape) {
    AV_TRY(av_attention_check_shape(shape));
    int T = shape->seq_len, D = shape->head_dim, NH = shape->n_heads, NKV = shape->n_kv_heads;
    double *P = av_malloc(sizeof(double) * NH * (size_t)T * T, "plain probabilities");
    double *L = av_malloc(sizeof(double) * NH * (size_t)T, "plain log-sum-exp");
    if (!P || !L) {
        free(P);
        free(L);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    for (int b = 0; b < shape->batch; b++) {
        plain_probs(P, L, q, k, shape, b);
        for (int h = 0; h < NH; h++) {
            const float *vh = v + ((size_t)b * NKV + h / (NH / NKV)) * T * D;
            size_t row0 = ((size_t)b * NH + h) * T;
            for (int i = 0; i < T; i++) {
                const double *p = P + ((size_t)h * T + i) * T;
                for (int d = 0; d < D; d++) {
                    double acc = 0.0;
                    for (int j = 0; j < T; j++) acc += p[j] * vh[(size_t)j * D + d];
                    o[(row0 + i) * D + d] = (float)acc;
                }
                lse[row0 + i] = (float)L[(size_t)h * T + i];
            }
        }
    }
    free(P);
    free(L);
    return AV_SUCCESS;
}

// Stores map (T, T) in double into one map of the request's dtype and layout.
static void plain_store_map(void *out, const av_probs_request *rq, int T, const double *map) {
    for (int i = 0; i < T; i++) {
        for (int j = 0; j < T; j++) {
            if (rq->layout == AV_PROBS_PACKED_CAUSAL && j > i) continue;
            size_t index = rq->layout == AV_PROBS_PACKED_CAUSAL ? (size_t)av_packed_causal_index(i, j)
                                                                : (size_t)i * T + j;
            av_store_from_float(out, rq->probs_dtype, index, (float)map[(size_t)i * T + j]);
        }
    }
}

// Per-head outputs of one slot from its P (T, T).
static void plain_slot(const av_attention_shape *shape, const av_probs_request *rq, size_t slot, const double *P) {
    int T = shape->seq_len;
    size_t esize = av_dtype_size(rq->probs_dtype);
    if (rq->probs) plain_store_map((char *)rq->probs + slot * av_probs_map_entries(rq->layout, T) * esize, rq, T, P);
    if (rq->rows) {
        int n_rows = rq->rows_end - rq->rows_begin;
        for (int i = 0; i < n_rows; i++)
            for (int j = 0; j < T; j++)
                av_store_from_float(rq->rows, rq->probs_dtype, (slot * n_rows + i) * T + j,
                                    (float)P[(size_t)(rq->rows_begin + i) * T + j]);
    }
    for (int j = 0; j < T; j++) {
        double sum = 0.0;
        for (int i = 0; i < T; i++) sum += P[(size_t)i * T + j];
        if (rq->colsum) rq->colsum[slot * T + j] = (float)sum;
        if (rq->colmean) rq->colmean[slot * T + j] = (float)(sum / (shape->causal ? T - j : T));
    }
    if (rq->pooled) {
        int pool = min_int(rq->pool, T), nb = ceil_div(T, pool);
        for (int I = 0; I < nb; I++) {
            for (int J = 0; J < nb; J++) {
                double sum = 0.0;
                int i1 = min_int(T, (I + 1) * pool);
                for (int i = I * pool; i < i1; i++)
                    for (int j = J * pool; j < min_int(T, (J + 1) * pool); j++) sum += P[(size_t)i * T + j];
                rq->pooled[(slot * nb + I) * nb + J] = (float)(sum / (i1 - I * pool));
            }
        }
    }
}

av_status av_attention_probs_plain(const av_attention_shape *shape, const float *q, const float *k,
                                   const av_probs_request *request) {
    AV_TRY(av_attention_check_request(shape, request));
    int T = shape->seq_len, NH = shape->n_heads;
    size_t map = (size_t)T * T;
    double *P = av_malloc(sizeof(double) * NH * map, "plain probabilities");
    double *mean = av_malloc(sizeof(double) * map, "plain head mean");
    double *max = av_malloc(sizeof(double) * map, "plain head max");
    if (!P || !mean || !max) {
        free(P);
        free(mean);
        free(max);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    int n_slots = av_probs_head_end(shape, request) - request->head_begin;
    int G = request->head_group == AV_HEADS_ALL ? 1 : shape->n_kv_heads;
    size_t map_bytes = (size_t)av_probs_map_entries(request->layout, T) * av_dtype_size(request->probs_dtype);
    for (int b = 0; b < shape->batch; b++) {
        plain_probs(P, NULL, q, k, shape, b);
        for (int s = 0; s < n_slots; s++)
            plain_slot(shape, request, (size_t)b * n_slots + s, P + (size_t)(request->head_begin + s) * map);
        if (!request->head_mean && !request->head_max) continue;
        for (int g = 0; g < G; g++) {
            int h0 = g * (NH / G), h1 = (g + 1) * (NH / G);
            for (size_t x = 0; x < map; x++) {
                double sum = 0.0, m = 0.0;
                for (int h = h0; h < h1; h++) {
                    sum += P[h * map + x];
                    m = fmax(m, P[h * map + x]);
                }
                mean[x] = sum / (h1 - h0);
                max[x] = m;
            }
            size_t offset = ((size_t)b * G + g) * map_bytes;
            if (request->head_mean) plain_store_map((char *)request->head_mean + offset, request, T, mean);
            if (request->head_max) plain_store_map((char *)request->head_max + offset, request, T, max);
        }
    }
    free(P);
    free(mean);
    free(max);
    return AV_SUCCESS;
}
