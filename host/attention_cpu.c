// CPU attention: the reference (av_attention_cpu, full P of the captured heads) and its reducing twin
// (av_attention_reduced_cpu), which keeps each captured head's P one block of query rows at a time and takes the
// --capture reductions from the block before the next one overwrites it. Both compute P the same way (OpenBLAS
// S = Q K^T per row block, a float32 softmax per row), so the reductions are those of the reference's P.
#include "backend.h"
#include "reduce.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Query rows per attention block: bounds a thread's scratch to ATTENTION_BLOCK x T floats.
#define ATTENTION_BLOCK 128

// The larger of a and b, inline (fmaxf was a libm call per element, 9% of a long prompt's time).
static inline float larger(float a, float b) { return a > b ? a : b; }

// e^x for the softmax's x <= 0, branch-free so that its loop vectorizes (glibc's expf, a call per element, was 12%
// of a long prompt's time and kept the loop around it scalar; this file is built with -fno-trapping-math so that the
// compiler may if-convert the selects). Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-6
// polynomial, 2^n in the exponent bits; within 1 ulp of e^x (0.99 at worst over every float in [-87, 0]), and 0 below
// -87, where e^x < 1.7e-38 is not a normal float. A NaN x gives NaN, which makes its row's sum NaN (the layer writer
// reports it); no NaN reaches the float-to-int conversion.
static inline float exp_nonpositive(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    float xc = x >= -87.0f ? x : -87.0f;
    // n = xc log2e rounded to nearest by adding 1.5 * 2^23 (no fraction bits left); (float)(int)(...) became a
    // truncation call with SSE4.1, which kept the AVX clones below from vectorizing.
    float fn = (xc * log2e + 12582912.0f) - 12582912.0f;
    int n = (int)fn;
    float r = xc - fn * ln2_hi - fn * ln2_lo;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    union { uint32_t u; float f; } two_n = {.u = (uint32_t)(n + 127) << 23};
    union { uint32_t u; float f; } e = {.f = (p * r * r + r + 1.0f) * two_n.f + (x - x)}; // x - x: 0, or NaN
    e.u &= (uint32_t)(x < -87.0f) - 1u; // -inf too
    return e.f;
}

// Softmax of one score row in place: s (T) holds raw q.k; entries past `visible` are masked and written as 0.
// Built for AVX-512 and AVX2 too, picked at load time by the CPU (the portable build is SSE2, 4 lanes).
__attribute__((target_clones("avx512f", "avx2", "default")))
static void softmax_row(float *s, int visible, int T, float scale) {
    float top = -INFINITY;
#pragma omp simd reduction(max : top)
    for (int j = 0; j < visible; j++) top = larger(top, s[j] * scale);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < visible; j++) {
        s[j] = exp_nonpositive(s[j] * scale - top);
        sum += s[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < visible; j++) s[j] *= inv;
    for (int j = visible; j < T; j++) s[j] = 0.0f;
}

// One block of query rows [r0, r1) of head h: S = Q K^T, softmax, O = P V. Causal blocks only touch keys < r1.
// Query head h reads key/value head h / (NH / NKV).
// out (T, C); rows (r1 - r0, T): P of the block; qkv (T, C + 2 NKV HS)
static void attention_block(float *out, float *rows, const float *qkv, int T, int C, int NH, int NKV, int h, int r0,
                            int r1, bool causal) {
    int HS = C / NH, kv = h / (NH / NKV);
    int width = C + 2 * NKV * HS; // qkv's row
    int n = r1 - r0;
    int keys = causal ? r1 : T;
    const float *q = qkv + (size_t)r0 * width + h * HS;
    const float *k = qkv + C + kv * HS;
    const float *v = qkv + C + NKV * HS + kv * HS;
    float scale = 1.0f / sqrtf((float)HS);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, keys, HS, 1.0f, q, width, k, width, 0.0f, rows, T);
    for (int i = 0; i < n; i++) softmax_row(rows + (size_t)i * T, causal ? r0 + i + 1 : T, T, scale);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, HS, keys, 1.0f, rows, T, v, width, 0.0f,
                out + (size_t)r0 * C + h * HS, C);
}

