// attention_probs: exact P = exp2(s * scale * log2 e - LSE * log2 e) tile by tile, and what is derived from it.
//
// Transliteration of av_attention_probs_tiled (host/attention_tiled.c), same tiles and loop order:
//   attention_probs_kernel   one block per (query tile, head slot, batch): key tiles in ascending order, K double
//                            buffered (tile kt + 1 loads while tile kt is used). Full maps and selected rows: each
//                            warp stages its 16 rows of the tile in the output dtype and writes whole row segments,
//                            128 contiguous bytes a store. Column sums need whole columns: the tile is staged as
//                            fp32 for the block. Pooling sums rows over key bins (from the fragments when the pool
//                            is 1, 2, 4 or a multiple of 8, else from that fp32 tile), then over query bins. Both
//                            reduce into per-tile partials in the workspace (never atomically);
//   colsum_finish_kernel,    the fixed-order second passes over the per-tile partials;
//   pool_finish_kernel
//   head_reduce_kernel       one block per (query tile, head group, batch): key tiles outer, heads inner in
//                            ascending order, mean and max accumulated in registers.
// O is the element type of probs, rows, head_mean and head_max: float, __half or __nv_bfloat16.
#include "attention_probs.cuh"
#include "attention_tiles.cuh"

namespace avk {

constexpr int PT_STRIDE = TILE_N + 4; // fp32 P tile row in shared memory; the pad spreads the fragment stores

template <typename O> struct out_type;
template <> struct out_type<float> {
    using pair = float2;
    __device__ __forceinline__ static float one(float x) { return x; }
    __device__ __forceinline__ static pair two(float a, float b) { return make_float2(a, b); }
};
template <> struct out_type<__half> {
    using pair = __half2;
    __device__ __forceinline__ static __half one(float x) { return __float2half_rn(x); }
    __device__ __forceinline__ static pair two(float a, float b) { return __floats2half2_rn(a, b); }
    __device__ __forceinline__ static pair join(__half lo, __half hi) { return __halves2half2(lo, hi); }
};
template <> struct out_type<__nv_bfloat16> {
    using pair = __nv_bfloat162;
    __device__ __forceinline__ static __nv_bfloat16 one(float x) { return __float2bfloat16_rn(x); }
    __device__ __forceinline__ static pair two(float a, float b) { return __floats2bfloat162_rn(a, b); }
    __device__ __forceinline__ static pair join(__nv_bfloat16 lo, __nv_bfloat16 hi) {
        return __halves2bfloat162(lo, hi);
    }
};

__device__ __forceinline__ int64_t map_entries(int layout, int T) {
    return layout == AV_PROBS_PACKED_CAUSAL ? (int64_t)T * (T + 1) / 2 : (int64_t)T * T;
}

// Each warp writes its own 16 rows of a tile: its fragments are staged in shared memory rounded to O, then every
// row segment goes out as 4-byte words, consecutive lanes on consecutive words, so that one store instruction
// covers 128 contiguous bytes. (Storing the fragments directly writes 16 bytes to each of 8 rows per instruction:
// on the H200 the L2 then spent its bandwidth on partial sectors and the dump ran at 11% of the copy bandwidth.)
constexpr int STAGE_STRIDE = TILE_N + 8; // elements; the pad puts the 8 fragment rows of a store in distinct banks

// This warp's fragments (16 rows x TILE_N keys) into its staging rows (16, STAGE_STRIDE).
template <typename O>
__device__ __forceinline__ void stage_warp_rows(O *stage, const float s[TILE_N / 8][4], int lane) {
    using X = out_type<O>;
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++)
#pragma unroll
        for (int half = 0; half < 2; half++) {
            O *dst = stage + (lane / 4 + half * 8) * STAGE_STRIDE + fragment_col(lane, nb, 0);
            *reinterpret_cast<typename X::pair *>(dst) = X::two(s[nb][2 * half], s[nb][2 * half + 1]);
        }
}

// Elements [0, n) of one staged row (zeros when src is NULL) to dst, n <= TILE_N. 2-byte elements go out in pairs;
// when dst is not 4-byte aligned (packed rows start at i (i + 1) / 2) the first element goes alone.
template <typename O> __device__ __forceinline__ void store_row_segment(O *dst, const O *src, int n, int lane) {
    using X = out_type<O>;
    const O zero = X::one(0.0f);
    if constexpr (sizeof(O) == 4) {
#pragma unroll
        for (int j = lane; j < TILE_N; j += 32)
            if (j < n) dst[j] = src ? src[j] : zero;
    } else {
        const int odd = (int)(reinterpret_cast<uintptr_t>(dst) / sizeof(O) % 2);
        if (odd && lane == 0) dst[0] = src ? src[0] : zero;
        const int j = odd + 2 * lane; // lane's pair: elements j, j + 1 (TILE_N / 2 = 32 pairs cover a row)
        if (j + 1 < n)
            *reinterpret_cast<typename X::pair *>(dst + j) = src ? X::join(src[j], src[j + 1]) : X::join(zero, zero);
        else if (j < n)
            dst[j] = src ? src[j] : zero;
    }
}

