// attention_probs: exact P = exp2(s * scale * log2 e - LSE * log2 e) tile by tile, and what is derived from it.
//
// Transliteration of av_attention_probs_tiled (host/attention_tiled.c), same tiles and loop order:
//   attention_probs_kernel   one block per (query tile, head slot, batch): key tiles in ascending order, the P tile
//                            staged in shared memory as fp32, then consumed: full map, selected rows, per-tile
//                            column sums and pooled partials (written to the workspace, never atomically);
//   colsum_finish_kernel,    the fixed-order second passes over the per-tile partials;
//   pool_finish_kernel
//   head_reduce_kernel       one block per (query tile, head group, batch): key tiles outer, heads inner in
//                            ascending order, mean and max accumulated in registers.
#include "attention_probs.cuh"
#include "attention_tiles.cuh"

namespace avk {

constexpr int PT_STRIDE = TILE_N + 4; // fp32 P tile row in shared memory; the pad spreads the fragment stores

__device__ __forceinline__ int64_t map_index(int layout, int T, int i, int j) {
    return layout == AV_PROBS_PACKED_CAUSAL ? (int64_t)i * (i + 1) / 2 + j : (int64_t)i * T + j;
}

// Rows [r0, r0 + nr) x keys [c0, c0 + nc) of the staged tile (NULL: zeros) into one map; consecutive threads take
// consecutive keys of a row.
__device__ void write_map_tile(const float *pt, void *map, int dtype, int layout, int T, int r0, int nr, int c0,
                               int nc) {
    for (int x = threadIdx.x; x < nr * TILE_N; x += THREADS) {
        int r = x / TILE_N, c = x % TILE_N;
        int i = r0 + r, j = c0 + c;
        if (c >= nc || (layout == AV_PROBS_PACKED_CAUSAL && j > i)) continue;
        store_as(map, dtype, map_index(layout, T, i, j), pt ? pt[r * PT_STRIDE + c] : 0.0f);
    }
}

// The tile's rows that fall into [rows_begin, rows_end) into the rows output of one slot.
__device__ void write_rows_tile(const attention_probs_params &p, const float *pt, void *rows, int r0, int nr, int c0,
                                int nc) {
    int first = max(r0, p.rows_begin) - r0, last = min(r0 + nr, p.rows_end) - r0;
    for (int x = first * TILE_N + threadIdx.x; x < last * TILE_N; x += THREADS) {
        int r = x / TILE_N, c = x % TILE_N;
        if (c >= nc) continue;
        int64_t index = (int64_t)(r0 + r - p.rows_begin) * p.seq_len + c0 + c;
        store_as(rows, p.out_dtype, index, pt ? pt[r * PT_STRIDE + c] : 0.0f);
    }
}

// partial[c0 + c] = sum of the tile's column c over its rows, ascending.
__device__ void colsum_tile(float *partial, const float *pt, int nr, int c0, int nc) {
    for (int c = threadIdx.x; c < nc; c += THREADS) {
        float sum = 0.0f;
        for (int r = 0; r < nr; r++) sum += pt[r * PT_STRIDE + c];
        partial[c0 + c] = sum;
    }
}

// Pooling of one tile into partial (max_local_bins, n_bins): rows summed over the key bins the tile overlaps, then
// those summed over query bins; a key bin that starts in this key tile is written, an older one is added to (only
// this block touches these partials, and key tiles come in order, so the read-modify-write is deterministic).
__device__ void pool_tile(const attention_probs_params &p, int pool, float *partial, const float *pt,
                          float *row_bins, int r0, int nr, int c0, int nc) {
    int c1 = c0 + nc, r1 = r0 + nr;
    int kb0 = c0 / pool, n_local_keys = (c1 - 1) / pool - kb0 + 1;
    int qb0 = r0 / pool, n_local_queries = (r1 - 1) / pool - qb0 + 1;
    for (int x = threadIdx.x; x < nr * n_local_keys; x += THREADS) {
        int r = x / n_local_keys, lk = x % n_local_keys;
        int j0 = max(c0, (kb0 + lk) * pool), j1 = min(c1, (kb0 + lk + 1) * pool);
        float sum = 0.0f;
        for (int j = j0; j < j1; j++) sum += pt[r * PT_STRIDE + (j - c0)];
        row_bins[r * n_local_keys + lk] = sum;
    }
    __syncthreads();
    for (int x = threadIdx.x; x < n_local_queries * n_local_keys; x += THREADS) {
        int lq = x / n_local_keys, lk = x % n_local_keys;
        int i0 = max(r0, (qb0 + lq) * pool), i1 = min(r1, (qb0 + lq + 1) * pool);
        float sum = 0.0f;
        for (int i = i0; i < i1; i++) sum += row_bins[(i - r0) * n_local_keys + lk];
        int J = kb0 + lk;
        float *out = partial + (int64_t)lq * p.n_bins + J;
        *out = J * pool >= c0 ? sum : *out + sum;
    }
}

// P of this warp's fragments: exp2(s * scale_log2 - lse2), 0 where masked or past the sequence.
__device__ __forceinline__ void probs_fragments(float s[TILE_N / 8][4], const attention_probs_params &p,
                                                const float lse2[2], int r0, int c0, int warp, int lane) {
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int row = r0 + fragment_row(warp, lane, e), key = c0 + fragment_col(lane, nb, e);
            bool masked = key >= p.seq_len || (p.causal && key > row);
            s[nb][e] = masked ? 0.0f : exp2f(__fmul_rn(s[nb][e], p.scale_log2) - lse2[e / 2]);
        }
    }
}

