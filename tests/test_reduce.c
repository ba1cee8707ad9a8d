// The host reductions of captured P agree with the kernel API's plain reference (av_attention_probs_plain) for
// every output it defines, causal and not, at ragged sizes.
#include "attention_tiled.h"
#include "reduce.h"
#include "support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct reference {
    float *probs, *packed, *rows, *colsum, *colmean, *pooled, *mean, *max;
} reference;

static const int NH = 3, D = 64;

static reference plain_outputs(const float *q, const float *k, int T, bool causal, int W, int B) {
    av_attention_shape shape = {.batch = 1, .n_heads = NH, .n_kv_heads = NH, .seq_len = T, .head_dim = D,
                                .dtype = AV_DTYPE_FP16, .causal = causal};
    int nb = reduce_pool_bins(T, B);
    size_t TT = (size_t)T * T;
    reference r = {.probs = malloc(NH * TT * sizeof(float)),
                   .rows = malloc((size_t)NH * W * T * sizeof(float)),
                   .colsum = malloc((size_t)NH * T * sizeof(float)),
                   .colmean = malloc((size_t)NH * T * sizeof(float)),
                   .pooled = malloc((size_t)NH * nb * nb * sizeof(float)),
                   .mean = malloc(TT * sizeof(float)),
                   .max = malloc(TT * sizeof(float))};
    av_probs_request square = {.head_end = NH, .probs_dtype = AV_DTYPE_FP32, .probs = r.probs, .rows = r.rows,
                               .rows_begin = T - W, .rows_end = T, .colsum = r.colsum, .colmean = r.colmean,
                               .pooled = r.pooled, .pool = B, .head_mean = r.mean, .head_max = r.max};
    AV_OK(av_attention_probs_plain(&shape, q, k, &square));
    if (causal) {
        r.packed = malloc((size_t)NH * T * (T + 1) / 2 * sizeof(float));
        av_probs_request packed = {.head_end = NH, .probs_dtype = AV_DTYPE_FP32, .layout = AV_PROBS_PACKED_CAUSAL,
                                   .probs = r.packed};
        AV_OK(av_attention_probs_plain(&shape, q, k, &packed));
    }
    return r;
}

static void free_reference(reference *r) {
    float *all[] = {r->probs, r->packed, r->rows, r->colsum, r->colmean, r->pooled, r->mean, r->max};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static void check_size(int T, bool causal, int W, int B, uint64_t seed) {
    float *q = malloc((size_t)NH * T * D * sizeof(float)), *k = malloc((size_t)NH * T * D * sizeof(float));
    fill_random(q, (size_t)NH * T * D, seed, -1.5f, 1.5f);
    fill_random(k, (size_t)NH * T * D, seed + 1, -1.5f, 1.5f);
    reference r = plain_outputs(q, k, T, causal, W, B);
    int nb = reduce_pool_bins(T, B);
    size_t TT = (size_t)T * T;
    float *got = malloc(NH * TT * sizeof(float) + (size_t)NH * T * sizeof(float));
    char what[128];
#define CHECK(name, n, want)                                                                                          \
    snprintf(what, sizeof what, "T=%d causal=%d W=%d B=%d %s", T, causal, W, B, name);                               \
    expect_close(what, got, want, n, 1e-6, 1e-6, NULL)
    reduce_last_rows(got, r.probs, NH, T, W);
    CHECK("rows", (size_t)NH * W * T, r.rows);
    reduce_column_sums(got, got + NH * TT, r.probs, NH, T, causal);
    CHECK("colsum", (size_t)NH * T, r.colsum);
    expect_close("colmean", got + NH * TT, r.colmean, (size_t)NH * T, 1e-6, 1e-6, NULL);
    reduce_pool(got, r.probs, NH, T, B);
    CHECK("pool", (size_t)NH * nb * nb, r.pooled);
    for (int s = 0; s < NH * nb; s++) {
        double row = 0;
        for (int j = 0; j < nb; j++) row += got[(size_t)s * nb + j];
        cr_assert_float_eq(row, 1.0, 1e-5, "pooled row %d sums to %g", s, row);
    }
    reduce_head_mean_max(got, NULL, r.probs, NH, TT);
    CHECK("head mean", TT, r.mean);
    reduce_head_mean_max(NULL, got, r.probs, NH, TT);
    CHECK("head max", TT, r.max);
    if (causal) {
        reduce_pack_causal(got, r.probs, NH, T);
        CHECK("packed causal", (size_t)NH * T * (T + 1) / 2, r.packed);
    }
#undef CHECK
    free(got);
    free_reference(&r);
    free(q);
    free(k);
}

Test(reduce, causal_outputs_match_the_kernel_api_reference) {
    int sizes[][3] = {{1, 1, 1}, {7, 3, 2}, {64, 5, 8}, {65, 65, 8}, {131, 17, 10}, {97, 1, 200}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_size(sizes[i][0], true, sizes[i][1], sizes[i][2], 100 + i);
}

Test(reduce, bidirectional_outputs_match_the_kernel_api_reference) {
    int sizes[][3] = {{1, 1, 3}, {18, 4, 4}, {65, 2, 7}, {128, 128, 64}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_size(sizes[i][0], false, sizes[i][1], sizes[i][2], 200 + i);
}