// This warp's rows of the tile at (r0, c0), staged (or zeros when stage is NULL), into one map (T, T) or packed:
// keys past the sequence are not stored, nor, packed, keys past the diagonal.
template <typename O>
__device__ __forceinline__ void store_map_rows(O *map, int layout, int T, const O *stage, int r0, int c0, int warp,
                                               int lane) {
    const bool packed = layout == AV_PROBS_PACKED_CAUSAL;
    for (int r = 0; r < 16; r++) {
        const int i = r0 + warp * 16 + r;
        if (i >= T) break;
        const int n = min(TILE_N, (packed ? i : T - 1) - c0 + 1);
        if (n <= 0) continue;
        O *row = map + (packed ? (int64_t)i * (i + 1) / 2 : (int64_t)i * T) + c0;
        store_row_segment(row, stage ? stage + r * STAGE_STRIDE : nullptr, n, lane);
    }
}

// This warp's rows that fall into [rows_begin, rows_end) into the rows output of one slot.
template <typename O>
__device__ __forceinline__ void store_selected_rows(O *rows, const attention_probs_params &p, const O *stage, int r0,
                                                    int c0, int warp, int lane) {
    const int n = min(TILE_N, p.seq_len - c0);
    for (int r = 0; r < 16; r++) {
        const int i = r0 + warp * 16 + r;
        if (i < p.rows_begin || i >= p.rows_end) continue;
        store_row_segment(rows + (int64_t)(i - p.rows_begin) * p.seq_len + c0,
                          stage ? stage + r * STAGE_STRIDE : nullptr, n, lane);
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

// Pooling of one tile into partial (max_local_bins, n_bins), in two halves: the tile's rows summed over the key bins
// it overlaps (row_bins (nr, n_local_keys)), then those summed over query bins.
__device__ __forceinline__ int local_key_bins(int pool, int c0, int nc) { return (c0 + nc - 1) / pool - c0 / pool + 1; }

// Row-bin sums from the staged fp32 tile: any pool.
__device__ void pool_row_bins_from_tile(int pool, const float *pt, float *row_bins, int nr, int c0, int nc) {
    const int kb0 = c0 / pool, n_local_keys = local_key_bins(pool, c0, nc);
    for (int x = threadIdx.x; x < nr * n_local_keys; x += THREADS) {
        int r = x / n_local_keys, lk = x % n_local_keys;
        int j0 = max(c0, (kb0 + lk) * pool), j1 = min(c0 + nc, (kb0 + lk + 1) * pool);
        float sum = 0.0f;
        for (int j = j0; j < j1; j++) sum += pt[r * PT_STRIDE + (j - c0)];
        row_bins[r * n_local_keys + lk] = sum;
    }
}

// Row-bin sums straight from this warp's fragments, no staging, when no bin splits a fragment pair unevenly: pool a
// multiple of 8 (every 8-key block lies in one bin: pair sums, the quad's sum, then blocks added until their bin
// ends) or 1, 2 or 4 (every bin lies in one block: the pair itself, or the sum of two lanes' pairs).
__host__ __device__ __forceinline__ bool pool_fits_fragments(int pool) {
    return pool % 8 == 0 || pool == 1 || pool == 2 || pool == 4;
}

__device__ __forceinline__ void pool_row_bins_from_fragments(int pool, const float s[TILE_N / 8][4], float *row_bins,
                                                             int c0, int nc, int warp, int lane) {
    const int kb0 = c0 / pool, n_local_keys = local_key_bins(pool, c0, nc);
#pragma unroll
    for (int half = 0; half < 2; half++) {
        float *bins = row_bins + fragment_row(warp, lane, 2 * half) * n_local_keys;
        float run = 0.0f;
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++) {
            const float a = s[nb][2 * half], b = s[nb][2 * half + 1];
            const int key = c0 + fragment_col(lane, nb, 0); // this lane's pair: keys key, key + 1
            if (pool == 1) {
                if (key - c0 < nc) bins[key - c0] = a;
                if (key + 1 - c0 < nc) bins[key + 1 - c0] = b;
            } else if (pool == 2) {
                if (key - c0 < nc) bins[(key - c0) / 2] = a + b;
            } else if (pool == 4) {
                float x = a + b;
                x += __shfl_xor_sync(0xffffffffu, x, 1);
                if (lane % 2 == 0 && key - c0 < nc) bins[(key - c0) / 4] = x;
            } else {
                float x = a + b;
                x += __shfl_xor_sync(0xffffffffu, x, 1);
                x += __shfl_xor_sync(0xffffffffu, x, 2);
                run += x;
                const int block = c0 + nb * 8, lk = block / pool - kb0;
                if (nb == TILE_N / 8 - 1 || (block + 8) % pool == 0) {
                    if (lane % 4 == 0 && lk < n_local_keys) bins[lk] = run;
                    run = 0.0f;
                }
            }
        }
    }
}

// Whether the block stages the fp32 P tile: for column sums, and for pooling that cannot use the fragments.
__host__ __device__ __forceinline__ bool stages_tile(const attention_probs_params &p) {
    return p.col_partial || (p.pool_partial && !pool_fits_fragments(p.pool < p.seq_len ? p.pool : p.seq_len));
}

// The row-bin sums over query bins into partial: a key bin that starts in this key tile is written, an older one is
// added to (only this block touches these partials, and key tiles come in order, so the read-modify-write is
// deterministic).
__device__ void pool_query_bins(const attention_probs_params &p, int pool, float *partial, const float *row_bins,
                                int r0, int nr, int c0, int nc) {
    const int kb0 = c0 / pool, n_local_keys = local_key_bins(pool, c0, nc);
    const int r1 = r0 + nr, qb0 = r0 / pool, n_local_queries = (r1 - 1) / pool - qb0 + 1;
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

// P of this warp's fragments: exp2(s * scale_log2 - lse2). MASKED (tiles on the causal diagonal or past the end of
// the sequence): 0 where masked or past the sequence; the other tiles skip that index arithmetic.
template <bool MASKED>
__device__ __forceinline__ void probs_fragments(float s[TILE_N / 8][4], const attention_probs_params &p,
                                                const float lse2[2], int r0, int c0, int warp, int lane) {
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float x = exp2_ftz(__fmul_rn(s[nb][e], p.scale_log2) - lse2[e / 2]);
            if (MASKED) {
                int row = r0 + fragment_row(warp, lane, e), key = c0 + fragment_col(lane, nb, e);
                if (key >= p.seq_len || (p.causal && key > row)) x = 0.0f;
            }
            s[nb][e] = x;
        }
    }
}