static int block_rows(int T) { return T < ATTENTION_BLOCK ? T : ATTENTION_BLOCK; }

size_t av_attention_cpu_scratch_bytes(int T) {
    return (size_t)omp_get_max_threads() * (size_t)block_rows(T) * (size_t)T * sizeof(float);
}

// (head, row block) jobs in parallel, each one serial inside: small sgemms and softmax rows do not switch between
// thread pools. Causal blocks differ in cost, hence dynamic. A captured head (head_slot[h] >= 0) writes its P to its
// slot of probs, or is skipped when probs is NULL (its reductions are taken elsewhere); the others use scratch.
static av_status attention_jobs(float *out, float *probs, const float *qkv, int T, int C, int NH, int NKV,
                                bool causal, const int *head_slot) {
    int block = block_rows(T);
    int n_blocks = (T + block - 1) / block;
    float *scratch = av_malloc(av_attention_cpu_scratch_bytes(T), "attention scratch");
    if (!scratch) return AV_ERROR_OUT_OF_MEMORY;
#pragma omp parallel for schedule(dynamic)
    for (int job = 0; job < NH * n_blocks; job++) {
        int h = job / n_blocks, r0 = (job % n_blocks) * block;
        int r1 = r0 + block < T ? r0 + block : T;
        int slot = head_slot ? head_slot[h] : -1;
        if (slot >= 0 && !probs) continue;
        float *rows = slot >= 0 ? probs + ((size_t)slot * T + r0) * T
                                : scratch + (size_t)omp_get_thread_num() * block * T;
        attention_block(out, rows, qkv, T, C, NH, NKV, h, r0, r1, causal);
    }
    free(scratch);
    return AV_SUCCESS;
}

av_status av_attention_cpu(float *out, float *probs, const float *qkv, int T, int C, int NH, int NKV, bool causal,
                           const int *head_slot) {
    return attention_jobs(out, probs, qkv, T, C, NH, NKV, causal, probs ? head_slot : NULL);
}

// The reducing twin. Each captured head runs on its own, its rows split into GROUPS_PER_THREAD groups per thread
// (taken dynamically: causal groups differ in cost); a group is a run of whole pool bins, so its pooled rows are its
// own, and its column sums go to a partial of its own, added in group order after the head: the result depends on
// the thread count, not on the schedule.
#define GROUPS_PER_THREAD 4

// What a layer's reductions need besides the compact buffer: per thread, a block of P rows; per group, the
// column-sum partial and the current pool bin's key-bin sums.
typedef struct reduce_scratch {
    int n_groups;
    float *rows;    // (threads, block, T)
    double *colsum; // (n_groups, T)
    double *bins;   // (n_groups, NB)
} reduce_scratch;

typedef struct reduce_target {
    const av_reduction_request *request;
    av_reduction_layout at;
    float *reduced; // the compact buffer (av_reduction_layout_of)
    int T, pool;    // pool: the bin height, clipped to T (0 without pooling)
    int group_size; // heads per group of the group mean (0 without it)
    bool causal;
} reduce_target;

static size_t pool_bins(const av_reduction_request *request, int T) {
    return request->pool ? (size_t)reduce_pool_bins(T, request->pool) : 0;
}

static int group_count(void) { return GROUPS_PER_THREAD * omp_get_max_threads(); }

size_t av_attention_reduced_cpu_scratch_bytes(const av_reduction_request *request, int T) {
    size_t doubles = (request->colsum ? (size_t)T : 0) + pool_bins(request, T);
    return av_attention_cpu_scratch_bytes(T) + (size_t)group_count() * doubles * sizeof(double);
}

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

// Groups start on a multiple of UNIT: whole pool bins, and whole row blocks of av_attention_cpu (the same products on
// the same rows give the same bits, so P and O do not depend on what is captured).
static int group_unit(int T, int pool) {
    int block = block_rows(T);
    return pool > 1 ? pool / gcd(pool, block) * block : block;
}

// Group g's first row: about equal work per group (a causal row costs its visible keys, so the edges follow a square
// root), rounded down to a multiple of UNIT. Edges rise with g; edge(0) = 0, edge(G) = T.
static int group_edge(int g, int n_groups, int T, int unit, bool causal) {
    if (g >= n_groups) return T;
    double f = (double)g / n_groups;
    return (int)(T * (causal ? sqrt(f) : f)) / unit * unit;
}

