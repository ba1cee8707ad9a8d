// The compact buffer of one layer's reductions (backend.h), shared by the backend that fills it and the layer
// writer that reads it.
#include "backend.h"
#include "reduce.h"

// Takes COUNT floats at *cursor when WANTED; the offset is 0 (and unused) otherwise.
static size_t take(size_t *cursor, bool wanted, size_t count) {
    if (!wanted) return 0;
    size_t at = *cursor;
    *cursor += count;
    return at;
}

int av_captured_heads(const int *head_slot, int NH) {
    int n = 0;
    for (int h = 0; h < NH; h++) n += head_slot[h] >= 0;
    return n;
}

av_reduction_layout av_reduction_layout_of(const av_reduction_request *request, int n_slots, int T) {
    size_t NS = (size_t)n_slots, t = (size_t)T, cursor = 0;
    av_reduction_layout l = {.n_bins = request->pool ? reduce_pool_bins(T, request->pool) : 0};
    size_t nb = (size_t)l.n_bins;
    l.rows = take(&cursor, request->rows > 0, NS * (size_t)request->rows * t);
    l.colsum = take(&cursor, request->colsum, NS * t);
    l.colmean = take(&cursor, request->colsum, NS * t);
    l.pooled = take(&cursor, request->pool > 0, NS * nb * nb);
    l.head_mean = take(&cursor, request->head_mean, t * t);
    l.head_max = take(&cursor, request->head_mean, t * t);
    l.group_mean = take(&cursor, request->group_mean > 0, (size_t)request->group_mean * t * t);
    l.group_max = take(&cursor, request->group_mean > 0, (size_t)request->group_mean * t * t);
    l.floats = cursor;
    return l;
}