__device__ __forceinline__ void stage_fragments(float *pt, const float s[TILE_N / 8][4], int warp, int lane) {
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++)
#pragma unroll
        for (int e = 0; e < 4; e++) pt[fragment_row(warp, lane, e) * PT_STRIDE + fragment_col(lane, nb, e)] = s[nb][e];
}

__device__ __forceinline__ void row_lse2(float lse2[2], const float *lse, int r0, int T, int warp, int lane) {
    for (int i = 0; i < 2; i++) {
        int row = r0 + fragment_row(warp, lane, 2 * i);
        lse2[i] = row < T ? lse[row] * LOG2E : 0.0f;
    }
}

template <typename T, int D>
__global__ void __launch_bounds__(THREADS) attention_probs_kernel(const attention_probs_params p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw);                         // (TILE_M, D + ROW_PAD)
    T *ks = qs + TILE_M * (D + ROW_PAD);                              // (TILE_N, D + ROW_PAD)
    float *pt = reinterpret_cast<float *>(ks + TILE_N * (D + ROW_PAD)); // (TILE_M, PT_STRIDE)
    float *row_bins = pt + TILE_M * PT_STRIDE;                        // (TILE_M, TILE_N + 1)

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int qt = blockIdx.x + (p.rows && !p.probs && !p.col_partial && !p.pool_partial
                                     ? p.rows_begin / TILE_M : 0);
    const int slot = blockIdx.y, b = blockIdx.z, h = p.head_begin + slot;
    const int kvh = h / (p.n_heads / p.n_kv_heads);
    const int T_len = p.seq_len, r0 = qt * TILE_M, nr = min(TILE_M, T_len - r0);
    const int64_t slot_index = (int64_t)b * p.n_slots + slot;
    const int n_key_tiles = (T_len + TILE_N - 1) / TILE_N;
    const int kt_end = p.causal ? qt + 1 : n_key_tiles;
    const int pool = min(p.pool, T_len);

    const T *q = static_cast<const T *>(p.q) + b * p.q_batch + h * p.q_head;
    const T *k = static_cast<const T *>(p.k) + b * p.k_batch + kvh * p.k_head;
    const int64_t out_size = p.out_dtype == AV_DTYPE_FP32 ? 4 : 2;
    const int64_t map_entries = p.layout == AV_PROBS_PACKED_CAUSAL ? (int64_t)T_len * (T_len + 1) / 2
                                                                   : (int64_t)T_len * T_len;
    char *probs = p.probs ? static_cast<char *>(p.probs) + slot_index * map_entries * out_size : nullptr;
    char *rows = p.rows ? static_cast<char *>(p.rows) +
                              slot_index * (p.rows_end - p.rows_begin) * T_len * out_size
                        : nullptr;
    float *col_partial = p.col_partial ? p.col_partial + (slot_index * p.n_query_tiles + qt) * T_len : nullptr;
    float *pool_partial = p.pool_partial ? p.pool_partial + (slot_index * p.n_query_tiles + qt) *
                                                                (int64_t)p.max_local_bins * p.n_bins
                                         : nullptr;
    float lse2[2];
    row_lse2(lse2, p.lse + ((int64_t)b * p.n_heads + h) * T_len, r0, T_len, warp, lane);

    load_tile_async<T, D>(qs, q, p.q_row, r0, T_len);
    load_tile_async<T, D>(ks, k, p.k_row, 0, T_len);
    cp_async_commit();
    uint32_t qa[D / 16][4];
    for (int kt = 0; kt < kt_end; kt++) {
        const int c0 = kt * TILE_N, nc = min(TILE_N, T_len - c0);
        cp_async_wait<0>();
        __syncthreads(); // K of tile kt is in; the previous tile's consumers are done with pt and row_bins
        if (kt == 0) load_query_fragments<T, D>(qa, qs, warp, lane);
        float s[TILE_N / 8][4];
        score_fragments<T, D>(s, qa, ks, lane);
        probs_fragments(s, p, lse2, r0, c0, warp, lane);
        stage_fragments(pt, s, warp, lane);
        __syncthreads(); // pt complete; K free
        if (kt + 1 < kt_end) {
            load_tile_async<T, D>(ks, k, p.k_row, c0 + TILE_N, T_len);
            cp_async_commit();
        }
        if (probs) write_map_tile(pt, probs, p.out_dtype, p.layout, T_len, r0, nr, c0, nc);
        if (rows) write_rows_tile(p, pt, rows, r0, nr, c0, nc);
        if (col_partial) colsum_tile(col_partial, pt, nr, c0, nc);
        if (pool_partial) pool_tile(p, pool, pool_partial, pt, row_bins, r0, nr, c0, nc);
    }
    // Square maps of causal attention hold zeros past the diagonal tile.
    for (int kt = kt_end; kt < n_key_tiles; kt++) {
        const int c0 = kt * TILE_N, nc = min(TILE_N, T_len - c0);
        if (probs && p.layout == AV_PROBS_SQUARE)
            write_map_tile(nullptr, probs, p.out_dtype, p.layout, T_len, r0, nr, c0, nc);
        if (rows) write_rows_tile(p, nullptr, rows, r0, nr, c0, nc);
    }
}