// sum (T) += p, max (T) = max(max, p): one row of a head or group mean.
static void add_to_mean_max(float *sum, float *max, const float *p, int T) {
    for (int j = 0; j < T; j++) {
        sum[j] += p[j];
        max[j] = larger(max[j], p[j]);
    }
}

// Row i of head slot s, p (T) = P[i, :] (zero past the visible keys), into the reductions; colsum and bins are the
// group's partials. A query bin's key-bin sums are written out (mean over its rows) at its last row. Built like
// softmax_row: the float64 sums run 8 lanes wide in the AVX-512 clone, with the same bits in every clone.
__attribute__((target_clones("avx512f", "avx2", "default")))
static void reduce_row(const reduce_target *t, const float *p, int i, int s, int head_group, double *colsum,
                       double *bins) {
    const av_reduction_request *r = t->request;
    int T = t->T, visible = t->causal ? i + 1 : T;
    float *base = t->reduced;
    if (r->rows && i >= T - r->rows) {
        size_t row = (size_t)s * r->rows + (size_t)(i - (T - r->rows));
        memcpy(base + t->at.rows + row * T, p, (size_t)T * sizeof(float));
    }
    if (r->colsum)
        for (int j = 0; j < visible; j++) colsum[j] += p[j];
    if (t->pool) {
        // Whole key bins, as reduce_pool adds them (p is 0 past the visible keys), so the sums are the same bits.
        for (int j = 0; j < visible; j += t->pool)
            bins[j / t->pool] += reduce_sum_f64(p + j, (j + t->pool < T ? j + t->pool : T) - j);
        int bin = i / t->pool, last = (bin + 1) * t->pool < T ? (bin + 1) * t->pool - 1 : T - 1;
        if (i == last) {
            int nb = t->at.n_bins, height = last + 1 - bin * t->pool;
            float *pooled = base + t->at.pooled + ((size_t)s * nb + bin) * nb;
            for (int b = 0; b < nb; b++) pooled[b] = (float)(bins[b] / height);
            memset(bins, 0, (size_t)nb * sizeof(double));
        }
    }
    // Means summed in head order here (heads run one after another), divided by their head counts at the end.
    if (r->head_mean) {
        size_t row = (size_t)i * T;
        add_to_mean_max(base + t->at.head_mean + row, base + t->at.head_max + row, p, T);
    }
    if (r->group_mean) {
        size_t row = ((size_t)head_group * T + i) * T;
        add_to_mean_max(base + t->at.group_mean + row, base + t->at.group_max + row, p, T);
    }
}

// Rows [edge(g), edge(g + 1)) of head h (slot s), block by block.
static void reduce_group(const reduce_target *t, const reduce_scratch *sc, float *out, const float *qkv, int C,
                         int NH, int NKV, int h, int s, int g) {
    int T = t->T, block = block_rows(T);
    int unit = group_unit(T, t->pool);
    int begin = group_edge(g, sc->n_groups, T, unit, t->causal);
    int end = group_edge(g + 1, sc->n_groups, T, unit, t->causal);
    float *rows = sc->rows + (size_t)omp_get_thread_num() * block * T;
    int head_group = t->group_size ? h / t->group_size : 0;
    double *colsum = t->request->colsum ? sc->colsum + (size_t)g * T : NULL;
    double *bins = t->pool ? sc->bins + (size_t)g * t->at.n_bins : NULL;
    if (colsum) memset(colsum, 0, (size_t)T * sizeof(double));
    if (bins) memset(bins, 0, (size_t)t->at.n_bins * sizeof(double));
    for (int r0 = begin; r0 < end; r0 += block) {
        int r1 = r0 + block < end ? r0 + block : end;
        attention_block(out, rows, qkv, T, C, NH, NKV, h, r0, r1, t->causal);
        for (int i = r0; i < r1; i++) reduce_row(t, rows + (size_t)(i - r0) * T, i, s, head_group, colsum, bins);
    }
}

