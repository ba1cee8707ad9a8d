// The attention kernels (include/attnviz_kernels.h) against their tiled CPU mirrors and the plain references, on
// fresh random inputs: outputs poisoned with all-ones bytes (NaN in fp32, fp16 and bf16) so that an unwritten entry
// fails, guard regions before and after every output, ragged sizes, GQA, a fused-qkv strided layout, run-to-run
// bitwise determinism of the reductions, and the API's refusals. Without a device the GPU tests skip.
#include "attention_tiled.h"
#include "backend.h"
#include "support_cuda.h"

#include <criterion/criterion.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GUARD_BYTES 256
#define POISON 0xff


static uint64_t fresh_seed(void) {
    static uint64_t counter;
    return ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() << 8) ^ ++counter;
}

// Device memory of BYTES between two guard regions, all of it poisoned.
typedef struct guarded {
    unsigned char *base;
    void *data; // base + GUARD_BYTES
    size_t bytes;
} guarded;

static guarded guarded_alloc(size_t bytes) {
    guarded g = {.bytes = bytes};
    CUDA_OK(cudaMalloc((void **)&g.base, bytes + 2 * GUARD_BYTES));
    CUDA_OK(cudaMemset(g.base, POISON, bytes + 2 * GUARD_BYTES));
    g.data = g.base + GUARD_BYTES;
    return g;
}

// The guards are untouched; returns the contents (host copy, caller frees) and frees the device memory.
static void *guarded_take(guarded *g, const char *what) {
    unsigned char *host = malloc(g->bytes + 2 * GUARD_BYTES);
    cr_assert(host);
    CUDA_OK(cudaMemcpy(host, g->base, g->bytes + 2 * GUARD_BYTES, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < GUARD_BYTES; i++) {
        cr_assert_eq(host[i], POISON, "%s: written %zu bytes before the start", what, GUARD_BYTES - i);
        cr_assert_eq(host[GUARD_BYTES + g->bytes + i], POISON, "%s: written %zu bytes past the end", what, i);
    }
    memmove(host, host + GUARD_BYTES, g->bytes);
    CUDA_OK(cudaFree(g->base));
    return host;
}

// x (n floats) rounded to DTYPE on the host and as DTYPE bits on the device.
static void *upload_as(const float *x, size_t n, av_dtype dtype) {
    size_t esize = av_dtype_size(dtype);
    void *host = malloc(n * esize);
    for (size_t i = 0; i < n; i++) av_store_from_float(host, dtype, i, x[i]);
    void *dev = NULL;
    CUDA_OK(cudaMalloc(&dev, n * esize));
    CUDA_OK(cudaMemcpy(dev, host, n * esize, cudaMemcpyHostToDevice));
    free(host);
    return dev;
}

static float *random_rounded(size_t n, uint64_t seed, float range, av_dtype dtype) {
    float *x = malloc(n * sizeof(float));
    fill_random(x, n, seed, -range, range);
    for (size_t i = 0; i < n; i++) x[i] = av_round_to_dtype(x[i], dtype);
    return x;
}

static float *as_floats(const void *data, av_dtype dtype, size_t n) {
    float *out = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) out[i] = av_load_as_float(data, dtype, i);
    return out;
}

static double relative_error(const float *got, const float *want, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(!isnan(got[i]), "NaN (unwritten?) at %zu", i);
        num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        den += (double)want[i] * want[i];
    }
    return sqrt(num / den);
}

// One problem: host inputs (rounded to the dtype), their device copies, and the device forward's LSE.
typedef struct problem {
    av_attention_shape shape;
    uint64_t seed;
    float *q, *k, *v;        // host (B, NH, T, D), (B, NKV, T, D) x 2
    void *dq, *dk, *dv;      // device, contiguous
    float *lse_mirror;       // (B, NH, T) from av_attention_forward_tiled
    float *dlse;             // device (B, NH, T) from av_attention_forward
} problem;

static av_attention_tensor contiguous(void *data, int heads, int T, int D) {
    return (av_attention_tensor){.data = data, .batch_stride = (int64_t)heads * T * D,
                                 .head_stride = (int64_t)T * D, .row_stride = D};
}

