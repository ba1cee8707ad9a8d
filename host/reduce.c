#include "reduce.h"

#include <math.h>
#include <stdlib.h>

void reduce_last_rows(float *out, const float *p, int NS, int T, int W) {
    size_t TT = (size_t)T * T, WT = (size_t)W * T;
    for (int s = 0; s < NS; s++)
        for (size_t x = 0; x < WT; x++) out[s * WT + x] = p[s * TT + (size_t)(T - W) * T + x];
}

void reduce_column_sums(float *colsum, float *colmean, const float *p, int NS, int T, bool causal) {
    size_t TT = (size_t)T * T;
#pragma omp parallel for
    for (int s = 0; s < NS; s++) {
        const float *map = p + s * TT;
        for (int j = 0; j < T; j++) {
            // Down one column: double keeps a sum over 100k rows exact to float precision.
            double sum = 0.0;
            for (int i = causal ? j : 0; i < T; i++) sum += map[(size_t)i * T + j];
            colsum[(size_t)s * T + j] = (float)sum;
            colmean[(size_t)s * T + j] = (float)(sum / (causal ? T - j : T));
        }
    }
}

int reduce_pool_bins(int T, int B) {
    int pool = B < T ? B : T;
    return (T + pool - 1) / pool;
}

void reduce_pool(float *out, const float *p, int NS, int T, int B) {
    int pool = B < T ? B : T, nb = reduce_pool_bins(T, B);
    size_t TT = (size_t)T * T;
#pragma omp parallel for collapse(2)
    for (int s = 0; s < NS; s++) {
        for (int bi = 0; bi < nb; bi++) {
            int i0 = bi * pool, i1 = i0 + pool < T ? i0 + pool : T;
            float *row = out + ((size_t)s * nb + bi) * nb;
            for (int bj = 0; bj < nb; bj++) {
                int j0 = bj * pool, j1 = j0 + pool < T ? j0 + pool : T;
                double sum = 0.0;
                for (int i = i0; i < i1; i++) sum += reduce_sum_f64(p + s * TT + (size_t)i * T + j0, j1 - j0);
                row[bj] = (float)(sum / (i1 - i0));
            }
        }
    }
}

void reduce_group_mean_max(float *mean, float *max, const float *p, const int *slot_group, int NS, int G, size_t N) {
    for (int g = 0; g < G; g++) {
        int count = 0;
        for (int s = 0; s < NS; s++) count += !slot_group || slot_group[s] == g;
#pragma omp parallel for
        for (size_t x = 0; x < N; x++) {
            double sum = 0.0;
            float m = 0.0f; // probabilities and their reductions are >= 0
            for (int s = 0; s < NS; s++) {
                if (slot_group && slot_group[s] != g) continue;
                sum += p[s * N + x];
                m = fmaxf(m, p[s * N + x]);
            }
            if (mean) mean[g * N + x] = (float)(sum / count);
            if (max) max[g * N + x] = m;
        }
    }
}

void reduce_head_mean_max(float *mean, float *max, const float *p, int NS, size_t N) {
    reduce_group_mean_max(mean, max, p, NULL, NS, 1, N);
}

void reduce_pack_causal(float *out, const float *p, int NS, int T) {
    size_t TT = (size_t)T * T, packed = (size_t)T * (T + 1) / 2;
    for (int s = 0; s < NS; s++)
        for (int i = 0; i < T; i++)
            for (int j = 0; j <= i; j++) out[s * packed + (size_t)i * (i + 1) / 2 + j] = p[s * TT + (size_t)i * T + j];
}
