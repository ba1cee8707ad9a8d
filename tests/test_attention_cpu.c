// The CPU's attention (host/attention_cpu.c). av_attention_cpu's softmax against float64 on scores that float32
// holds exactly, and its NaN rows. av_attention_reduced_cpu (the reductions taken block by block, no captured head's
// full P) against av_attention_cpu's full P of the captured heads reduced on the host (host/reduce.c): fresh random
// qkv, a NaN-poisoned output buffer with a guard after it, ragged sizes around the row block (128) and pool bins,
// grouped-query heads and group means, head subsets, thread counts that leave groups empty, and run-to-run determinism.
#include "backend.h"
#include "reduce.h"
#include "support.h"

#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 64

typedef struct shape {
    int T, NH, NKV, HS;
    bool causal;
} shape;

typedef struct outputs {
    float *out;     // (T, C)
    float *reduced; // the compact buffer, then GUARD floats
} outputs;

static int width_of(const shape *s) { return s->NH * s->HS + 2 * s->NKV * s->HS; }

static float *random_qkv(const shape *s, uint64_t seed) {
    size_t n = (size_t)s->T * width_of(s);
    float *qkv = malloc(n * sizeof(float));
    fill_random(qkv, n, seed, -2.0f, 2.0f);
    return qkv;
}

// The reference: full P of the captured heads, then the host reductions into the compact layout.
static outputs reference_outputs(const shape *s, const float *qkv, const int *head_slot,
                                 const av_reduction_request *r) {
    int T = s->T, NS = av_captured_heads(head_slot, s->NH);
    av_reduction_layout at = av_reduction_layout_of(r, NS, T);
    outputs o = {.out = malloc((size_t)T * s->NH * s->HS * sizeof(float)),
                 .reduced = calloc(at.floats + 1, sizeof(float))};
    float *probs = malloc((size_t)NS * T * T * sizeof(float));
    AV_OK(av_attention_cpu(o.out, probs, qkv, T, s->NH * s->HS, s->NH, s->NKV, s->causal, head_slot));
    if (r->rows) reduce_last_rows(o.reduced + at.rows, probs, NS, T, r->rows);
    if (r->colsum) reduce_column_sums(o.reduced + at.colsum, o.reduced + at.colmean, probs, NS, T, s->causal);
    if (r->pool) reduce_pool(o.reduced + at.pooled, probs, NS, T, r->pool);
    if (r->head_mean) reduce_head_mean_max(o.reduced + at.head_mean, o.reduced + at.head_max, probs, NS, (size_t)T * T);
    if (r->group_mean) {
        int slot_group[16];
        for (int h = 0; h < s->NH; h++)
            if (head_slot[h] >= 0) slot_group[head_slot[h]] = h / (s->NH / r->group_mean);
        reduce_group_mean_max(o.reduced + at.group_mean, o.reduced + at.group_max, probs, slot_group, NS,
                              r->group_mean, (size_t)T * T);
    }
    free(probs);
    return o;
}

static outputs reduced_outputs(const shape *s, const float *qkv, const int *head_slot, const av_reduction_request *r) {
    size_t floats = av_reduction_layout_of(r, av_captured_heads(head_slot, s->NH), s->T).floats;
    size_t n_out = (size_t)s->T * s->NH * s->HS;
    outputs o = {.out = malloc(n_out * sizeof(float)), .reduced = malloc((floats + GUARD) * sizeof(float))};
    memset(o.out, 0xff, n_out * sizeof(float)); // NaN: every entry must be written
    memset(o.reduced, 0xff, (floats + GUARD) * sizeof(float));
    AV_OK(av_attention_reduced_cpu(o.out, o.reduced, qkv, s->T, s->NH * s->HS, s->NH, s->NKV, s->causal, head_slot,
                                   r));
    for (size_t i = floats; i < floats + GUARD; i++)
        cr_assert(isnan(o.reduced[i]), "T=%d: the guard after the compact buffer was written at +%zu", s->T,
                  i - floats);
    return o;
}

static void free_outputs(outputs *o) {
    free(o->out);
    free(o->reduced);
}