static problem make_problem(int B, int T, int D, int NH, int NKV, bool causal, av_dtype dtype) {
    problem pr = {.shape = {.batch = B, .n_heads = NH, .n_kv_heads = NKV, .seq_len = T, .head_dim = D,
                            .dtype = dtype, .causal = causal},
                  .seed = fresh_seed()};
    size_t nq = (size_t)B * NH * T * D, nkv = (size_t)B * NKV * T * D, rows = (size_t)B * NH * T;
    pr.q = random_rounded(nq, pr.seed, 1.7f, dtype);
    pr.k = random_rounded(nkv, pr.seed + 1, 1.7f, dtype);
    pr.v = random_rounded(nkv, pr.seed + 2, 1.0f, dtype);
    pr.dq = upload_as(pr.q, nq, dtype);
    pr.dk = upload_as(pr.k, nkv, dtype);
    pr.dv = upload_as(pr.v, nkv, dtype);
    float *o = malloc(nq * sizeof(float));
    pr.lse_mirror = malloc(rows * sizeof(float));
    AV_OK(av_attention_forward_tiled(o, pr.lse_mirror, pr.q, pr.k, pr.v, &pr.shape));
    free(o);
    void *dout = NULL;
    CUDA_OK(cudaMalloc(&dout, nq * av_dtype_size(dtype)));
    CUDA_OK(cudaMalloc((void **)&pr.dlse, rows * sizeof(float)));
    AV_OK(av_attention_forward(&pr.shape, contiguous(pr.dq, NH, T, D), contiguous(pr.dk, NKV, T, D),
                               contiguous(pr.dv, NKV, T, D), contiguous(dout, NH, T, D), pr.dlse, NULL));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaFree(dout));
    return pr;
}

static void free_problem(problem *pr) {
    free(pr->q);
    free(pr->k);
    free(pr->v);
    free(pr->lse_mirror);
    CUDA_OK(cudaFree(pr->dq));
    CUDA_OK(cudaFree(pr->dk));
    CUDA_OK(cudaFree(pr->dv));
    CUDA_OK(cudaFree(pr->dlse));
}

// ---------------------------------------------------------------------------------------------------------------
// Forward

static void check_forward(int B, int T, int D, int NH, int NKV, bool causal, av_dtype dtype) {
    problem pr = make_problem(B, T, D, NH, NKV, causal, dtype);
    av_attention_shape *s = &pr.shape;
    size_t nq = (size_t)B * NH * T * D, rows = (size_t)B * NH * T;
    guarded o = guarded_alloc(nq * av_dtype_size(dtype)), lse = guarded_alloc(rows * sizeof(float));
    AV_OK(av_attention_forward(s, contiguous(pr.dq, NH, T, D), contiguous(pr.dk, NKV, T, D),
                               contiguous(pr.dv, NKV, T, D), contiguous(o.data, NH, T, D), lse.data, NULL));
    CUDA_OK(cudaDeviceSynchronize());
    void *o_bits = guarded_take(&o, "forward o");
    float *got_lse = guarded_take(&lse, "forward lse");
    float *got_o = as_floats(o_bits, dtype, nq);
    float *mirror_o = malloc(nq * sizeof(float)), *mirror_lse = malloc(rows * sizeof(float));
    float *plain_o = malloc(nq * sizeof(float)), *plain_lse = malloc(rows * sizeof(float));
    AV_OK(av_attention_forward_tiled(mirror_o, mirror_lse, pr.q, pr.k, pr.v, s));
    AV_OK(av_attention_forward_plain(plain_o, plain_lse, pr.q, pr.k, pr.v, s));
    for (size_t i = 0; i < nq; i++) mirror_o[i] = av_round_to_dtype(mirror_o[i], dtype);
    char what[160];
    snprintf(what, sizeof what, "forward lse B=%d T=%d D=%d NH=%d NKV=%d causal=%d seed=%llu", B, T, D, NH, NKV,
             causal, (unsigned long long)pr.seed);
    expect_close(what, got_lse, mirror_lse, rows, 1e-5, 1e-5, NULL);
    expect_close(what, got_lse, plain_lse, rows, 2e-5, 2e-5, NULL);
    // Against the mirror: the same roundings, different summation orders; against plain: the P rounding on top.
    double mirror_err = relative_error(got_o, mirror_o, nq), plain_err = relative_error(got_o, plain_o, nq);
    double bound = dtype == AV_DTYPE_BF16 ? 6e-3 : 8e-4;
    cr_assert(mirror_err < bound / 2 && plain_err < bound,
              "forward o T=%d D=%d causal=%d seed=%llu: relative error %.3g to the mirror, %.3g to plain", T, D,
              causal, (unsigned long long)pr.seed, mirror_err, plain_err);
    free(o_bits);
    free(got_lse);
    free(got_o);
    free(mirror_o);
    free(mirror_lse);
    free(plain_o);
    free(plain_lse);
    free_problem(&pr);
}

