// The tiled CPU mirrors of the attention kernels against the plain double-precision references, at ragged sizes
// (n = 1, tile - 1, tile + 1, primes), causal diagonal tiles, GQA, head dim 64 and 128, on fresh random inputs.
#include "attention_tiled.h"
#include "support.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// A different seed every run (fresh inputs), printed with every failure so that a failure can be replayed.
static uint64_t fresh_seed(void) {
    static uint64_t counter;
    return ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() << 8) ^ ++counter;
}

typedef struct inputs {
    float *q, *k, *v; // (B, NH, T, D), (B, NKV, T, D) x 2, rounded to the shape's dtype
    uint64_t seed;
} inputs;

static float *random_tensor(size_t n, uint64_t seed, float range, av_dtype dtype) {
    float *x = malloc(n * sizeof(float));
    cr_assert(x);
    fill_random(x, n, seed, -range, range);
    for (size_t i = 0; i < n; i++) x[i] = av_round_to_dtype(x[i], dtype);
    return x;
}

// Scores of a few units make the softmax rows neither flat nor one-hot.
static inputs make_inputs(const av_attention_shape *s) {
    inputs in = {.seed = fresh_seed()};
    size_t nq = (size_t)s->batch * s->n_heads * s->seq_len * s->head_dim;
    size_t nkv = (size_t)s->batch * s->n_kv_heads * s->seq_len * s->head_dim;
    in.q = random_tensor(nq, in.seed, 1.7f, s->dtype);
    in.k = random_tensor(nkv, in.seed + 1, 1.7f, s->dtype);
    in.v = random_tensor(nkv, in.seed + 2, 1.0f, s->dtype);
    return in;
}

static void free_inputs(inputs *in) {
    free(in->q);
    free(in->k);
    free(in->v);
}

static av_attention_shape make_shape(int T, int D, int NH, int NKV, bool causal, av_dtype dtype) {
    return (av_attention_shape){.batch = 1, .n_heads = NH, .n_kv_heads = NKV, .seq_len = T, .head_dim = D,
                                .dtype = dtype, .causal = causal};
}

// ||got - want|| / ||want||
static double relative_error(const float *got, const float *want, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        cr_assert(!isnan(got[i]), "NaN at %zu", i);
        num += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        den += (double)want[i] * want[i];
    }
    return sqrt(num / den);
}