// Keys [0, processed_keys_end(qt)) are the ones query tile qt processed; its partials beyond were never written.
__device__ __forceinline__ int processed_keys_end(const attention_probs_params &p, int qt) {
    int n_key_tiles = (p.seq_len + TILE_N - 1) / TILE_N;
    return min(p.seq_len, (p.causal ? qt + 1 : n_key_tiles) * TILE_N);
}

// colsum[j] = the partials of key j over query tiles in ascending order; grid (ceil(T / THREADS), B * NS).
__global__ void colsum_finish_kernel(const attention_probs_params p) {
    int j = blockIdx.x * THREADS + threadIdx.x;
    if (j >= p.seq_len) return;
    int64_t slot = blockIdx.y;
    const float *partial = p.col_partial + slot * p.n_query_tiles * p.seq_len;
    float sum = 0.0f;
    for (int qt = 0; qt < p.n_query_tiles; qt++)
        if (j < processed_keys_end(p, qt)) sum += partial[(int64_t)qt * p.seq_len + j];
    if (p.colsum) p.colsum[slot * p.seq_len + j] = sum;
    if (p.colmean) p.colmean[slot * p.seq_len + j] = sum / (float)(p.causal ? p.seq_len - j : p.seq_len);
}

// pooled[I][J] = the partials of the query tiles bin I overlaps, ascending, over the rows in bin I;
// grid (ceil(NB^2 / THREADS), B * NS).
__global__ void pool_finish_kernel(const attention_probs_params p) {
    int64_t x = (int64_t)blockIdx.x * THREADS + threadIdx.x;
    int nb = p.n_bins, pool = min(p.pool, p.seq_len);
    if (x >= (int64_t)nb * nb) return;
    int I = (int)(x / nb), J = (int)(x % nb);
    int64_t slot = blockIdx.y;
    int64_t tile_stride = (int64_t)p.max_local_bins * nb;
    const float *partial = p.pool_partial + slot * p.n_query_tiles * tile_stride;
    int i0 = I * pool, i1 = min(p.seq_len, i0 + pool);
    float sum = 0.0f;
    for (int qt = i0 / TILE_M; qt <= (i1 - 1) / TILE_M; qt++)
        if (J * pool < processed_keys_end(p, qt))
            sum += partial[qt * tile_stride + (int64_t)(I - qt * TILE_M / pool) * nb + J];
    p.pooled[slot * nb * nb + x] = sum / (float)(i1 - i0);
}