__device__ __forceinline__ void exact_probs(float s[TILE_N / 8][4], const attention_probs_params &p,
                                            const float lse2[2], int r0, int c0, int warp, int lane) {
    bool masked = c0 + TILE_N > p.seq_len || (p.causal && c0 + TILE_N - 1 > r0);
    if (masked) probs_fragments<true>(s, p, lse2, r0, c0, warp, lane);
    else probs_fragments<false>(s, p, lse2, r0, c0, warp, lane);
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

// Shared memory of attention_probs_kernel, in order: Q and two K tiles; the warps' staging rows when it writes full
// maps or rows; the fp32 P tile when it is staged for the block (column sums, or pooling that cannot use the
// fragments); the pooling row bins. Only what the request needs, so that small requests keep 3 blocks an SM.
struct probs_smem {
    int stage, tile, bins, bytes; // byte offsets of the optional parts, and the total
};
template <typename T, int D, typename O>
__host__ __device__ constexpr probs_smem probs_smem_layout(bool write, bool staged, bool pooled) {
    probs_smem l{};
    int at = (TILE_M + 2 * TILE_N) * (D + ROW_PAD) * (int)sizeof(T);
    l.stage = at;
    at += write ? WARPS * 16 * STAGE_STRIDE * (int)sizeof(O) : 0;
    l.tile = at;
    at += staged ? TILE_M * PT_STRIDE * (int)sizeof(float) : 0;
    l.bins = at;
    at += pooled ? TILE_M * (TILE_N + 1) * (int)sizeof(float) : 0;
    l.bytes = at;
    return l;
}

template <typename T, int D, typename O>
__global__ void __launch_bounds__(THREADS, 3) attention_probs_kernel(const attention_probs_params p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw);                                // (TILE_M, D + ROW_PAD)
    T *ks = qs + TILE_M * (D + ROW_PAD);                                     // 2 x (TILE_N, D + ROW_PAD)

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    // A request for rows alone runs only the query tiles that hold them. Causal tiles near the end of the sequence
    // have the most key tiles: start them first.
    const bool rows_only = p.rows && !p.probs && !p.col_partial && !p.pool_partial;
    const int qt = (rows_only ? p.rows_begin / TILE_M : 0) +
                   (p.causal ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x);
    const int slot = blockIdx.y, b = blockIdx.z, h = p.head_begin + slot;
    const int kvh = h / (p.n_heads / p.n_kv_heads);
    const int T_len = p.seq_len, r0 = qt * TILE_M, nr = min(TILE_M, T_len - r0);
    const int64_t slot_index = (int64_t)b * p.n_slots + slot;
    const int n_key_tiles = (T_len + TILE_N - 1) / TILE_N;
    const int kt_end = p.causal ? qt + 1 : n_key_tiles;
    const int pool = min(p.pool, T_len);
    const bool pool_from_fragments = pool_fits_fragments(pool), staged = stages_tile(p);
    const probs_smem layout = probs_smem_layout<T, D, O>(p.probs || p.rows, staged, p.pool_partial);
    O *stage = reinterpret_cast<O *>(smem_raw + layout.stage) + warp * 16 * STAGE_STRIDE; // (16, STAGE_STRIDE)
    float *pt = reinterpret_cast<float *>(smem_raw + layout.tile);                      // (TILE_M, PT_STRIDE)
    float *row_bins = reinterpret_cast<float *>(smem_raw + layout.bins);                // (TILE_M, TILE_N + 1)

    const T *q = static_cast<const T *>(p.q) + b * p.q_batch + h * p.q_head;
    const T *k = static_cast<const T *>(p.k) + b * p.k_batch + kvh * p.k_head;
    O *probs = p.probs ? static_cast<O *>(p.probs) + slot_index * map_entries(p.layout, T_len) : nullptr;
    O *rows = p.rows ? static_cast<O *>(p.rows) + slot_index * (p.rows_end - p.rows_begin) * T_len : nullptr;
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
        __syncthreads(); // K of tile kt is in; every warp is done with tile kt - 1 (its K buffer, pt, row_bins)
        if (kt + 1 < kt_end) {
            load_tile_async<T, D>(ks + ((kt + 1) % 2) * TILE_N * (D + ROW_PAD), k, p.k_row, c0 + TILE_N, T_len);
            cp_async_commit();
        }
        if (kt == 0) load_query_fragments<T, D>(qa, qs, warp, lane);
        float s[TILE_N / 8][4];
        score_fragments<T, D>(s, qa, ks + (kt % 2) * TILE_N * (D + ROW_PAD), lane);
        exact_probs(s, p, lse2, r0, c0, warp, lane);
        if (probs || rows) {
            stage_warp_rows(stage, s, lane); // read back by the next tile only after the barrier at its top
            __syncwarp();
            if (probs) store_map_rows(probs, p.layout, T_len, stage, r0, c0, warp, lane);
            if (rows) store_selected_rows(rows, p, stage, r0, c0, warp, lane);
        }
        if (staged) {
            stage_fragments(pt, s, warp, lane);
            __syncthreads(); // pt complete
            if (col_partial) colsum_tile(col_partial, pt, nr, c0, nc);
        }
        if (pool_partial) {
            if (pool_from_fragments) pool_row_bins_from_fragments(pool, s, row_bins, c0, nc, warp, lane);
            else pool_row_bins_from_tile(pool, pt, row_bins, nr, c0, nc);
            __syncthreads(); // row_bins complete
            pool_query_bins(p, pool, pool_partial, row_bins, r0, nr, c0, nc);
        }
    }
    // Square maps and rows of causal attention hold zeros past the diagonal tile.
    for (int kt = kt_end; kt < n_key_tiles; kt++) {
        if (probs && p.layout == AV_PROBS_SQUARE)
            store_map_rows<O>(probs, p.layout, T_len, nullptr, r0, kt * TILE_N, warp, lane);
        if (rows) store_selected_rows<O>(rows, p, nullptr, r0, kt * TILE_N, warp, lane);
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

template <typename T, int D, typename O>
__global__ void __launch_bounds__(THREADS) head_reduce_kernel(const attention_probs_params p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw); // (TILE_M, D + ROW_PAD)
    T *ks = qs + TILE_M * (D + ROW_PAD);      // (TILE_N, D + ROW_PAD)
    O *stages = reinterpret_cast<O *>(ks + TILE_N * (D + ROW_PAD)); // (WARPS, 16, STAGE_STRIDE)

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    O *stage = stages + warp * 16 * STAGE_STRIDE;
    const int g = blockIdx.y, b = blockIdx.z;
    const int qt = p.causal ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int T_len = p.seq_len, r0 = qt * TILE_M;
    const int heads_per_group = p.n_heads / p.n_groups, h0 = g * heads_per_group;
    const int group_size = p.n_heads / p.n_kv_heads;
    const int n_key_tiles = (T_len + TILE_N - 1) / TILE_N;
    const int kt_end = p.causal ? qt + 1 : n_key_tiles;
    const int64_t map_offset = ((int64_t)b * p.n_groups + g) * map_entries(p.layout, T_len);
    O *mean_map = p.head_mean ? static_cast<O *>(p.head_mean) + map_offset : nullptr;
    O *max_map = p.head_max ? static_cast<O *>(p.head_max) + map_offset : nullptr;

    for (int kt = 0; kt < kt_end; kt++) {
        const int c0 = kt * TILE_N;
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
            exact_probs(s, p, lse2, r0, c0, warp, lane);
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
            stage_warp_rows(stage, sum, lane);
            __syncwarp();
            store_map_rows(mean_map, p.layout, T_len, stage, r0, c0, warp, lane);
            __syncwarp(); // the max overwrites the staged mean
        }
        if (max_map) {
            stage_warp_rows(stage, mx, lane);
            __syncwarp();
            store_map_rows(max_map, p.layout, T_len, stage, r0, c0, warp, lane);
        }
    }
    if (p.layout == AV_PROBS_SQUARE) {
        for (int kt = kt_end; kt < n_key_tiles; kt++) {
            if (mean_map) store_map_rows<O>(mean_map, p.layout, T_len, nullptr, r0, kt * TILE_N, warp, lane);
            if (max_map) store_map_rows<O>(max_map, p.layout, T_len, nullptr, r0, kt * TILE_N, warp, lane);
        }
    }
}