Test(cuda_attention, forward_ragged_sizes) {
    NEED_DEVICE();
    const int sizes[] = {1, 63, 64, 65, 97, 127, 129, 200};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_forward(1, sizes[i], 64, 2, 2, true, AV_DTYPE_BF16);
        check_forward(1, sizes[i], 128, 2, 1, false, AV_DTYPE_FP16);
    }
}

Test(cuda_attention, forward_gqa_batched_both_dtypes) {
    NEED_DEVICE();
    check_forward(2, 131, 128, 8, 2, true, AV_DTYPE_BF16);
    check_forward(2, 97, 64, 6, 3, false, AV_DTYPE_FP16);
    check_forward(1, 257, 128, 4, 1, true, AV_DTYPE_FP16);
}

// q, k, v read from one fused (T, 3C) buffer and o written into a (T, C) buffer, as the model lays them out.
Test(cuda_attention, forward_fused_qkv_strides) {
    NEED_DEVICE();
    const int T = 97, NH = 4, D = 64, C = NH * D;
    av_attention_shape s = {.batch = 1, .n_heads = NH, .n_kv_heads = NH, .seq_len = T, .head_dim = D,
                            .dtype = AV_DTYPE_BF16, .causal = 1};
    uint64_t seed = fresh_seed();
    float *qkv = random_rounded((size_t)T * 3 * C, seed, 1.7f, AV_DTYPE_BF16);
    // The same values in the mirror's (NH, T, D) layout.
    float *q = malloc(sizeof(float) * NH * T * D), *k = malloc(sizeof(float) * NH * T * D),
          *v = malloc(sizeof(float) * NH * T * D);
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++) {
                size_t at = ((size_t)h * T + t) * D + d, from = (size_t)t * 3 * C + (size_t)h * D + d;
                q[at] = qkv[from];
                k[at] = qkv[from + C];
                v[at] = qkv[from + 2 * C];
            }
    unsigned char *dqkv = upload_as(qkv, (size_t)T * 3 * C, AV_DTYPE_BF16);
    guarded o = guarded_alloc((size_t)T * C * 2), lse = guarded_alloc((size_t)NH * T * sizeof(float));
    av_attention_tensor tq = {.data = dqkv, .batch_stride = (int64_t)T * 3 * C, .head_stride = D,
                              .row_stride = 3 * C};
    av_attention_tensor tk = tq, tv = tq, to = {.data = o.data, .batch_stride = (int64_t)T * C, .head_stride = D,
                                               .row_stride = C};
    tk.data = dqkv + (size_t)C * 2;
    tv.data = dqkv + (size_t)2 * C * 2;
    AV_OK(av_attention_forward(&s, tq, tk, tv, to, lse.data, NULL));
    CUDA_OK(cudaDeviceSynchronize());
    void *o_bits = guarded_take(&o, "fused o");
    float *got_lse = guarded_take(&lse, "fused lse");
    float *want_o = malloc(sizeof(float) * NH * T * D), *want_lse = malloc(sizeof(float) * NH * T);
    AV_OK(av_attention_forward_plain(want_o, want_lse, q, k, v, &s));
    float *got_o = malloc(sizeof(float) * NH * T * D);
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < D; d++)
                got_o[((size_t)h * T + t) * D + d] =
                    av_load_as_float(o_bits, AV_DTYPE_BF16, (size_t)t * C + (size_t)h * D + d);
    double err = relative_error(got_o, want_o, (size_t)NH * T * D);
    cr_assert(err < 6e-3, "fused layout: relative error %.3g (seed %llu)", err, (unsigned long long)seed);
    expect_close("fused lse", got_lse, want_lse, (size_t)NH * T, 2e-5, 2e-5, NULL);
    CUDA_OK(cudaFree(dqkv));
    free(qkv);
    free(q);
    free(k);
    free(v);
    free(o_bits);
    free(got_lse);
    free(want_o);
    free(want_lse);
    free(got_o);
}