// The groups' column-sum partials of slot s, in group order, into colsum and colmean.
static void add_column_partials(const reduce_target *t, const reduce_scratch *sc, int s) {
    int T = t->T;
    float *colsum = t->reduced + t->at.colsum + (size_t)s * T, *colmean = t->reduced + t->at.colmean + (size_t)s * T;
#pragma omp parallel for
    for (int j = 0; j < T; j++) {
        double sum = 0.0;
        for (int g = 0; g < sc->n_groups; g++) sum += sc->colsum[(size_t)g * T + j];
        colsum[j] = (float)sum;
        colmean[j] = (float)(sum / (t->causal ? T - j : T));
    }
}

// x (n) /= count: the means' sums into means.
static void divide_map(float *x, size_t n, int count) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) x[i] /= (float)count;
}

static void reduce_scratch_free(reduce_scratch *sc) {
    free(sc->rows);
    free(sc->colsum);
    free(sc->bins);
}

static av_status reduce_scratch_alloc(reduce_scratch *sc, const av_reduction_request *request, int T) {
    size_t G = (size_t)group_count(), nb = pool_bins(request, T);
    *sc = (reduce_scratch){.n_groups = (int)G};
    bool ok = (sc->rows = av_malloc(av_attention_cpu_scratch_bytes(T), "attention scratch")) != NULL;
    if (ok && request->colsum) ok = (sc->colsum = av_malloc(G * T * sizeof(double), "column-sum partials")) != NULL;
    if (ok && nb) ok = (sc->bins = av_malloc(G * nb * sizeof(double), "pool bin sums")) != NULL;
    if (ok) return AV_SUCCESS;
    reduce_scratch_free(sc);
    return AV_ERROR_OUT_OF_MEMORY;
}

av_status av_attention_reduced_cpu(float *out, float *reduced, const float *qkv, int T, int C, int NH, int NKV,
                                   bool causal, const int *head_slot, const av_reduction_request *request) {
    int n_slots = av_captured_heads(head_slot, NH), groups = request->group_mean;
    if (groups && (groups < 0 || NH % groups))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "group mean: %d groups do not divide %d heads", groups, NH);
    int group_size = groups ? NH / groups : 0;
    for (int hg = 0; hg < groups; hg++)
        if (!av_captured_heads(head_slot + hg * group_size, group_size))
            return av_fail(AV_ERROR_INVALID_ARGUMENT, "group mean: no head of group %d (heads %d-%d) is captured", hg,
                           hg * group_size, (hg + 1) * group_size - 1);
    if (n_slots < NH) AV_TRY(attention_jobs(out, NULL, qkv, T, C, NH, NKV, causal, head_slot)); // those not captured
    reduce_target t = {.request = request,
                       .at = av_reduction_layout_of(request, n_slots, T),
                       .reduced = reduced,
                       .T = T,
                       .pool = request->pool ? (request->pool < T ? request->pool : T) : 0,
                       .group_size = group_size,
                       .causal = causal};
    reduce_scratch sc;
    AV_TRY(reduce_scratch_alloc(&sc, request, T));
    // Probabilities are >= 0, so the maxima start at 0 too.
    size_t map = (size_t)T * T;
    if (request->head_mean) {
        memset(reduced + t.at.head_mean, 0, map * sizeof(float));
        memset(reduced + t.at.head_max, 0, map * sizeof(float));
    }
    if (groups) {
        memset(reduced + t.at.group_mean, 0, (size_t)groups * map * sizeof(float));
        memset(reduced + t.at.group_max, 0, (size_t)groups * map * sizeof(float));
    }
    for (int h = 0; h < NH; h++) {
        int s = head_slot[h];
        if (s < 0) continue;
#pragma omp parallel for schedule(dynamic)
        for (int g = 0; g < sc.n_groups; g++) reduce_group(&t, &sc, out, qkv, C, NH, NKV, h, s, g);
        if (request->colsum) add_column_partials(&t, &sc, s);
    }
    if (request->head_mean) divide_map(reduced + t.at.head_mean, map, n_slots);
    for (int hg = 0; hg < groups; hg++)
        divide_map(reduced + t.at.group_mean + (size_t)hg * map, map, av_captured_heads(head_slot + hg * group_size,
                                                                                        group_size));
    reduce_scratch_free(&sc);
    return AV_SUCCESS;
}