template <typename T, int D, typename O>
static cudaError_t launch_typed(const attention_probs_params *p, cudaStream_t stream) {
    constexpr int HEAD_REDUCE_SMEM =
        (TILE_M + TILE_N) * (D + ROW_PAD) * sizeof(T) + WARPS * 16 * STAGE_STRIDE * sizeof(O);
    cudaError_t err;
    bool per_head = p->probs || p->rows || p->col_partial || p->pool_partial;
    if (per_head) {
        err = cudaFuncSetAttribute(attention_probs_kernel<T, D, O>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   probs_smem_layout<T, D, O>(true, true, true).bytes);
        if (err != cudaSuccess) return err;
        int smem = probs_smem_layout<T, D, O>(p->probs || p->rows, stages_tile(*p), p->pool_partial).bytes;
        // A request for rows alone runs only the query tiles that hold them.
        bool rows_only = !p->probs && !p->col_partial && !p->pool_partial;
        int tiles = rows_only ? (p->rows_end - 1) / TILE_M - p->rows_begin / TILE_M + 1 : p->n_query_tiles;
        attention_probs_kernel<T, D, O><<<dim3(tiles, p->n_slots, p->batch), THREADS, smem, stream>>>(*p);
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
        err = cudaFuncSetAttribute(head_reduce_kernel<T, D, O>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   HEAD_REDUCE_SMEM);
        if (err != cudaSuccess) return err;
        dim3 grid(p->n_query_tiles, p->n_groups, p->batch);
        head_reduce_kernel<T, D, O><<<grid, THREADS, HEAD_REDUCE_SMEM, stream>>>(*p);
        if ((err = cudaGetLastError()) != cudaSuccess) return err;
    }
    return cudaSuccess;
}

template <typename T, int D> static cudaError_t launch_out(const attention_probs_params *p, cudaStream_t stream) {
    switch (p->out_dtype) {
    case AV_DTYPE_FP16: return launch_typed<T, D, __half>(p, stream);
    case AV_DTYPE_BF16: return launch_typed<T, D, __nv_bfloat16>(p, stream);
    default: return launch_typed<T, D, float>(p, stream);
    }
}

template <typename T> static cudaError_t launch_dim(const attention_probs_params *p, int head_dim,
                                                    cudaStream_t stream) {
    return head_dim == 64 ? launch_out<T, 64>(p, stream) : launch_out<T, 128>(p, stream);
}

} // namespace avk

cudaError_t attention_probs_launch(const attention_probs_params *p, av_dtype dtype, int head_dim,
                                   cudaStream_t stream) {
    return dtype == AV_DTYPE_FP16 ? avk::launch_dim<__half>(p, head_dim, stream)
                                  : avk::launch_dim<__nv_bfloat16>(p, head_dim, stream);
}