// ---------------------------------------------------------------------------------------------------------------
// Probabilities and reductions

typedef struct sizes {
    size_t slots, map_entries, rows, bins, groups;
} sizes;

static sizes sizes_of(const av_attention_shape *s, const av_probs_request *rq) {
    sizes z = {.slots = (size_t)s->batch * (av_probs_head_end(s, rq) - rq->head_begin),
               .map_entries = (size_t)av_probs_map_entries(rq->layout, s->seq_len),
               .rows = rq->rows ? (size_t)(rq->rows_end - rq->rows_begin) : 0,
               .bins = rq->pooled ? (size_t)(s->seq_len + rq->pool - 1) / rq->pool : 0,
               .groups = (size_t)s->batch * (rq->head_group == AV_HEADS_ALL ? 1 : s->n_kv_heads)};
    return z;
}

// One output of a request: its device buffer (guarded), and host buffers for the mirror and the plain reference.
typedef struct output {
    const char *name;
    av_dtype dtype;
    size_t n;
    guarded dev;
    void *mirror, *plain;
} output;

enum { OUT_PROBS, OUT_ROWS, OUT_COLSUM, OUT_COLMEAN, OUT_POOLED, OUT_MEAN, OUT_MAX, N_OUTPUTS };

static const char *output_names[N_OUTPUTS] = {"probs", "rows", "colsum", "colmean", "pooled", "head_mean",
                                              "head_max"};

// Output I of RQ: whether it is asked for, its entry count and its dtype.
static bool output_shape(const av_attention_shape *s, const av_probs_request *rq, int i, size_t *n, av_dtype *dtype) {
    sizes z = sizes_of(s, rq);
    const void *asked[N_OUTPUTS] = {rq->probs, rq->rows, rq->colsum, rq->colmean, rq->pooled, rq->head_mean,
                                    rq->head_max};
    size_t counts[N_OUTPUTS] = {z.slots * z.map_entries, z.slots * z.rows * s->seq_len, z.slots * s->seq_len,
                                z.slots * s->seq_len, z.slots * z.bins * z.bins, z.groups * z.map_entries,
                                z.groups * z.map_entries};
    bool typed = i == OUT_PROBS || i == OUT_ROWS || i == OUT_MEAN || i == OUT_MAX;
    *n = counts[i];
    *dtype = typed ? rq->probs_dtype : AV_DTYPE_FP32;
    return asked[i] != NULL;
}

// Points output I of a request at DATA.
static void set_output(av_probs_request *rq, int i, void *data) {
    switch (i) {
    case OUT_PROBS: rq->probs = data; break;
    case OUT_ROWS: rq->rows = data; break;
    case OUT_COLSUM: rq->colsum = data; break;
    case OUT_COLMEAN: rq->colmean = data; break;
    case OUT_POOLED: rq->pooled = data; break;
    case OUT_MEAN: rq->head_mean = data; break;
    case OUT_MAX: rq->head_max = data; break;
    }
}

// Allocates every output RQ asks for (non-NULL marks) and points three requests at them.
static void make_outputs(output *out, const av_attention_shape *s, const av_probs_request *rq,
                         av_probs_request *dev_rq, av_probs_request *mirror_rq, av_probs_request *plain_rq) {
    *dev_rq = *mirror_rq = *plain_rq = *rq;
    for (int i = 0; i < N_OUTPUTS; i++) {
        out[i] = (output){.name = output_names[i]};
        if (!output_shape(s, rq, i, &out[i].n, &out[i].dtype)) continue;
        size_t bytes = out[i].n * av_dtype_size(out[i].dtype);
        out[i].dev = guarded_alloc(bytes);
        out[i].mirror = calloc(bytes + 1, 1);
        out[i].plain = calloc(bytes + 1, 1);
        set_output(dev_rq, i, out[i].dev.data);
        set_output(mirror_rq, i, out[i].mirror);
        set_output(plain_rq, i, out[i].plain);
    }
}

static char want_mark;
#define WANT ((void *)&want_mark)