static float *as_floats(const void *data, av_dtype dtype, size_t n) {
    float *out = malloc(n * sizeof(float) + 1);
    cr_assert(out);
    for (size_t i = 0; i < n; i++) out[i] = av_load_as_float(data, dtype, i);
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Forward

static void check_forward(int T, int D, int NH, int NKV, bool causal, av_dtype dtype) {
    av_attention_shape s = make_shape(T, D, NH, NKV, causal, dtype);
    s.batch = 2;
    inputs in = make_inputs(&s);
    size_t rows = (size_t)s.batch * NH * T;
    float *o = malloc(rows * D * sizeof(float)), *lse = malloc(rows * sizeof(float));
    float *o_ref = malloc(rows * D * sizeof(float)), *lse_ref = malloc(rows * sizeof(float));
    cr_assert_eq(av_attention_forward_tiled(o, lse, in.q, in.k, in.v, &s), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(av_attention_forward_plain(o_ref, lse_ref, in.q, in.k, in.v, &s), AV_SUCCESS);
    char what[160];
    snprintf(what, sizeof what, "forward lse T=%d D=%d NH=%d NKV=%d causal=%d seed=%llu", T, D, NH, NKV, causal,
             (unsigned long long)in.seed);
    expect_close(what, lse, lse_ref, rows, 2e-5, 2e-5, NULL);
    // P is rounded to the input dtype before P V, as on the tensor cores: the output error follows that rounding.
    double err = relative_error(o, o_ref, rows * D);
    double bound = dtype == AV_DTYPE_BF16 ? 6e-3 : 8e-4;
    cr_assert(err < bound, "forward o T=%d D=%d causal=%d seed=%llu: relative error %.3g >= %.1g", T, D, causal,
              (unsigned long long)in.seed, err, bound);
    free(o);
    free(lse);
    free(o_ref);
    free(lse_ref);
    free_inputs(&in);
}

Test(attention_tiled, forward_ragged_sizes_causal_and_not) {
    const int sizes[] = {1, 63, 64, 65, 97, 130};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_forward(sizes[i], 64, 2, 2, true, AV_DTYPE_BF16);
        check_forward(sizes[i], 64, 2, 2, false, AV_DTYPE_FP16);
    }
}

Test(attention_tiled, forward_head_dim_128_and_gqa) {
    check_forward(97, 128, 4, 1, true, AV_DTYPE_BF16);
    check_forward(65, 128, 6, 2, false, AV_DTYPE_FP16);
    check_forward(131, 64, 8, 2, true, AV_DTYPE_FP16);
}

// The forward bounds above are tight enough to notice a 1% change of q (a wrong scale, say).
Test(attention_tiled, forward_comparison_notices_a_one_percent_change) {
    av_attention_shape s = make_shape(130, 64, 1, 1, true, AV_DTYPE_FP16);
    inputs in = make_inputs(&s);
    size_t rows = (size_t)s.seq_len;
    float *o = malloc(rows * 64 * sizeof(float)), *lse = malloc(rows * sizeof(float));
    float *o_ref = malloc(rows * 64 * sizeof(float)), *lse_ref = malloc(rows * sizeof(float));
    av_attention_forward_plain(o_ref, lse_ref, in.q, in.k, in.v, &s);
    // Scaling q changes every row's softmax: the comparison must see it.
    for (size_t i = 0; i < rows * 64; i++) in.q[i] *= 1.01f;
    av_attention_forward_tiled(o, lse, in.q, in.k, in.v, &s);
    cr_assert(relative_error(o, o_ref, rows * 64) > 8e-4, "a 1%% change of q went unnoticed (seed %llu)",
              (unsigned long long)in.seed);
    free(o);
    free(lse);
    free(o_ref);
    free(lse_ref);
    free_inputs(&in);
}

// ---------------------------------------------------------------------------------------------------------------
// Probabilities and reductions

// Every output of a request, allocated for SHAPE, in host memory.
typedef struct outputs {
    av_probs_request rq;
    size_t map_entries, n_maps, n_rows, n_slots, n_bins, n_groups;
} outputs;

static outputs make_outputs(const av_attention_shape *s, av_probs_request rq) {
    outputs out = {.rq = rq};
    int T = s->seq_len;
    out.n_slots = (size_t)s->batch * (av_probs_head_end(s, &rq) - rq.head_begin);
    out.map_entries = (size_t)av_probs_map_entries(rq.layout, T);
    size_t esize = av_dtype_size(rq.probs_dtype);
    if (rq.probs) out.rq.probs = calloc(out.n_slots * out.map_entries, esize);
    if (rq.rows) {
        out.n_rows = (size_t)(rq.rows_end - rq.rows_begin);
        out.rq.rows = calloc(out.n_slots * out.n_rows * T, esize);
    }
    if (rq.colsum) out.rq.colsum = calloc(out.n_slots * T, sizeof(float));
    if (rq.colmean) out.rq.colmean = calloc(out.n_slots * T, sizeof(float));
    if (rq.pooled) {
        out.n_bins = (size_t)(T + rq.pool - 1) / rq.pool;
        out.rq.pooled = calloc(out.n_slots * out.n_bins * out.n_bins, sizeof(float));
    }
    out.n_groups = (size_t)s->batch * (rq.head_group == AV_HEADS_ALL ? 1 : s->n_kv_heads);
    if (rq.head_mean) out.rq.head_mean = calloc(out.n_groups * out.map_entries, esize);
    if (rq.head_max) out.rq.head_max = calloc(out.n_groups * out.map_entries, esize);
    return out;
}

static void free_outputs(outputs *out) {
    free(out->rq.probs);
    free(out->rq.rows);
    free(out->rq.colsum);
    free(out->rq.colmean);
    free(out->rq.pooled);
    free(out->rq.head_mean);
    free(out->rq.head_max);
}

// Marks a requested output for make_outputs (which replaces it with a real buffer).
static char requested;
#define WANT ((void *)&requested)

static void compare_typed(const char *what, const void *got, const void *want, av_dtype dtype, size_t n) {
    float *g = as_floats(got, dtype, n), *w = as_floats(want, dtype, n);
    // One unit in the last place of the stored dtype either way, over P's fp32 error (a few 1e-6 relative).
    double rtol = dtype == AV_DTYPE_BF16 ? 8e-3 : dtype == AV_DTYPE_FP16 ? 1e-3 : 3e-5;
    expect_close(what, g, w, n, 1e-7, rtol, NULL);
    free(g);
    free(w);
}

// The mirror and the plain reference agree on every output of RQ.
static void check_probs(av_attention_shape s, av_probs_request rq) {
    inputs in = make_inputs(&s);
    size_t rows = (size_t)s.batch * s.n_heads * s.seq_len;
    float *o = malloc(rows * s.head_dim * sizeof(float)), *lse = malloc(rows * sizeof(float));
    cr_assert_eq(av_attention_forward_tiled(o, lse, in.q, in.k, in.v, &s), AV_SUCCESS);
    outputs got = make_outputs(&s, rq), want = make_outputs(&s, rq);
    cr_assert_eq(av_attention_probs_tiled(&s, in.q, in.k, lse, &got.rq), AV_SUCCESS, "%s", av_last_error());
    cr_assert_eq(av_attention_probs_plain(&s, in.q, in.k, &want.rq), AV_SUCCESS, "%s", av_last_error());
    char what[200];
    int T = s.seq_len;
#define NAME(label)                                                                                               \
    snprintf(what, sizeof what, "%s T=%d D=%d NH=%d NKV=%d causal=%d pool=%d seed=%llu", label, T, s.head_dim,     \
             s.n_heads, s.n_kv_heads, s.causal, rq.pool, (unsigned long long)in.seed)
    if (rq.probs) {
        NAME("probs");
        compare_typed(what, got.rq.probs, want.rq.probs, rq.probs_dtype, got.n_slots * got.map_entries);
    }
    if (rq.rows) {
        NAME("rows");
        compare_typed(what, got.rq.rows, want.rq.rows, rq.probs_dtype, got.n_slots * got.n_rows * T);
    }
    if (rq.colsum) {
        NAME("colsum");
        expect_close(what, got.rq.colsum, want.rq.colsum, got.n_slots * T, 1e-6, 3e-5, NULL);
    }
    if (rq.colmean) {
        NAME("colmean");
        expect_close(what, got.rq.colmean, want.rq.colmean, got.n_slots * T, 1e-6, 3e-5, NULL);
    }
    if (rq.pooled) {
        NAME("pooled");
        size_t nb = got.n_bins;
        expect_close(what, got.rq.pooled, want.rq.pooled, got.n_slots * nb * nb, 1e-6, 3e-5, NULL);
        for (size_t r = 0; r < got.n_slots * nb; r++) {
            double sum = 0.0;
            for (size_t J = 0; J < nb; J++) sum += got.rq.pooled[r * nb + J];
            cr_assert(fabs(sum - 1.0) < 1e-5, "%s: pooled row %zu sums to %.9g", what, r, sum);
        }
    }
    if (rq.head_mean) {
        NAME("head_mean");
        compare_typed(what, got.rq.head_mean, want.rq.head_mean, rq.probs_dtype, got.n_groups * got.map_entries);
    }
    if (rq.head_max) {
        NAME("head_max");
        compare_typed(what, got.rq.head_max, want.rq.head_max, rq.probs_dtype, got.n_groups * got.map_entries);
    }
#undef NAME
    free_outputs(&got);
    free_outputs(&want);
    free(o);
    free(lse);
    free_inputs(&in);
}

static const int ragged_sizes[] = {1, 63, 64, 65, 97, 131};
#define N_RAGGED (sizeof ragged_sizes / sizeof ragged_sizes[0])

Test(attention_tiled, full_probs_square_fp32) {
    for (size_t i = 0; i < N_RAGGED; i++) {
        av_probs_request rq = {.probs = WANT, .probs_dtype = AV_DTYPE_FP32};
        check_probs(make_shape(ragged_sizes[i], 64, 2, 1, true, AV_DTYPE_BF16), rq);
        check_probs(make_shape(ragged_sizes[i], 64, 2, 2, false, AV_DTYPE_FP16), rq);
    }
}

Test(attention_tiled, full_probs_packed_fp16_and_bf16) {
    for (size_t i = 0; i < N_RAGGED; i++) {
        av_probs_request rq = {.probs = WANT, .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL};
        check_probs(make_shape(ragged_sizes[i], 128, 2, 1, true, AV_DTYPE_FP16), rq);
        rq.probs_dtype = AV_DTYPE_BF16;
        rq.layout = AV_PROBS_SQUARE;
        check_probs(make_shape(ragged_sizes[i], 64, 4, 2, true, AV_DTYPE_BF16), rq);
    }
}

Test(attention_tiled, selected_rows_and_head_range) {
    av_probs_request rq = {.rows = WANT, .rows_begin = 60, .rows_end = 131, .head_begin = 1, .head_end = 3};
    check_probs(make_shape(131, 64, 4, 2, true, AV_DTYPE_BF16), rq);
    rq.rows_begin = 130;
    check_probs(make_shape(131, 64, 4, 2, false, AV_DTYPE_BF16), rq);
    av_probs_request last = {.rows = WANT, .rows_begin = 0, .rows_end = 1};
    check_probs(make_shape(1, 64, 1, 1, true, AV_DTYPE_FP16), last);
}

Test(attention_tiled, column_sums_and_means) {
    for (size_t i = 0; i < N_RAGGED; i++) {
        av_probs_request rq = {.colsum = WANT, .colmean = WANT};
        check_probs(make_shape(ragged_sizes[i], 64, 4, 2, true, AV_DTYPE_BF16), rq);
        check_probs(make_shape(ragged_sizes[i], 128, 2, 2, false, AV_DTYPE_FP16), rq);
    }
}

Test(attention_tiled, pooled_maps_any_factor_ragged_last_bin) {
    const int pools[] = {1, 2, 3, 7, 8, 63, 64, 65, 100, 1000};
    for (size_t p = 0; p < sizeof pools / sizeof pools[0]; p++) {
        av_probs_request rq = {.pooled = WANT, .pool = pools[p]};
        check_probs(make_shape(131, 64, 2, 1, true, AV_DTYPE_BF16), rq);
        check_probs(make_shape(97, 64, 2, 2, false, AV_DTYPE_FP16), rq);
    }
    av_probs_request one = {.pooled = WANT, .pool = 5};
    check_probs(make_shape(1, 64, 1, 1, true, AV_DTYPE_BF16), one);
}

Test(attention_tiled, head_mean_and_max_per_layer_and_per_kv_group) {
    for (size_t i = 0; i < N_RAGGED; i++) {
        av_probs_request all = {.head_mean = WANT, .head_max = WANT, .head_group = AV_HEADS_ALL};
        check_probs(make_shape(ragged_sizes[i], 64, 4, 2, true, AV_DTYPE_BF16), all);
        av_probs_request group = {.head_mean = WANT, .head_max = WANT, .head_group = AV_HEADS_PER_KV_GROUP,
                                  .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL};
        check_probs(make_shape(ragged_sizes[i], 64, 6, 2, true, AV_DTYPE_FP16), group);
    }
}

Test(attention_tiled, every_output_at_once_batched) {
    av_probs_request rq = {.probs = WANT, .rows = WANT, .rows_begin = 100, .rows_end = 131, .colsum = WANT,
                           .colmean = WANT, .pooled = WANT, .pool = 9, .head_mean = WANT, .head_max = WANT,
                           .head_group = AV_HEADS_PER_KV_GROUP, .probs_dtype = AV_DTYPE_FP32};
    av_attention_shape s = make_shape(131, 64, 4, 2, true, AV_DTYPE_BF16);
    s.batch = 2;
    check_probs(s, rq);
}

// ---------------------------------------------------------------------------------------------------------------
// Layouts, conversions, validation

Test(attention_tiled, packed_triangle_index_round_trip) {
    int64_t index = 0;
    for (int64_t i = 0; i < 300; i++) {
        for (int64_t j = 0; j <= i; j++, index++) {
            cr_assert_eq(av_packed_causal_index(i, j), index);
            int64_t ri, rj;
            av_packed_causal_position(index, &ri, &rj);
            cr_assert(ri == i && rj == j, "entry %lld: got (%lld, %lld) want (%lld, %lld)", (long long)index,
                      (long long)ri, (long long)rj, (long long)i, (long long)j);
        }
    }
    // Far rows, where sqrt in double must be corrected: first, last and middle entry of each.
    for (int64_t i = (1 << 22) - 50; i < (1 << 22); i++) {
        int64_t cols[] = {0, i / 2, i};
        for (int c = 0; c < 3; c++) {
            int64_t ri, rj;
            av_packed_causal_position(av_packed_causal_index(i, cols[c]), &ri, &rj);
            cr_assert(ri == i && rj == cols[c], "row %lld col %lld came back as (%lld, %lld)", (long long)i,
                      (long long)cols[c], (long long)ri, (long long)rj);
        }
    }
    cr_assert_eq(av_probs_map_entries(AV_PROBS_PACKED_CAUSAL, 131), 131 * 132 / 2);
}

// The packed map holds exactly the square map's lower triangle.
Test(attention_tiled, packed_equals_square_lower_triangle) {
    av_attention_shape s = make_shape(131, 64, 2, 1, true, AV_DTYPE_BF16);
    inputs in = make_inputs(&s);
    float *o = malloc((size_t)2 * 131 * 64 * sizeof(float)), *lse = malloc((size_t)2 * 131 * sizeof(float));
    av_attention_forward_tiled(o, lse, in.q, in.k, in.v, &s);
    av_probs_request sq = {.probs = WANT, .probs_dtype = AV_DTYPE_FP16};
    av_probs_request pk = {.probs = WANT, .probs_dtype = AV_DTYPE_FP16, .layout = AV_PROBS_PACKED_CAUSAL};
    outputs a = make_outputs(&s, sq), b = make_outputs(&s, pk);
    cr_assert_eq(av_attention_probs_tiled(&s, in.q, in.k, lse, &a.rq), AV_SUCCESS);
    cr_assert_eq(av_attention_probs_tiled(&s, in.q, in.k, lse, &b.rq), AV_SUCCESS);
    const uint16_t *square = a.rq.probs, *packed = b.rq.probs;
    for (size_t h = 0; h < 2; h++) {
        for (int64_t x = 0; x < (int64_t)b.map_entries; x++) {
            int64_t i, j;
            av_packed_causal_position(x, &i, &j);
            cr_assert_eq(packed[h * b.map_entries + x], square[h * a.map_entries + i * 131 + j],
                         "head %zu (%lld, %lld)", h, (long long)i, (long long)j);
        }
        for (int64_t i = 0; i < 131; i++)
            for (int64_t j = i + 1; j < 131; j++)
                cr_assert_eq(square[h * a.map_entries + i * 131 + j], 0, "above the diagonal at (%lld, %lld)",
                             (long long)i, (long long)j);
    }
    free_outputs(&a);
    free_outputs(&b);
    free(o);
    free(lse);
    free_inputs(&in);
}

Test(attention_tiled, half_and_bfloat16_round_to_nearest_even) {
    cr_assert_eq(av_f32_to_f16(1.0f), 0x3c00);
    cr_assert_eq(av_f32_to_f16(-2.0f), 0xc000);
    cr_assert_eq(av_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(av_f32_to_f16(65519.0f), 0x7bff);
    cr_assert_eq(av_f32_to_f16(65520.0f), 0x7c00);
    cr_assert_eq(av_f32_to_f16(0x1p-24f), 0x0001);
    cr_assert_eq(av_f32_to_f16(0x1p-25f), 0x0000);      // tie to even: 0
    cr_assert_eq(av_f32_to_f16(0x1.8p-24f), 0x0002);    // 1.5 units: tie to even, up
    cr_assert_eq(av_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); // tie: stays even
    cr_assert_eq(av_f32_to_f16(1.0f + 0x3p-11f), 0x3c02); // tie: up to even
    cr_assert_eq(av_f32_to_f16(0x1.ffcp-15f), 0x0400);  // rounds up into the smallest normal
    cr_assert_eq(av_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    cr_assert_eq(av_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
    cr_assert_eq(av_f32_to_bf16(-3.0f), 0xc040);
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; // NaN payloads need not survive
        cr_assert_eq(av_f32_to_f16(av_f16_to_f32((uint16_t)h)), h, "half 0x%04x", h);
        if (((h >> 7) & 0xff) == 0xff && (h & 0x7f)) continue;
        cr_assert_eq(av_f32_to_bf16(av_bf16_to_f32((uint16_t)h)), h, "bfloat16 0x%04x", h);
    }
}

// The workspace holds exactly the partials the kernel keeps: none for maps, one float per (query tile, key) for
// column sums, and (query tile, local query bin, key bin) floats for pooling (none when the pool divides the tile
// size), each part 256-byte aligned.
Test(attention_tiled, workspace_sizes) {
    av_attention_shape s = make_shape(131, 64, 4, 2, true, AV_DTYPE_BF16);
    s.batch = 2;
    size_t bytes = 1;
    av_probs_request maps = {.probs = WANT, .head_mean = WANT};
    cr_assert_eq(av_attention_probs_workspace(&s, &maps, &bytes), AV_SUCCESS);
    cr_assert_eq(bytes, 0);
    av_probs_request cols = {.colmean = WANT, .head_begin = 1, .head_end = 2};
    cr_assert_eq(av_attention_probs_workspace(&s, &cols, &bytes), AV_SUCCESS);
    cr_assert_eq(bytes, (2 * 1 * 3 * 131 * 4 + 255) / 256 * 256);
    av_probs_request pooled = {.colsum = WANT, .pooled = WANT, .pool = 10};
    av_probs_workspace plan;
    cr_assert_eq(av_probs_workspace_plan(&s, &pooled, &plan), AV_SUCCESS);
    cr_assert_eq(plan.n_bins, 14);
    cr_assert_eq(plan.max_local_bins, 8); // 64 rows starting at 60 touch bins 6..12 (7); the bound is 63 / 10 + 2
    cr_assert_eq(plan.pool_offset, (2 * 4 * 3 * 131 * 4 + 255) / 256 * 256);
    cr_assert_eq(plan.bytes, plan.pool_offset + (2 * 4 * 3 * 8 * 14 * 4 + 255) / 256 * 256);
    cr_assert(!plan.pool_in_tiles);
    // A pool that divides the tile size keeps every bin inside one tile: the means are written directly.
    av_probs_request in_tiles = {.pooled = WANT, .pool = 16};
    cr_assert_eq(av_probs_workspace_plan(&s, &in_tiles, &plan), AV_SUCCESS);
    cr_assert(plan.pool_in_tiles);
    cr_assert_eq(plan.bytes, 0);
}

Test(attention_tiled, invalid_requests_are_refused_with_a_message) {
    av_attention_shape s = make_shape(16, 64, 4, 2, false, AV_DTYPE_BF16);
    av_probs_request packed = {.probs = WANT, .layout = AV_PROBS_PACKED_CAUSAL};
    cr_assert_eq(av_attention_check_request(&s, &packed), AV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(av_last_error(), "causal"), "%s", av_last_error());
    av_probs_request rows = {.rows = WANT, .rows_begin = 10, .rows_end = 17};
    cr_assert_eq(av_attention_check_request(&s, &rows), AV_ERROR_INVALID_ARGUMENT);
    av_probs_request pool = {.pooled = WANT, .pool = 0};
    cr_assert_eq(av_attention_check_request(&s, &pool), AV_ERROR_INVALID_ARGUMENT);
    av_probs_request heads = {.head_begin = 3, .head_end = 5};
    cr_assert_eq(av_attention_check_request(&s, &heads), AV_ERROR_INVALID_ARGUMENT);
    av_attention_shape bad = s;
    bad.n_kv_heads = 3;
    cr_assert_eq(av_attention_check_shape(&bad), AV_ERROR_INVALID_ARGUMENT);
    bad = s;
    bad.head_dim = 96;
    cr_assert_eq(av_attention_check_shape(&bad), AV_ERROR_UNSUPPORTED);
    bad = s;
    bad.dtype = AV_DTYPE_FP32;
    cr_assert_eq(av_attention_check_shape(&bad), AV_ERROR_UNSUPPORTED);
}