// Rows, pooled maps and the head and group maxima are the reference's bits (same P, same order of sums); column sums
// add the groups' float64 partials in another order and the head and group means sum float32 over heads: within
// 1e-6.
static void check_case(const shape *s, const int *head_slot, const av_reduction_request *r, uint64_t seed) {
    float *qkv = random_qkv(s, seed);
    outputs want = reference_outputs(s, qkv, head_slot, r), got = reduced_outputs(s, qkv, head_slot, r);
    int T = s->T, NS = av_captured_heads(head_slot, s->NH), nb = r->pool ? reduce_pool_bins(T, r->pool) : 0;
    av_reduction_layout at = av_reduction_layout_of(r, NS, T);
    size_t group_maps = (size_t)r->group_mean * T * T;
    char what[200];
    snprintf(what, sizeof what,
             "T=%d NH=%d NKV=%d causal=%d slots=%d rows=%d colsum=%d pool=%d mean=%d groups=%d threads=%d", T, s->NH,
             s->NKV, s->causal, NS, r->rows, r->colsum, r->pool, r->head_mean, r->group_mean, omp_get_max_threads());
    cr_assert(!memcmp(got.out, want.out, (size_t)T * s->NH * s->HS * sizeof(float)),
              "%s: O differs from av_attention_cpu's", what);
    struct {
        const char *name;
        size_t at, n;
        double tol;
    } parts[] = {{"rows", at.rows, (size_t)NS * r->rows * T, 0},
                 {"colsum", at.colsum, r->colsum ? (size_t)NS * T : 0, 1e-6},
                 {"colmean", at.colmean, r->colsum ? (size_t)NS * T : 0, 1e-6},
                 {"pooled", at.pooled, (size_t)NS * nb * nb, 0},
                 {"head_mean", at.head_mean, r->head_mean ? (size_t)T * T : 0, 1e-6},
                 {"head_max", at.head_max, r->head_mean ? (size_t)T * T : 0, 0},
                 {"group_mean", at.group_mean, group_maps, 1e-6},
                 {"group_max", at.group_max, group_maps, 0}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (!parts[i].n) continue;
        char name[240];
        snprintf(name, sizeof name, "%s: %s", what, parts[i].name);
        expect_close(name, got.reduced + parts[i].at, want.reduced + parts[i].at, parts[i].n, parts[i].tol,
                     parts[i].tol, NULL);
    }
    free_outputs(&want);
    free_outputs(&got);
    free(qkv);
}

static const int every_head[] = {0, 1, 2, 3};

// q and k in multiples of 1/8 within [-4, 4] and HS = 16: every q.k is a multiple of 1/64 below 2^10, so float32
// holds S exactly and the scale (1/4) too. What is left is the softmax: its exp, sum and division against float64, to
// within a few ulp. The scores span about 128, so the smallest P (e^-128) are below float's normal range: 0 there.
Test(attention_cpu, softmax_matches_float64_on_exact_scores) {
    shape s = {.T = 150, .NH = 2, .NKV = 2, .HS = 16, .causal = true};
    int T = s.T, W = width_of(&s);
    size_t n = 2 * (size_t)T * T;
    float *qkv = random_qkv(&s, 11), *probs = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    for (int x = 0; x < T * W; x++) qkv[x] = roundf(qkv[x] * 16.0f) / 8.0f; // [-2, 2): multiples of 1/8 in [-4, 4]
    float out[150 * 32];
    AV_OK(av_attention_cpu(out, probs, qkv, T, 32, 2, 2, true, every_head));
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < T; i++) {
            double row[150], top = -INFINITY, sum = 0.0;
            for (int j = 0; j <= i; j++) {
                double dot = 0.0;
                for (int d = 0; d < 16; d++) dot += (double)qkv[i * W + h * 16 + d] * qkv[j * W + 32 + h * 16 + d];
                row[j] = dot * 0.25;
                top = fmax(top, row[j]);
            }
            for (int j = 0; j <= i; j++) sum += row[j] = exp(row[j] - top);
            for (int j = 0; j < T; j++) want[((size_t)h * T + i) * T + j] = j <= i ? (float)(row[j] / sum) : 0.0f;
        }
    expect_close("P of exact scores", probs, want, n, 1e-37, 1e-6, NULL);
    free(qkv);
    free(probs);
    free(want);
}

// A NaN score makes its whole row NaN (the layer writer then names the layer, head and query), whichever of q or k
// holds it; the other rows stay finite.
Test(attention_cpu, nan_scores_make_their_rows_nan) {
    shape s = {.T = 40, .NH = 1, .NKV = 1, .HS = 16, .causal = true};
    int T = s.T, W = width_of(&s);
    float *qkv = random_qkv(&s, 12), *probs = malloc((size_t)T * T * sizeof(float)), out[40 * 16];
    qkv[7 * W + 3] = NAN;      // q of row 7
    qkv[30 * W + 16 + 5] = NAN; // k of key 30: rows 30.. see it
    AV_OK(av_attention_cpu(out, probs, qkv, T, 16, 1, 1, true, every_head));
    for (int i = 0; i < T; i++) {
        bool nan_row = i == 7 || i >= 30;
        for (int j = 0; j <= i; j++)
            cr_assert_eq(isnan(probs[(size_t)i * T + j]), nan_row, "P[%d, %d] = %g", i, j, probs[(size_t)i * T + j]);
    }
    free(qkv);
    free(probs);
}