// Runs RQ on the device, the mirror and the plain reference and compares every output; returns the device results
// (host copies, caller frees) when keep is not NULL.
static void check_probs_on(problem *pr, const av_probs_request *rq, void **keep) {
    av_attention_shape *s = &pr->shape;
    int T = s->seq_len, D = s->head_dim;
    output out[N_OUTPUTS];
    av_probs_request dev_rq, mirror_rq, plain_rq;
    make_outputs(out, s, rq, &dev_rq, &mirror_rq, &plain_rq);
    size_t ws_bytes = 0;
    AV_OK(av_attention_probs_workspace(s, rq, &ws_bytes));
    guarded ws = guarded_alloc(ws_bytes);
    AV_OK(av_attention_probs(s, contiguous(pr->dq, s->n_heads, T, D), contiguous(pr->dk, s->n_kv_heads, T, D),
                             pr->dlse, &dev_rq, ws.data, ws_bytes, NULL));
    CUDA_OK(cudaDeviceSynchronize());
    free(guarded_take(&ws, "workspace"));
    AV_OK(av_attention_probs_tiled(s, pr->q, pr->k, pr->lse_mirror, &mirror_rq));
    AV_OK(av_attention_probs_plain(s, pr->q, pr->k, &plain_rq));
    for (int i = 0; i < N_OUTPUTS; i++) {
        if (!out[i].mirror) {
            if (keep) keep[i] = NULL;
            continue;
        }
        char what[200];
        snprintf(what, sizeof what, "%s B=%d T=%d D=%d NH=%d NKV=%d causal=%d pool=%d seed=%llu", out[i].name,
                 s->batch, T, D, s->n_heads, s->n_kv_heads, s->causal, rq->pool, (unsigned long long)pr->seed);
        void *got_bits = guarded_take(&out[i].dev, what);
        float *got = as_floats(got_bits, out[i].dtype, out[i].n);
        float *mirror = as_floats(out[i].mirror, out[i].dtype, out[i].n);
        float *plain = as_floats(out[i].plain, out[i].dtype, out[i].n);
        // Stored values may differ by one unit in the last place of their dtype where a rounding boundary falls
        // between two fp32 results; fp32 values differ by the summation orders of S only.
        double rtol = out[i].dtype == AV_DTYPE_BF16 ? 8e-3 : out[i].dtype == AV_DTYPE_FP16 ? 1e-3 : 1e-4;
        expect_close(what, got, mirror, out[i].n, 1e-7, rtol, NULL);
        expect_close(what, got, plain, out[i].n, 1e-7, rtol + 3e-5, NULL);
        if (keep) keep[i] = got_bits;
        else free(got_bits);
        free(got);
        free(mirror);
        free(plain);
        free(out[i].mirror);
        free(out[i].plain);
    }
}

static void check_probs(int B, int T, int D, int NH, int NKV, bool causal, av_dtype dtype, av_probs_request rq) {
    problem pr = make_problem(B, T, D, NH, NKV, causal, dtype);
    check_probs_on(&pr, &rq, NULL);
    free_problem(&pr);
}

static const int ragged[] = {1, 63, 65, 97, 131};
#define N_RAGGED (sizeof ragged / sizeof ragged[0])

Test(cuda_attention, full_probs_every_dtype_and_layout) {
    NEED_DEVICE();
    for (size_t i = 0; i < N_RAGGED; i++) {
        av_probs_request fp32 = {.probs = WANT, .probs_dtype = AV_DTYPE_FP32};
        check_probs(1, ragged[i], 64, 2, 1, true, AV_DTYPE_BF16, fp32);
        check_probs(1, ragged[i], 128, 2, 2, false, AV_DTYPE_FP16, fp32);
        av_probs_request packed = {.probs = WANT, .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL};
        check_probs(1, ragged[i], 128, 4, 2, true, AV_DTYPE_FP16, packed);
        av_probs_request bf16 = {.probs = WANT, .probs_dtype = AV_DTYPE_BF16};
        check_probs(2, ragged[i], 64, 4, 2, true, AV_DTYPE_BF16, bf16);
        // Two outputs of one launch, each carrying its own row ends from key tile to key tile.
        av_probs_request with_rows = {.probs = WANT, .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL,
                                      .rows = WANT, .rows_begin = ragged[i] / 3, .rows_end = ragged[i]};
        check_probs(1, ragged[i], 64, 2, 2, true, AV_DTYPE_BF16, with_rows);
    }
}

