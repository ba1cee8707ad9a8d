// Reductions of captured attention probabilities, computed on the host from a layer's P as it streams out: the
// views people plot for long prompts (selected rows, attention received, pooled maps, head mean and max) and the
// packed causal layout. Same definitions as the kernel API's av_probs_request (include/attnviz_kernels.h).
#ifndef AV_REDUCE_H
#define AV_REDUCE_H

#include <stdbool.h>
#include <stddef.h>

// out (NS, W, T): the last W query rows of p (NS, T, T), W <= T.
void reduce_last_rows(float *out, const float *p, int NS, int T, int W);
// colsum (NS, T) = sum_i P_ij; colmean (NS, T) = colsum / the number of queries that see key j (T - j when causal).
void reduce_column_sums(float *colsum, float *colmean, const float *p, int NS, int T, bool causal);
// Bins per axis of a pool factor B (clamped to T): ceil(T / B).
int reduce_pool_bins(int T, int B);
// sum p (N) in float64, in eight interleaved lanes (no chain of dependent additions, so the loop vectorizes) added up
// in a fixed order: every pooled sum (reduce_pool, the CPU's reducing attention) adds a row's keys of a bin this way,
// so both give the same bits.
static inline double reduce_sum_f64(const float *p, int n) {
    double lane[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, tail = 0.0;
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) lane[l] += p[j + l];
    for (; j < n; j++) tail += p[j];
    return (((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))) + tail;
}
// out (NS, NB, NB): P summed over key bins of B columns and averaged over query bins of B rows (the last bin may be
// short), so each pooled row still sums to 1.
void reduce_pool(float *out, const float *p, int NS, int T, int B);
// mean, max (N) over the NS maps of p (NS, N); either may be NULL.
void reduce_head_mean_max(float *mean, float *max, const float *p, int NS, size_t N);
// mean, max (G, N): for each group g, over the maps of p (NS, N) whose slot_group[s] is g (every group has one);
// slot_group NULL puts all NS maps in group 0. Either output may be NULL.
void reduce_group_mean_max(float *mean, float *max, const float *p, const int *slot_group, int NS, int G, size_t N);
// out (NS, T (T + 1) / 2): the causal triangle of each map, row i (keys 0..i) starting at i (i + 1) / 2.
void reduce_pack_causal(float *out, const float *p, int NS, int T);

#endif