template <typename T, int D>
__global__ void __launch_bounds__(THREADS) head_reduce_kernel(const attention_probs_params p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw);                         // (TILE_M, D + ROW_PAD)
    T *ks = qs + TILE_M * (D + ROW_PAD);                              // (TILE_N, D + ROW_PAD)
    float *pt = reinterpret_cast<float *>(ks + TILE_N * (D + ROW_PAD)); // (TILE_M, PT_STRIDE)

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int qt = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
    const int T_len = p.seq_len, r0 = qt * TILE_M, nr = min(TILE_M, T_len - r0);
    const int heads_per_group = p.n_heads / p.n_groups, h0 = g * heads_per_group;
    const int group_size = p.n_heads / p.n_kv_heads;
    const int n_key_tiles = (T_len + TILE_N - 1) / TILE_N;
    const int kt_end = p.causal ? qt + 1 : n_key_tiles;
    const int64_t out_size = p.out_dtype == AV_DTYPE_FP32 ? 4 : 2;
    const int64_t map_offset = ((int64_t)b * p.n_groups + g) * out_size *
                               (p.layout == AV_PROBS_PACKED_CAUSAL ? (int64_t)T_len * (T_len + 1) / 2
                                                                   : (int64_t)T_len * T_len);
    char *mean_map = p.head_mean ? static_cast<char *>(p.head_mean) + map_offset : nullptr;
    char *max_map = p.head_max ? static_cast<char *>(p.head_max) + map_offset : nullptr;

    for (int kt = 0; kt < n_key_tiles; kt++) {
        const int c0 = kt * TILE_N, nc = min(TILE_N, T_len - c0);
        if (kt >= kt_end) {
            if (p.layout == AV_PROBS_SQUARE) {
                if (mean_map) write_map_tile(nullptr, mean_map, p.out_dtype, p.layout, T_len, r0, nr, c0, nc);
                if (max_map) write_map_tile(nullptr, max_map, p.out_dtype, p.layout, T_len, r0, nr, c0, nc);
            }
            continue;
        }
        float sum[TILE_N / 8][4], mx[TILE_N / 8][4];
        int loaded_kv = -1;
        for (int h = h0; h < h0 + heads_per_group; h++) {
            const int kvh = h / group_size;
            __syncthreads(); // every warp is done with the previous head's Q (and K) tile
            load_tile_async<T, D>(qs, static_cast<const T *>(p.q) + b * p.q_batch + h * p.q_head, p.q_row, r0,
                                  T_len);
            if (kvh != loaded_kv)
                load_tile_async<T, D>(ks, static_cast<const T *>(p.k) + b * p.k_batch + kvh * p.k_head, p.k_row, c0,
                                      T_len);
            cp_async_commit();
            cp_async_wait<0>();
            __syncthreads();
            loaded_kv = kvh;
            uint32_t qa[D / 16][4];
            load_query_fragments<T, D>(qa, qs, warp, lane);
            float lse2[2];
            row_lse2(lse2, p.lse + ((int64_t)b * p.n_heads + h) * T_len, r0, T_len, warp, lane);
            float s[TILE_N / 8][4];
            score_fragments<T, D>(s, qa, ks, lane);
            probs_fragments(s, p, lse2, r0, c0, warp, lane);
#pragma unroll
            for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    sum[nb][e] = h == h0 ? s[nb][e] : sum[nb][e] + s[nb][e];
                    mx[nb][e] = h == h0 ? s[nb][e] : fmaxf(mx[nb][e], s[nb][e]);
                }
            }
        }
        if (mean_map) {
#pragma unroll
            for (int nb = 0; nb < TILE_N / 8; nb++)
#pragma unroll
                for (int e = 0; e < 4; e++) sum[nb][e] /= (float)heads_per_group;
            stage_fragments(pt, sum, warp, lane);
            __syncthreads();
            write_map_tile(pt, mean_map, p.out_dtype, p.layout, T_len, r0, nr, c0, nc);
            __syncthreads(); // pt is read before the max overwrites it
        }
        if (max_map) {
            stage_fragments(pt, mx, warp, lane);
            __syncthreads();
            write_map_tile(pt, max_map, p.out_dtype, p.layout, T_len, r0, nr, c0, nc);
        }
    }
}