// The maps copy runs 128 query rows a block as two 64-row blocks: a block whose second row block ends or lies past
// the sequence (333 = 2 x 128 + 77), a first row block past its diagonal on the block's last key tile (causal), the
// zeros of a square map past each row block's own diagonal, and rows alone starting in a later 128-row tile. On a
// GPU these small grids leave free, a query tile's keys are split among blocks from 16 key tiles on (1000: 2 chunks
// of 8 key tiles; 1537: 3 of 9, 9 and 7), each block writing its own elements of the 16-byte chunks at the edges.
Test(cuda_attention, maps_by_two_row_blocks) {
    NEED_DEVICE();
    const int lengths[] = {333, 1000, 1537};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        const int T = lengths[i];
        av_probs_request packed = {.probs = WANT, .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL};
        check_probs(1, T, 64, 2, 1, true, AV_DTYPE_FP16, packed);
        av_probs_request square = {.probs = WANT, .probs_dtype = AV_DTYPE_BF16, .rows = WANT,
                                   .rows_begin = T - 140, .rows_end = T - 3};
        check_probs(1, T, 128, 2, 2, true, AV_DTYPE_BF16, square);
        av_probs_request rows = {.rows = WANT, .rows_begin = T - 200, .rows_end = T};
        check_probs(2, T, 64, 2, 2, false, AV_DTYPE_FP16, rows);
        check_probs(1, T, 128, 2, 1, true, AV_DTYPE_BF16, rows);
    }
}

Test(cuda_attention, rows_colsums_pooled_ragged) {
    NEED_DEVICE();
    // Pools that divide the 64-row tile are summed in registers and written in place (bins of up to 16 rows in one
    // warp, 32 and 64 across warps); the others go through partials, from the fragments for multiples of 8.
    const int pools[] = {1, 2, 3, 4, 8, 16, 24, 32, 64, 100, 128, 1000};
    for (size_t i = 0; i < N_RAGGED; i++) {
        av_probs_request rows = {.rows = WANT, .rows_begin = ragged[i] / 2, .rows_end = ragged[i],
                                 .head_begin = 1, .head_end = 3};
        check_probs(1, ragged[i], 64, 4, 2, true, AV_DTYPE_BF16, rows);
        av_probs_request cols = {.colsum = WANT, .colmean = WANT};
        check_probs(2, ragged[i], 128, 4, 1, true, AV_DTYPE_FP16, cols);
        check_probs(1, ragged[i], 64, 2, 2, false, AV_DTYPE_BF16, cols);
        for (size_t p = 0; p < sizeof pools / sizeof pools[0]; p++) {
            av_probs_request pooled = {.pooled = WANT, .pool = pools[p]};
            // Pooling alone at D = 64 is the one pass whose S is a warpgroup MMA on sm_90a: both input types.
            check_probs(1, ragged[i], 64, 2, 1, true, p % 2 ? AV_DTYPE_FP16 : AV_DTYPE_BF16, pooled);
            check_probs(1, ragged[i] + 1, 128, 2, 2, false, AV_DTYPE_FP16, pooled); // even T: pool 1's pair stores
        }
        av_probs_request both = {.colsum = WANT, .pooled = WANT, .pool = 16, .probs = WANT};
        check_probs(1, ragged[i], 128, 2, 2, true, AV_DTYPE_FP16, both);
    }
    // Pooling in place on a longer prompt: 10 key tiles, each query tile's split among blocks in chunks of 3 (the last
    // chunk one tile, a chunk starting on an odd tile, causal chunks wholly past the diagonal).
    const int in_place[] = {16, 32};
    for (size_t p = 0; p < sizeof in_place / sizeof in_place[0]; p++) {
        av_probs_request pooled = {.pooled = WANT, .pool = in_place[p]};
        check_probs(1, 600, 64, 2, 1, true, p % 2 ? AV_DTYPE_FP16 : AV_DTYPE_BF16, pooled);
        check_probs(2, 600, 128, 2, 2, false, AV_DTYPE_FP16, pooled);
    }
    // Pools that span whole tiles (a 512 x 512 map of more than 32768 tokens): bins of two and three key tiles, cut
    // short by the causal diagonal and by the end of the sequence; alone (summed over key tiles in registers) and
    // beside a map (the general copy's row bins).
    const int spanning[] = {128, 192};
    for (size_t p = 0; p < sizeof spanning / sizeof spanning[0]; p++) {
        av_probs_request pooled = {.pooled = WANT, .pool = spanning[p]};
        check_probs(2, 400, 64, 2, 1, true, AV_DTYPE_BF16, pooled);
        check_probs(1, 333, 128, 2, 2, false, AV_DTYPE_FP16, pooled);
        av_probs_request with_map = {.pooled = WANT, .pool = spanning[p], .probs = WANT,
                                     .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL};
        check_probs(1, 333, 64, 2, 2, true, AV_DTYPE_BF16, with_map);
    }
}