Test(attention_cpu, reduced_every_reduction_matches_the_host_path_at_ragged_sizes) {
    const int sizes[] = {1, 2, 17, 127, 128, 129, 131, 257, 300};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int T = sizes[i];
        for (int causal = 0; causal <= 1; causal++) {
            shape s = {.T = T, .NH = 4, .NKV = 2, .HS = 16, .causal = causal};
            int pools[] = {1, 3, 64, T};
            for (size_t p = 0; p < sizeof pools / sizeof pools[0]; p++) {
                av_reduction_request r = {.rows = T < 5 ? T : 5, .colsum = true, .pool = pools[p] < T ? pools[p] : T,
                                          .head_mean = true, .group_mean = s.NKV};
                check_case(&s, every_head, &r, 100 + 10 * i + p);
            }
        }
    }
}

Test(attention_cpu, reduced_each_reduction_alone_and_head_subsets) {
    shape s = {.T = 203, .NH = 4, .NKV = 1, .HS = 8, .causal = true};
    const int subset[] = {-1, 0, -1, 1}, reversed[] = {3, 2, 1, 0}, one[] = {-1, -1, 0, -1};
    const av_reduction_request alone[] = {{.rows = 203}, {.colsum = true}, {.pool = 7}, {.pool = 200}};
    for (size_t i = 0; i < sizeof alone / sizeof alone[0]; i++) {
        check_case(&s, subset, &alone[i], 7 + i);
        check_case(&s, reversed, &alone[i], 17 + i);
        check_case(&s, one, &alone[i], 27 + i);
    }
    // Means over every head and over subsets (in any slot order); groups of four, two and one head (each group mean
    // then that head's P).
    const int *heads[] = {every_head, subset, reversed, one};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        av_reduction_request mean = {.head_mean = true};
        check_case(&s, heads[i], &mean, 40 + i);
        for (int groups = 1; groups <= 4; groups *= 2) {
            av_reduction_request group_mean = {.group_mean = groups};
            bool each_group_captured = groups == 1 || (heads[i] != one && (groups == 2 || heads[i] != subset));
            if (each_group_captured) check_case(&s, heads[i], &group_mean, 44 + i + groups);
        }
    }
}

// The rows split into one group per thread; more groups than rows (empty groups) and one group must agree too.
Test(attention_cpu, reduced_any_thread_count) {
    int saved = omp_get_max_threads();
    const int threads[] = {1, 3, 8};
    for (size_t i = 0; i < sizeof threads / sizeof threads[0]; i++) {
        omp_set_num_threads(threads[i]);
        for (int T = 5; T <= 520; T += 515) {
            shape s = {.T = T, .NH = 2, .NKV = 2, .HS = 16, .causal = true};
            av_reduction_request r = {.rows = 3, .colsum = true, .pool = 4, .head_mean = true, .group_mean = 2};
            check_case(&s, every_head, &r, 60 + T);
        }
    }
    omp_set_num_threads(saved);
}

Test(attention_cpu, reduced_runs_are_bitwise_identical) {
    shape s = {.T = 600, .NH = 4, .NKV = 2, .HS = 16, .causal = true};
    av_reduction_request r = {.rows = 9, .colsum = true, .pool = 33, .head_mean = true, .group_mean = 2};
    float *qkv = random_qkv(&s, 5);
    outputs a = reduced_outputs(&s, qkv, every_head, &r), b = reduced_outputs(&s, qkv, every_head, &r);
    size_t floats = av_reduction_layout_of(&r, 4, s.T).floats;
    cr_assert(!memcmp(a.reduced, b.reduced, floats * sizeof(float)), "two runs of the same input differ");
    free_outputs(&a);
    free_outputs(&b);
    free(qkv);
}

Test(attention_cpu, reduced_group_means_need_whole_groups_with_a_captured_head) {
    shape s = {.T = 8, .NH = 4, .NKV = 4, .HS = 8, .causal = false};
    const int first_two[] = {0, 1, -1, -1};
    av_reduction_request two = {.group_mean = 2}, three = {.group_mean = 3};
    float *qkv = random_qkv(&s, 3), out[8 * 32], reduced[2 * 4 * 64];
    cr_assert_eq(av_attention_reduced_cpu(out, reduced, qkv, s.T, 32, 4, 4, false, first_two, &two),
                 AV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(av_last_error(), "no head of group 1 (heads 2-3)"), "%s", av_last_error());
    cr_assert_eq(av_attention_reduced_cpu(out, reduced, qkv, s.T, 32, 4, 4, false, every_head, &three),
                 AV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(av_last_error(), "do not divide"), "%s", av_last_error());
    free(qkv);
}