template <typename T, int D> static cudaError_t launch_typed(const attention_probs_params *p, cudaStream_t stream) {
    constexpr int TILES = 2 * TILE_M * (D + ROW_PAD) * sizeof(T) + TILE_M * PT_STRIDE * sizeof(float);
    constexpr int PROBS_SMEM = TILES + TILE_M * (TILE_N + 1) * sizeof(float);
    cudaError_t err;
    bool per_head = p->probs || p->rows || p->col_partial || p->pool_partial;
    if (per_head) {
        err = cudaFuncSetAttribute(attention_probs_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   PROBS_SMEM);
        if (err != cudaSuccess) return err;
        // A request for rows alone runs only the query tiles that hold them.
        bool rows_only = !p->probs && !p->col_partial && !p->pool_partial;
        int tiles = rows_only ? (p->rows_end - 1) / TILE_M - p->rows_begin / TILE_M + 1 : p->n_query_tiles;
        attention_probs_kernel<T, D><<<dim3(tiles, p->n_slots, p->batch), THREADS, PROBS_SMEM, stream>>>(*p);
        if ((err = cudaGetLastError()) != cudaSuccess) return err;
        int slots = p->batch * p->n_slots;
        if (p->col_partial) {
            colsum_finish_kernel<<<dim3((p->seq_len + THREADS - 1) / THREADS, slots), THREADS, 0, stream>>>(*p);
            if ((err = cudaGetLastError()) != cudaSuccess) return err;
        }
        if (p->pool_partial) {
            int64_t cells = (int64_t)p->n_bins * p->n_bins;
            pool_finish_kernel<<<dim3((unsigned)((cells + THREADS - 1) / THREADS), slots), THREADS, 0, stream>>>(*p);
            if ((err = cudaGetLastError()) != cudaSuccess) return err;
        }
    }
    if (p->head_mean || p->head_max) {
        err = cudaFuncSetAttribute(head_reduce_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, TILES);
        if (err != cudaSuccess) return err;
        head_reduce_kernel<T, D><<<dim3(p->n_query_tiles, p->n_groups, p->batch), THREADS, TILES, stream>>>(*p);
        if ((err = cudaGetLastError()) != cudaSuccess) return err;
    }
    return cudaSuccess;
}

template <typename T> static cudaError_t launch_dim(const attention_probs_params *p, int head_dim,
                                                    cudaStream_t stream) {
    return head_dim == 64 ? launch_typed<T, 64>(p, stream) : launch_typed<T, 128>(p, stream);
}

} // namespace avk

cudaError_t attention_probs_launch(const attention_probs_params *p, av_dtype dtype, int head_dim,
                                   cudaStream_t stream) {
    return dtype == AV_DTYPE_FP16 ? avk::launch_dim<__half>(p, head_dim, stream)
                                  : avk::launch_dim<__nv_bfloat16>(p, head_dim, stream);
}