Test(cuda_attention, head_mean_and_max_gqa) {
    NEED_DEVICE();
    for (size_t i = 0; i < N_RAGGED; i++) {
        av_probs_request all = {.head_mean = WANT, .head_max = WANT, .head_group = AV_HEADS_ALL};
        check_probs(2, ragged[i], 64, 4, 2, true, AV_DTYPE_BF16, all);
        av_probs_request group = {.head_mean = WANT, .head_max = WANT, .head_group = AV_HEADS_PER_KV_GROUP,
                                  .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL};
        check_probs(1, ragged[i], 128, 6, 2, true, AV_DTYPE_FP16, group);
        av_probs_request square = {.head_mean = WANT, .head_group = AV_HEADS_PER_KV_GROUP};
        check_probs(1, ragged[i], 64, 4, 4, false, AV_DTYPE_BF16, square);
    }
}

// Two runs of every reduction give the same bits: no order-dependent atomics anywhere.
Test(cuda_attention, reductions_are_deterministic) {
    NEED_DEVICE();
    problem pr = make_problem(1, 1000, 64, 4, 2, true, AV_DTYPE_BF16);
    av_probs_request rq = {.probs = WANT, .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL,
                           .colsum = WANT, .colmean = WANT, .pooled = WANT, .pool = 7, .head_mean = WANT,
                           .head_max = WANT, .head_group = AV_HEADS_ALL, .rows = WANT, .rows_begin = 900,
                           .rows_end = 1000};
    void *first[N_OUTPUTS], *second[N_OUTPUTS];
    check_probs_on(&pr, &rq, first);
    check_probs_on(&pr, &rq, second);
    for (int i = 0; i < N_OUTPUTS; i++) {
        size_t n;
        av_dtype dtype;
        cr_assert(output_shape(&pr.shape, &rq, i, &n, &dtype) && first[i] && second[i]);
        cr_assert(!memcmp(first[i], second[i], n * av_dtype_size(dtype)), "%s differs between runs",
                  output_names[i]);
        free(first[i]);
        free(second[i]);
    }
    free_problem(&pr);
}

// ---------------------------------------------------------------------------------------------------------------
// Refusals

Test(cuda_attention, refuses_misaligned_tensors_and_short_workspace) {
    NEED_DEVICE();
    problem pr = make_problem(1, 65, 64, 2, 2, true, AV_DTYPE_BF16);
    av_attention_tensor q = contiguous(pr.dq, 2, 65, 64), k = contiguous(pr.dk, 2, 65, 64);
    av_attention_tensor odd = q;
    odd.row_stride = 66;
    cr_assert_eq(av_attention_forward(&pr.shape, odd, k, k, q, pr.dlse, NULL), AV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(av_last_error(), "q"), "%s", av_last_error());
    av_attention_tensor shifted = k;
    shifted.data = (char *)k.data + 2;
    cr_assert_eq(av_attention_forward(&pr.shape, q, shifted, k, q, pr.dlse, NULL), AV_ERROR_INVALID_ARGUMENT);
    float *colsum = NULL;
    CUDA_OK(cudaMalloc((void **)&colsum, 2 * 65 * sizeof(float)));
    av_probs_request rq = {.colsum = colsum};
    size_t need = 0;
    AV_OK(av_attention_probs_workspace(&pr.shape, &rq, &need));
    cr_assert_gt(need, 0);
    cr_assert_eq(av_attention_probs(&pr.shape, q, k, pr.dlse, &rq, NULL, 0, NULL), AV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(av_last_error(), "workspace"), "%s", av_last_error());
    CUDA_OK(cudaFree(colsum));
    free_problem(&pr);
}
