// attention_probs: exact P = exp2(s * scale * log2 e - LSE * log2 e) tile by tile, and what is derived from it.
//
// Transliteration of av_attention_probs_tiled (host/attention_tiled.c), same tiles and loop order:
//   attention_probs_kernel   one block per (query tile, head slot, batch) (or per chunk of the tile's keys:
//                            key_chunks_for), heaviest causal tiles first (heavy_first_item),
//                            compiled for three kinds of request (probs_pass); the maps copy's query tile is two of
//                            the mirror's, 128 rows as two 64-row blocks (probs_row_blocks), each with its own
//                            diagonal, row ends and zeros, as the mirror's two tiles would have them: key tiles in
//                            ascending order, K double buffered (tile kt + 1 loads while tile kt is used); S of a
//                            tile by mma.sync, or (the pooling copy at D = 64 on sm_90a, scores_by_wgmma) one
//                            warpgroup MMA a k-step (tile_scores). Full maps and selected rows: each
//                            warp stages its 16 rows of the tile in the output dtype, each shifted to the 16-byte
//                            grid of its destination, and writes them 16 bytes a lane (a row's chunk split between
//                            two key tiles is completed from a carry and written whole by the second); causal
//                            square maps get their zeros past the diagonal row by row. Column sums need whole
//                            columns: the tile is staged as fp32 for the block. Pooling sums rows over key bins (from
//                            the fragments when the pool is a multiple of 8, else from that fp32 tile), then over
//                            query bins. Both reduce into per-tile partials in the workspace (never
//                            atomically), except pooling with a pool that divides the tile size: every bin then lies
//                            inside one tile, is summed in registers and gets its mean in place (pool_in_place). A
//                            pool that spans whole tiles is summed over its key tiles in registers, one partial a
//                            bin and query tile (pool_key_tiles);
//   colsum_finish_kernel,    the fixed-order second passes over the per-tile partials;
//   pool_finish_kernel
//   head_reduce_kernel       one block per (query tile, head group, batch): key tiles outer, heads inner in
//                            ascending order, mean and max accumulated in registers; Q and K double buffered.
// O is the element type of probs, rows, head_mean and head_max: float, __half or __nv_bfloat16.
#include "attention_probs.cuh"
#include "attention_tiles.cuh"

namespace avk {

constexpr int PT_STRIDE = TILE_N + 4; // fp32 P tile row in shared memory; the pad spreads the fragment stores

template <typename O> struct out_type;
template <> struct out_type<float> {
    __device__ __forceinline__ static float one(float x) { return x; }
};
template <> struct out_type<__half> {
    using pair = __half2;
    __device__ __forceinline__ static __half one(float x) { return __float2half_rn(x); }
    __device__ __forceinline__ static pair two(float a, float b) { return __floats2half2_rn(a, b); }
};
template <> struct out_type<__nv_bfloat16> {
    using pair = __nv_bfloat162;
    __device__ __forceinline__ static __nv_bfloat16 one(float x) { return __float2bfloat16_rn(x); }
    __device__ __forceinline__ static pair two(float a, float b) { return __floats2bfloat162_rn(a, b); }
};

__device__ __forceinline__ int64_t map_entries(int layout, int T) {
    return layout == AV_PROBS_PACKED_CAUSAL ? (int64_t)T * (T + 1) / 2 : (int64_t)T * T;
}

// Each warp writes its own 16 rows of a tile with 16-byte stores. A row segment starts anywhere (packed rows at
// i (i + 1) / 2, square ones at i T), so the warp stages each row shifted by (about) the distance from the 16-byte
// boundary before its start: staged chunk k is then global chunk k of that row. Whole chunks go out as one 16-byte
// store each (8 or 16 lanes a row, so a store instruction covers whole rows), the at most two partial chunks of a row
// (its ends) element by element, one lane each. 2-byte elements are staged in aligned pairs, shifted by an even
// number of elements; an odd shift's last element is a funnel shift of neighbouring words when the chunk is read.
// (Storing the fragments directly writes 16 bytes to each of 8 rows per instruction: on the H200 the L2 then spent
// its bandwidth on partial sectors and the dump ran at 11% of the copy bandwidth; 4-byte row stores then left it
// issue-bound on per-row address arithmetic.)
constexpr int STAGE_STRIDE = TILE_N + 8; // elements: a 16-byte multiple with room for the shift (< 8 elements)

// Where this warp's 16 rows of one key tile go: row r (0..15) starts r step + r (r - 1) / 2 growth bytes after first
// and takes min(TILE_N, n0 + r n_growth) elements when r_lo <= r < r_hi, none otherwise. A packed row i holds i + 1
// elements, so packed rows grow by one element each; square maps and rows outputs do not. Offsets within the 16 rows
// fit in an int: seq_len <= 2^22 (av_attention_check_shape).
// A block's writer calls for one output come for its key tiles in ascending order (all of a query tile's, or a chunk
// of them: key_split_of): `continued` when its previous call wrote the rows' previous segments (not the block's first
// tile), `goes_on` when its next call writes their next ones (not its last). At a chunk's edges neither holds: the
// partial 16-byte chunk that two blocks' segments share is written element by element, each block its own elements.
struct warp_rows {
    char *first; // row 0 at key c0; before the output when row 0 is not written (rows outputs)
    int step, growth, n0, n_growth, r_lo, r_hi;
    bool continued, goes_on;
};

template <typename O>
__device__ __forceinline__ warp_rows map_warp_rows(O *map, int layout, int T, int i0, int c0, bool first_tile,
                                                   bool last_tile) {
    const bool packed = layout == AV_PROBS_PACKED_CAUSAL;
    const int64_t row0 = packed ? (int64_t)i0 * (i0 + 1) / 2 : (int64_t)i0 * T;
    return {reinterpret_cast<char *>(map + row0 + c0), (packed ? i0 + 1 : T) * (int)sizeof(O),
            packed ? (int)sizeof(O) : 0, (packed ? i0 : T - 1) - c0 + 1, packed ? 1 : 0, 0, min(16, T - i0),
            !first_tile, !last_tile};
}

// Rows [rows_begin, rows_end) of (rows_end - rows_begin, T).
template <typename O>
__device__ __forceinline__ warp_rows selected_warp_rows(O *rows, const attention_probs_params &p, int i0, int c0,
                                                        bool first_tile, bool last_tile) {
    return {reinterpret_cast<char *>(rows + c0) + (int64_t)(i0 - p.rows_begin) * p.seq_len * (int64_t)sizeof(O),
            p.seq_len * (int)sizeof(O), 0, p.seq_len - c0, 0, max(0, p.rows_begin - i0), min(16, p.rows_end - i0),
            !first_tile, !last_tile};
}

// Row r's place: its offset in bytes from w.first and its number of elements. Lane l works it out for row l % 16
// once a tile (row_info_of_lane); the lanes that handle row r take it from lane r (row_info_of).
struct row_info {
    int offset, n;
};
__device__ __forceinline__ row_info row_info_of_lane(const warp_rows &w, int lane) {
    const int r = lane % 16;
    return {r * w.step + r * (r - 1) / 2 * w.growth,
            r >= w.r_lo && r < w.r_hi ? min(TILE_N, w.n0 + r * w.n_growth) : 0};
}
__device__ __forceinline__ row_info row_info_of(const row_info &mine, int r) {
    return {__shfl_sync(0xffffffffu, mine.offset, r), __shfl_sync(0xffffffffu, mine.n, r)};
}
// Elements between the 16-byte boundary at or before the row's start and its start.
template <typename O> __device__ __forceinline__ int row_shift(const warp_rows &w, const row_info &row) {
    return (int)((reinterpret_cast<uintptr_t>(w.first) + row.offset) % 16 / sizeof(O));
}
// The part of the shift the staging applies: all of it for 4-byte elements, its even part for 2-byte ones.
template <typename O> __device__ __forceinline__ int staged_shift(int shift) {
    return sizeof(O) == 4 ? shift : shift & ~1;
}

// This warp's fragments (16 rows x TILE_N keys), rounded to O, into its staging rows (16, STAGE_STRIDE), each row
// shifted by its staged_shift.
template <typename O>
__device__ __forceinline__ void stage_warp_rows(O *stage, const float s[TILE_N / 8][4], const warp_rows &w,
                                                const row_info &mine, int lane) {
    using X = out_type<O>;
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int r = lane / 4 + half * 8;
        O *row = stage + r * STAGE_STRIDE + staged_shift<O>(row_shift<O>(w, row_info_of(mine, r)));
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++) {
            O *dst = row + fragment_col(lane, nb, 0);
            const float a = s[nb][2 * half], b = s[nb][2 * half + 1];
            if constexpr (sizeof(O) == 2) {
                *reinterpret_cast<typename X::pair *>(dst) = X::two(a, b);
            } else { // an odd shift leaves the pair only 4-byte aligned
                dst[0] = a;
                dst[1] = b;
            }
        }
    }
}

// High word of (hi:lo) << bits, bits 0 or 16.
__device__ __forceinline__ uint32_t funnel_left(uint32_t lo, uint32_t hi, int bits) {
    return (uint32_t)((((uint64_t)hi << 32) | lo) << bits >> 32);
}

// Global chunk k of a row staged at row with the given shift: 16 bytes, completed by a funnel shift of the word
// before them when the shift is odd.
template <typename O> __device__ __forceinline__ uint4 staged_chunk(const O *row, int k, int shift) {
    constexpr int CHUNK = 16 / (int)sizeof(O);
    const uint4 *at = reinterpret_cast<const uint4 *>(row + CHUNK * k);
    if constexpr (sizeof(O) == 4) {
        return *at;
    } else {
        const uint4 v = *at;
        const uint32_t before = reinterpret_cast<const uint32_t *>(at)[-1]; // shared memory in front is ours too
        const int bits = 16 * (shift - staged_shift<O>(shift));
        return make_uint4(funnel_left(before, v.x, bits), funnel_left(v.x, v.y, bits), funnel_left(v.y, v.z, bits),
                          funnel_left(v.z, v.w, bits));
    }
}

// The whole 16-byte chunks of the staged rows: lane l takes chunk l % LANES_PER_ROW of rows l / LANES_PER_ROW + 0,
// ROWS_PER_ROUND, ... Streaming stores (evict first), here and for the zeros: P is written once and not read back,
// while the Q and K tiles that every block re-reads should stay in L2.
template <typename O>
__device__ __forceinline__ void store_whole_chunks(const O *stage, const warp_rows &w, const row_info &mine,
                                                   int lane) {
    constexpr int CHUNK = 16 / (int)sizeof(O), LANES_PER_ROW = TILE_N / CHUNK, ROWS_PER_ROUND = 32 / LANES_PER_ROW;
    const int k = lane % LANES_PER_ROW, lane_row = lane / LANES_PER_ROW;
    const O *lane_stage = stage + lane_row * STAGE_STRIDE; // rounds add constants to it and to lane_first
    char *lane_first = w.first + 16 * k;
#pragma unroll
    for (int round = 0; round < 16; round += ROWS_PER_ROUND) {
        const row_info row = row_info_of(mine, round + lane_row);
        const int shift = row_shift<O>(w, row);
        if (CHUNK * k >= shift && CHUNK * k + CHUNK <= shift + row.n)
            __stcs(reinterpret_cast<uint4 *>(lane_first + (row.offset - shift * (int)sizeof(O))),
                   staged_chunk(lane_stage + round * STAGE_STRIDE, k, shift));
    }
}

// Chunk positions [0, from) of a, the others of b: one byte permutation a word, its selector read off a mask whose
// nibble k is set when byte k comes from b.
template <typename O> __device__ __forceinline__ uint4 splice_chunk(const uint4 &a, const uint4 &b, int from) {
    const uint64_t from_b = ~0ull << (4 * from * (int)sizeof(O));
    auto word = [from_b](uint32_t x, uint32_t y, int e) {
        return __byte_perm(x, y, 0x3210u | (0x4444u & (uint32_t)(from_b >> (16 * e))));
    };
    return make_uint4(word(a.x, b.x, 0), word(a.y, b.y, 1), word(a.z, b.z, 2), word(a.w, b.w, 3));
}

// Positions [lo, hi) of chunk v to dst (the chunk's global address), element by element.
template <typename O> __device__ __forceinline__ void store_chunk_elements(char *dst, const uint4 &v, int lo, int hi) {
    constexpr int CHUNK = 16 / (int)sizeof(O);
    const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int e = 0; e < CHUNK; e++) {
        if (e < lo || e >= hi) continue;
        if constexpr (sizeof(O) == 4) *reinterpret_cast<uint32_t *>(dst + 4 * e) = words[e];
        else *reinterpret_cast<uint16_t *>(dst + 2 * e) = (uint16_t)(words[e / 2] >> (16 * (e % 2)));
    }
}

// The partial chunks at the ends of the row segments: lane 2 r takes the first chunk of row r when the segment does
// not start on a 16-byte boundary, lane 2 r + 1 its last chunk when it does not end on one (unless that is the first
// chunk again). Key tiles are whole 16-byte multiples, so a row keeps its shift from tile to tile and a segment that
// the next tile continues ends mid-chunk exactly where the next one starts: lane 2 r + 1 keeps that chunk in
// carry[r], and the next call's lane 2 r completes it (carried: what lane 2 r read from carry[r] before this call's
// stores) and writes it whole. Element-wise stores are left for the two ends of each row (they had been two a row
// segment: half of the L2 write requests of a packed fp16 dump, each of 2 bytes).
template <typename O>
__device__ __forceinline__ void store_edge_chunks(const O *stage, uint4 *carry, const uint4 &carried,
                                                  const warp_rows &w, const row_info &mine, int lane) {
    constexpr int CHUNK = 16 / (int)sizeof(O);
    const int r = lane / 2, last = lane % 2;
    const row_info row = row_info_of(mine, r);
    const int shift = row_shift<O>(w, row), end = shift + row.n; // chunk positions [shift, end) are the row's
    const int c = last ? (end - 1) / CHUNK : 0;
    const bool partial = row.n > 0 && (last ? end % CHUNK != 0 && !(c == 0 && shift != 0) : shift != 0);
    if (!partial) return;
    const uint4 v = staged_chunk(stage + r * STAGE_STRIDE, c, shift);
    char *dst = w.first + (row.offset + 16 * c - shift * (int)sizeof(O));
    if (last) {
        if (w.goes_on && w.n0 + r * w.n_growth > TILE_N) carry[r] = v;
        else store_chunk_elements<O>(dst, v, 0, end % CHUNK);
    } else {
        const int lo = w.continued ? 0 : shift, hi = min(end, CHUNK);
        const uint4 whole = w.continued ? splice_chunk<O>(carried, v, shift) : v;
        if (lo == 0 && hi == CHUNK) __stcs(reinterpret_cast<uint4 *>(dst), whole);
        else store_chunk_elements<O>(dst, whole, lo, hi);
    }
}

// This warp's 16 rows of the tile (fragments s) to where w says; carry (16) holds row ends between calls for one
// output. Every warp of the block calls it alike.
template <typename O>
__device__ __forceinline__ void write_warp_rows(O *stage, uint4 *carry, const float s[TILE_N / 8][4],
                                                const warp_rows &w, int lane) {
    const row_info mine = row_info_of_lane(w, lane);
    __syncwarp(); // the previous write's reads of the staging rows are done, its carries are in
    const uint4 carried = w.continued ? carry[lane / 2] : make_uint4(0, 0, 0, 0); // read before any is replaced
    stage_warp_rows(stage, s, w, mine, lane);
    __syncwarp();
    store_whole_chunks(stage, w, mine, lane);
    store_edge_chunks(stage, carry, carried, w, mine, lane);
}

// Zeros in elements [0, n) of one row: 16 bytes a store from the first 16-byte boundary, single elements around.
template <typename O> __device__ __forceinline__ void zero_row(O *dst, int64_t n, int lane) {
    constexpr int PER_VECTOR = 16 / (int)sizeof(O);
    const int64_t to_boundary = (int64_t)((16 - reinterpret_cast<uintptr_t>(dst) % 16) % 16 / sizeof(O));
    const int64_t head = n < to_boundary ? n : to_boundary;
    const int64_t n_vectors = (n - head) / PER_VECTOR, tail = head + n_vectors * PER_VECTOR;
    uint4 *body = reinterpret_cast<uint4 *>(dst + head);
    if (lane < head) dst[lane] = out_type<O>::one(0.0f);
    for (int64_t v = lane; v < n_vectors; v += 32) __stcs(body + v, make_uint4(0, 0, 0, 0));
    if (tail + lane < n) dst[tail + lane] = out_type<O>::one(0.0f);
}

// Zeros in keys [c0, T) of this warp's rows [first, end) of a row-major (.., T) output whose row i starts at
// out + (i - out_row0) T: square maps and rows of causal attention past the diagonal tile, whole rows at a time.
template <typename O>
__device__ void zero_rows_from(O *out, int out_row0, int first, int end, int c0, int T, int lane) {
    for (int i = first; i < end; i++) zero_row(out + (int64_t)(i - out_row0) * T + c0, T - c0, lane);
}

// partial[c0 + c] = sum of the tile's column c over its rows, ascending.
// x[0] + x[stride] + ... (n terms) in four interleaved chains added as (c0 + c1) + (c2 + c3): the shared loads are
// independent and overlap, where one chain waits for each load in turn (64 of them for a column of a tile).
__device__ __forceinline__ float strided_sum(const float *x, int n, int stride) {
    float chain[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int i = 0;
    for (; i + 4 <= n; i += 4)
#pragma unroll
        for (int k = 0; k < 4; k++) chain[k] += x[(i + k) * stride];
#pragma unroll
    for (int k = 0; k < 3; k++) // constant indices: an index known only at run time put chain in local memory
        if (i + k < n) chain[k] += x[(i + k) * stride];
    return (chain[0] + chain[1]) + (chain[2] + chain[3]);
}

__device__ void colsum_tile(float *partial, const float *pt, int nr, int c0, int nc) {
    for (int c = threadIdx.x; c < nc; c += THREADS) partial[c0 + c] = strided_sum(pt + c, nr, PT_STRIDE);
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
        row_bins[r * n_local_keys + lk] = strided_sum(pt + r * PT_STRIDE + (j0 - c0), j1 - j0, 1);
    }
}

// Row-bin sums straight from this warp's fragments, no staging, when the pool is a multiple of 8: every 8-key block
// lies in one bin, so each lane adds its pairs until the bin ends, then the quad adds its four sums. (Pools of 1, 2
// and 4 divide the tile size and are pooled in place, pool_in_place.)
__host__ __device__ __forceinline__ bool pool_fits_fragments(int pool) { return pool % 8 == 0; }

__device__ __forceinline__ void pool_row_bins_from_fragments(int pool, const float s[TILE_N / 8][4], float *row_bins,
                                                             int c0, int nc, int warp, int lane) {
    const int kb0 = c0 / pool, n_local_keys = local_key_bins(pool, c0, nc);
#pragma unroll
    for (int half = 0; half < 2; half++) {
        float *bins = row_bins + fragment_row(warp, lane, 2 * half) * n_local_keys;
        float run = 0.0f;
        // The current bin lk ends at key bin_end, both advanced by counting (a division and a remainder by the pool
        // for each 8-key block had been most of this function's instructions).
        int lk = 0, bin_end = (kb0 + 1) * pool;
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++) {
            run += s[nb][2 * half] + s[nb][2 * half + 1];
            if (nb == TILE_N / 8 - 1 || c0 + nb * 8 + 8 == bin_end) {
                run += __shfl_xor_sync(0xffffffffu, run, 1);
                run += __shfl_xor_sync(0xffffffffu, run, 2);
                if (lane % 4 == 0 && lk < n_local_keys) bins[lk] = run;
                run = 0.0f;
                lk++;
                bin_end += pool;
            }
        }
    }
}

// Pools that are multiples of the tile sizes: summed over whole key tiles in registers when pooling is all a request
// asks for (pool_key_tiles).
__host__ __device__ __forceinline__ bool pool_spans_tiles(int pool) {
    return pool % TILE_M == 0 && pool % TILE_N == 0 && pool > TILE_N;
}

// Whether the block stages the fp32 P tile: for column sums, and for pooling into partials that cannot use the
// fragments.
__host__ __device__ __forceinline__ bool stages_tile(const attention_probs_params &p) {
    return p.col_partial || (p.pool_partial && !pool_fits_fragments(p.pool < p.seq_len ? p.pool : p.seq_len));
}

// Threads that sum one output together: as many as the block can spare for n_out outputs, at most the rows to sum,
// a power of two <= 32. (One thread an output left a pool of 64 summing 64 rows in one chain of dependent shared
// loads while the other 127 threads waited at the next barrier.)
__device__ __forceinline__ int lanes_per_output(int n_out, int rows) {
    int lanes = 1;
    while (lanes < 32 && lanes < rows && n_out * lanes * 2 <= THREADS) lanes *= 2;
    return lanes;
}

// The row-bin sums over query bins into out, this tile's partials: one row of n_bins per query bin the tile
// touches; a key bin that starts in this key tile is written, an older one is added to (only this block touches
// these partials, and key tiles come in order, so the read-modify-write is deterministic). Each output's rows are
// split over `lanes` threads (row i to lane (i - i0) % lanes), then a shuffle tree.
__device__ void pool_query_bins(const attention_probs_params &p, int pool, float *out, const float *row_bins,
                                int r0, int nr, int c0, int nc) {
    const int kb0 = c0 / pool, n_local_keys = local_key_bins(pool, c0, nc);
    const int r1 = r0 + nr, qb0 = r0 / pool, n_local_queries = (r1 - 1) / pool - qb0 + 1;
    const int n_out = n_local_queries * n_local_keys, lanes = lanes_per_output(n_out, min(pool, nr));
    const int sub = threadIdx.x % lanes, per_round = THREADS / lanes;
    for (int base = 0; base < n_out; base += per_round) { // every thread runs every round: the shuffles are collective
        const int x = base + threadIdx.x / lanes, lq = x / n_local_keys, lk = x % n_local_keys;
        const int i0 = max(r0, (qb0 + lq) * pool), i1 = min(r1, (qb0 + lq + 1) * pool); // the bin's rows here
        float sum = 0.0f;
        if (x < n_out && i0 + sub < i1)
            sum = strided_sum(row_bins + (i0 + sub - r0) * n_local_keys + lk, (i1 - i0 - sub + lanes - 1) / lanes,
                              lanes * n_local_keys);
        for (int m = lanes / 2; m >= 1; m /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, m);
        if (x < n_out && sub == 0) {
            const int J = kb0 + lk;
            float *bin = out + (int64_t)lq * p.n_bins + J;
            *bin = J * pool >= c0 ? sum : *bin + sum;
        }
    }
}

// pooled[I][J] = the mean over the rows of query bin I of SUM, a bin that exists.
__device__ __forceinline__ void put_pooled_mean(const attention_probs_params &p, int pool, float *pooled, int I, int J,
                                                float sum) {
    const int T = p.seq_len;
    if (I * pool < T && J * pool < T) pooled[(int64_t)I * p.n_bins + J] = sum / (float)min(pool, T - I * pool);
}

// Rows past the sequence hold exp2(0 - 0), not P: zeros before they are pooled (row: the lane's first row, g).
__device__ __forceinline__ void zero_rows_past_sequence(float s[TILE_N / 8][4], int r0, int row, int T) {
    if (r0 + TILE_M <= T) return;
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (row + (e / 2) * 8 >= T) s[nb][e] = 0.0f;
}

// The sum of x over the warp's lanes, in every lane: keys (lanes 1, 2 apart) and the 8 rows of a half (4, 8, 16).
__device__ __forceinline__ float lanes_total(float x) {
#pragma unroll
    for (int m = 1; m < 32; m *= 2) x += __shfl_xor_sync(0xffffffffu, x, m);
    return x;
}

// Pooling when the pool divides the tile size (1, 2, 4, ..., 64): every bin lies inside one query tile and one key
// tile, and its sum forms in registers. A lane holds keys 2t, 2t + 1 of each 8-key block nb, for rows g and g + 8
// (g = lane / 4, t = lane % 4). Keys: the pair, then lanes 1 and 2 apart, then a run over the bin's blocks; rows:
// lanes 4, 8 and 16 apart, then the two halves. A bin of at most 16 rows then sits whole in one lane, which writes
// its mean; the sums of a bin of 32 or 64 rows (2 or 4 warps) meet in warp_sums (WARPS, 2) after a barrier. The pool
// is a power of two: bins are shifts. (Summed through shared memory, row bins then query bins, this took two
// barriers and a run of index divisions a tile, and the pooled pass measured 2 to 4 times the forward.) The mirror
// sums each bin in one sequential chain: the same sums in another order.
__device__ __forceinline__ void pool_in_place(const attention_probs_params &p, int pool, float *pooled,
                                              float *warp_sums, float s[TILE_N / 8][4], int r0, int c0, int warp,
                                              int lane) {
    const int lg = __ffs(pool) - 1, g = lane / 4, t = lane % 4, row = r0 + warp * 16 + g; // row + 8: half 1
    zero_rows_past_sequence(s, r0, row, p.seq_len);
    auto rows_sum = [](float x, int rows) { // over the bin's rows of one half: lanes 4, 8, 16 apart
        for (int m = 4; m < 4 * rows; m *= 2) x += __shfl_xor_sync(0xffffffffu, x, m);
        return x;
    };
    if (pool <= 4) {
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const float a = s[nb][2 * half], b = s[nb][2 * half + 1];
                const int i = row + half * 8, j = c0 + nb * 8 + 2 * t;
                if (pool == 1 && p.seq_len % 2 == 0 && i < p.seq_len && j < p.seq_len) { // j even: 8-byte aligned
                    *reinterpret_cast<float2 *>(pooled + (int64_t)i * p.n_bins + j) = make_float2(a, b);
                    continue;
                }
                if (pool == 1) {
                    put_pooled_mean(p, 1, pooled, i, j, a);
                    put_pooled_mean(p, 1, pooled, i, j + 1, b);
                    continue;
                }
                float x = a + b;
                if (pool == 4) x += __shfl_xor_sync(0xffffffffu, x, 1);
                x = rows_sum(x, pool);
                if ((t & (pool / 2 - 1)) == 0 && (g & (pool - 1)) == 0)
                    put_pooled_mean(p, pool, pooled, i >> lg, j >> lg, x);
            }
        }
        return;
    }
    const int blocks = pool / 8; // of 8 keys, a bin
    float run[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++) {
        run[0] += s[nb][0] + s[nb][1];
        run[1] += s[nb][2] + s[nb][3];
        if (((nb + 1) & (blocks - 1)) != 0) continue;
        const int J = (c0 + nb * 8) >> lg;
        if (pool == 8) { // rows g and g + 8 are in different bins
#pragma unroll
            for (int half = 0; half < 2; half++) {
                const float x = lanes_total(run[half]);
                if (lane == 0) put_pooled_mean(p, 8, pooled, (row + half * 8) >> 3, J, x);
            }
        } else {
            const float x = lanes_total(run[0] + run[1]);
            if (lane == 0 && pool == 16) put_pooled_mean(p, 16, pooled, row >> 4, J, x);
            else if (lane == 0) warp_sums[warp * 2 + (nb * 8 >> lg)] = x;
        }
        run[0] = run[1] = 0.0f;
    }
    if (pool < 32) return;
    __syncthreads(); // warp_sums complete
    const int per_tile = TILE_M >> lg, warps = pool / 16; // bins a tile side (1 or 2), warps a bin
    if (threadIdx.x < per_tile * per_tile) {
        const int lq = threadIdx.x / 2, lk = threadIdx.x % 2;
        float sum = 0.0f;
        for (int w = lq * warps; w < (lq + 1) * warps; w++) sum += warp_sums[w * 2 + lk];
        put_pooled_mean(p, pool, pooled, (r0 >> lg) + lq, (c0 >> lg) + lk, sum);
    }
}

// Pooling with a pool that is a multiple of the tile size (128, 192, ...: a 512 x 512 map of more than 32768 tokens):
// a key bin spans pool / TILE_N key tiles, and the query tile lies inside one query bin. Each lane adds its pairs of
// the bin's key tiles into run (rows g and g + 8), kept across key tiles; at the bin's last key tile, or the query
// tile's last one, the warp's 16 rows are summed by shuffles, the four warps' sums meet in warp_sums (WARPS) after a
// barrier, and the block writes its partial of bin (this query tile, J) once; pool_finish_kernel adds the query
// tiles of a query bin. (Through row bins in shared memory this took two barriers and a pass over them every tile.)
__device__ __forceinline__ void pool_key_tiles(float *partial, float *warp_sums, float run[2],
                                               float s[TILE_N / 8][4], int pool, int T, int r0, int c0,
                                               bool last_tile, int warp, int lane) {
    static_assert(WARPS == 4, "the block's sum below adds four warps");
    zero_rows_past_sequence(s, r0, r0 + warp * 16 + lane / 4, T);
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++) {
        run[0] += s[nb][0] + s[nb][1];
        run[1] += s[nb][2] + s[nb][3];
    }
    if ((c0 + TILE_N) % pool != 0 && !last_tile) return; // the bin goes on (the same for the whole block)
    const float x = lanes_total(run[0] + run[1]);
    run[0] = run[1] = 0.0f;
    if (lane == 0) warp_sums[warp] = x;
    __syncthreads(); // warp_sums complete; the next bin writes them after the next tile's barrier
    if (threadIdx.x == 0) partial[c0 / pool] = (warp_sums[0] + warp_sums[1]) + (warp_sums[2] + warp_sums[3]);
}

// P of this warp's fragments: exp2(s * scale_log2 - lse2), one FFMA and one MUFU.EX2 each, as the forward computes
// the exponents its LSE sums. MASKED (tiles on the causal diagonal or past the end of the sequence): 0 where masked
// or past the sequence; the other tiles skip that index arithmetic.
template <bool MASKED>
__device__ __forceinline__ void probs_fragments(float s[TILE_N / 8][4], const attention_probs_params &p,
                                                const float lse2[2], int r0, int c0, int warp, int lane) {
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float x = exp2_ftz(fmaf(s[nb][e], p.scale_log2, -lse2[e / 2]));
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

// Row ends carried between key tiles (store_edge_chunks): 16 rows of each warp, for each of two outputs (probs and
// rows, or head mean and max).
constexpr int CARRY_BYTES = 2 * WARPS * 16 * (int)sizeof(uint4);

// Without partials (the pool divides the tile size): the pooled means of query rows [r0, r0 + nr) for the key bins
// from key c_end on, which a causal query tile never reaches, are 0.
__device__ void zero_pooled_past(float *pooled, int pool, int r0, int nr, int c_end, int n_bins) {
    const int I0 = r0 / pool, J0 = c_end / pool, n_rows = (r0 + nr - 1) / pool - I0 + 1, n_cols = n_bins - J0;
    for (int x = threadIdx.x; x < n_rows * max(n_cols, 0); x += THREADS)
        pooled[(int64_t)(I0 + x / n_cols) * n_bins + J0 + x % n_cols] = 0.0f;
}

// Shared memory of attention_probs_kernel, in order: Q and two K tiles; the warps' staging rows and carries when it
// writes full maps or rows; the fp32 P tile when it is staged for the block (column sums, or pooling that cannot use
// the fragments); the pooling row bins (into partials, row_bins) or the warps' bin sums (in place or over key
// tiles). Only what the request needs, so that small requests keep more blocks an SM.
struct probs_smem {
    int stage, tile, bins, bytes; // byte offsets of the optional parts, and the total
};
template <typename T, int D, typename O>
__host__ __device__ constexpr probs_smem probs_smem_layout(int row_blocks, int k_buffers, bool write, bool staged,
                                                           bool pooled, bool row_bins) {
    probs_smem l{};
    int at = (row_blocks + k_buffers) * mma_tile_elements<T, D>() * (int)sizeof(T); // Q's row blocks, K's buffers
    l.stage = at;
    at += write ? WARPS * 16 * STAGE_STRIDE * (int)sizeof(O) + row_blocks * CARRY_BYTES : 0;
    l.tile = at;
    at += staged ? TILE_M * PT_STRIDE * (int)sizeof(float) : 0;
    l.bins = at;
    at += !pooled ? 0 : (row_bins ? TILE_M * (TILE_N + 1) : WARPS * 2) * (int)sizeof(float);
    l.bytes = at;
    return l;
}

// The query tiles of `rows` rows the per-head pass runs: all of them, or for a request of rows alone those that
// hold the rows.
struct tile_range {
    int first, count;
};
__host__ __device__ __forceinline__ tile_range launched_tiles(const attention_probs_params &p, int rows) {
    const bool rows_only = p.rows && !p.probs && !p.col_partial && !p.pooled;
    if (!rows_only) return {0, (p.seq_len + rows - 1) / rows};
    return {p.rows_begin / rows, (p.rows_end - 1) / rows - p.rows_begin / rows + 1};
}

// Row 0 of query head h and of key/value head kvh in batch entry b.
template <typename T>
__device__ __forceinline__ const T *query_head(const attention_probs_params &p, int b, int h) {
    return static_cast<const T *>(p.q) + b * p.q_batch + h * p.q_head;
}
template <typename T>
__device__ __forceinline__ const T *key_head(const attention_probs_params &p, int b, int kvh) {
    return static_cast<const T *>(p.k) + b * p.k_batch + kvh * p.k_head;
}

// The per-head pass is compiled three times, each for what a kind of request writes: its registers are those of the
// code it keeps, and fewer registers let more blocks share an SM (a kernel that could pool into partials took 143
// or 161 registers, 3 blocks an SM, for every request). Full maps and rows alone (maps): 96 to 168 registers;
// pooling alone with a pool that divides the tile or spans whole tiles (pooled): 96 to 152.
enum class probs_pass { maps, pooled, general };
__host__ __device__ __forceinline__ probs_pass probs_pass_of(const attention_probs_params &p) {
    if (!p.col_partial && !p.pooled) return probs_pass::maps;
    if (!p.probs && !p.rows && !p.col_partial && (!p.pool_partial || pool_spans_tiles(p.pool)))
        return probs_pass::pooled;
    return probs_pass::general;
}
// How the per-head pass divides a query tile's key tiles among blocks: into up to p.key_chunks chunks of equal
// length (key_chunks_for), each a block of its own. The arithmetic of every tile is the mirror's either way.
struct key_split {
    int chunks, tiles; // chunks a query tile's keys take, and key tiles a chunk
};
__host__ __device__ __forceinline__ int key_tile_count(const attention_probs_params &p) {
    return (p.seq_len + TILE_N - 1) / TILE_N;
}
// Key tiles the query rows of TILE_M-row tile `tile` see: [0, key_tiles_of(p, tile)) (TILE_M == TILE_N).
__host__ __device__ __forceinline__ int key_tiles_of(const attention_probs_params &p, int tile) {
    const int n_key_tiles = key_tile_count(p);
    return p.causal && tile + 1 < n_key_tiles ? tile + 1 : n_key_tiles;
}
__host__ __device__ __forceinline__ key_split key_split_of(const attention_probs_params &p) {
    const int n_key_tiles = key_tile_count(p), tiles = (n_key_tiles + p.key_chunks - 1) / p.key_chunks;
    return {(n_key_tiles + tiles - 1) / tiles, tiles};
}

// Row blocks of TILE_M query rows a block of copy PASS runs, a warp 16 rows of each: two for full maps and rows, so
// that each K fragment a warp reads from shared memory feeds two products (tile_scores) and each K tile read from L2
// serves 128 rows. S was the slow part: pooling alone (S and P, next to nothing written) took 0.499 ms at GPT-2's
// n = 8192 on the H200, the forward, which does twice the products with two row blocks, 0.370 (bench/RESULTS.md,
// eighth session). The other copies keep one: their column sums, partials and bins are laid out by query tile.
template <probs_pass PASS> constexpr int probs_row_blocks() { return PASS == probs_pass::maps ? 2 : 1; }
// AV_PROBS_MAPS_Q_SHARED (CMake option of that name): the maps copy reads Q from shared memory, so that its 16-bit
// maps fit 4 blocks an SM at D = 64 and 3 at D = 128 (probs_blocks_per_sm, probs_k_buffers), the A/B build of
// bench/device_check.sh.
#ifdef AV_PROBS_MAPS_Q_SHARED
constexpr bool MAPS_Q_SHARED = true;
#else
constexpr bool MAPS_Q_SHARED = false;
#endif
// Whether a warp keeps its Q fragments in registers across key tiles: everywhere but the general copy at D = 128,
// whose 32 registers of them, beside its reductions, brought it to 168 and made ptxas spill, and the maps copy of the
// A/B build; those read them from shared memory every k-step (D / 16 ldmatrix a row block and key tile).
template <int D, probs_pass PASS> constexpr bool probs_q_in_registers() {
    if (PASS == probs_pass::maps) return !MAPS_Q_SHARED;
    return PASS == probs_pass::pooled || D == 64;
}

// Whether copy PASS pools through row bins in shared memory: into partials, in the general copy (the pooled copy sums
// whole key tiles in registers; carrying those sums across tiles would cost the general copy a spill where the
// mma.sync path holds Q).
template <probs_pass PASS>
__host__ __device__ __forceinline__ bool pools_through_row_bins(const attention_probs_params &p) {
    return PASS == probs_pass::general && p.pool_partial;
}
// P with the outputs that PASS never writes switched off where the compiler sees it.
template <probs_pass PASS>
__device__ __forceinline__ attention_probs_params restricted_to(attention_probs_params p) {
    if (PASS == probs_pass::maps) p.col_partial = p.pool_partial = p.pooled = nullptr;
    if (PASS == probs_pass::pooled) p.probs = p.rows = nullptr, p.col_partial = nullptr;
    return p;
}

// Whether copy PASS computes S by warpgroup MMA (sm_90a only): the pooling copy at D = 64 alone, the one copy it made
// faster on the H200 (0.404 against 0.499 ms at GPT-2's n = 8192: its 96 registers let 5 blocks share an SM). The
// dump ran faster by mma.sync (1204 against 1098 GB/s at D = 64, 1318 against 907 at D = 128), and so did the pooling
// at D = 128 (1.65 against 1.84 ms, Llama n = 8192); bench/RESULTS.md, eighth session.
// AV_WGMMA_SCORES_ALL (CMake option of that name): every copy by wgmma, the A/B build of bench/device_check.sh.
template <int D, probs_pass PASS> constexpr bool scores_by_wgmma() {
#ifdef AV_WGMMA_SCORES_ALL
    return HAS_WGMMA;
#else
    return HAS_WGMMA && PASS == probs_pass::pooled && D == 64;
#endif
}

// Blocks an SM each copy is compiled for, so that growing past their registers spills, which fails the build, rather
// than silently losing a block: the maps copy (two row blocks) 3 at D = 64 (168 registers; 50-58 KB a block; held to
// 128 registers for 4 it spilled 64 bytes) and 2 at D = 128 (81-94 KB); in the A/B build, with Q from shared memory,
// its 16-bit maps 4 at D = 64 (128 registers, 50 KB) and 3 at D = 128 (168 registers; one K buffer, 64 KB); the
// pooling at D = 64 by wgmma 5 (96 registers; 27 KB; held to 96 registers the mma.sync code spilled); else 3 (168).
// The device passes read this, and the launch's key split (key_chunks_for); nothing is sized by it.
template <int D, typename O, probs_pass PASS> constexpr int probs_blocks_per_sm() {
    if (PASS == probs_pass::maps && !probs_q_in_registers<D, PASS>() && sizeof(O) == 2) return D == 128 ? 3 : 4;
    if (PASS == probs_pass::maps) return D == 128 ? 2 : 3;
    return D == 64 && PASS == probs_pass::pooled && scores_by_wgmma<D, PASS>() ? 5 : 3;
}
// K tile buffers: two, the next tile loading while this one computes, but one in the maps copy at D = 128 of the A/B
// build (16-bit maps), whose 3 blocks an SM need it under 75 KB (64 KB; 81 with two): the next tile loads once every
// warp has its S, during P and the writes.
template <int D, typename O, probs_pass PASS> constexpr int probs_k_buffers() {
    return D == 128 && probs_blocks_per_sm<D, O, PASS>() == 3 && PASS == probs_pass::maps ? 1 : 2;
}
// Whether the blocks an SM that copy PASS is compiled for also fit the SM's shared memory (228 KB on sm_90, 1 KB of
// it reserved a block) with what the requests it is chosen for take: the maps copy its staging rows and carries, the
// pooled copy its bin sums (the general copy, for any request, gets what fits). Otherwise the registers held to that
// many blocks would buy nothing.
constexpr int SM_SHARED_BYTES = 228 * 1024, SHARED_RESERVED_PER_BLOCK = 1024;
template <typename T, int D, typename O, probs_pass PASS> constexpr bool probs_blocks_fit_shared_memory() {
    if (PASS == probs_pass::general) return true;
    const bool maps = PASS == probs_pass::maps;
    const int bytes = probs_smem_layout<T, D, O>(probs_row_blocks<PASS>(), probs_k_buffers<D, O, PASS>(), maps, false,
                                                 !maps, false)
                          .bytes;
    return probs_blocks_per_sm<D, O, PASS>() * (bytes + SHARED_RESERVED_PER_BLOCK) <= SM_SHARED_BYTES;
}

template <typename T, int D, typename O, probs_pass PASS>
__global__ void __launch_bounds__(THREADS, probs_blocks_per_sm<D, O, PASS>())
    attention_probs_kernel(const attention_probs_params params) {
    const attention_probs_params p = restricted_to<PASS>(params);
    constexpr int RB = probs_row_blocks<PASS>(), KB = probs_k_buffers<D, O, PASS>(), TILE = mma_tile_elements<T, D>();
    static_assert(probs_blocks_fit_shared_memory<T, D, O, PASS>(), "fewer blocks an SM fit than compiled for");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw); // RB x (TILE_M, D) in the layout of the path (WGMMA, below)
    T *ks = qs + RB * TILE;                  // KB x (TILE_N, D)

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const tile_range tiles = launched_tiles(p, RB * TILE_M);
    const key_split split = key_split_of(p);
    const grid_item where = heavy_first_item(tiles.count * split.chunks, p.n_slots, p.batch, p.causal);
    const int qt = tiles.first + where.qt / split.chunks, slot = where.slot, b = where.b, h = p.head_begin + slot;
    const int T_len = p.seq_len;
    const int r0 = qt * RB * TILE_M, nr = min(TILE_M, T_len - r0); // nr: row block 0's rows
    // Row block mb's key tiles: [0, kt_end_of(mb)); the block's are those of its last. (A row block past the
    // sequence's end: the last's, with two.)
    auto kt_end_of = [&](int mb) { return key_tiles_of(p, qt * RB + mb); };
    const int kt_end = kt_end_of(RB - 1);
    const int kt_first = where.qt % split.chunks * split.tiles, kt_stop = min(kt_end, kt_first + split.tiles);
    if (kt_first >= kt_end) return; // a chunk wholly past the causal diagonal
    const int kvh = h / (p.n_heads / p.n_kv_heads);
    const int64_t slot_index = (int64_t)b * p.n_slots + slot;
    const int pool = min(p.pool, T_len);
    const bool pool_from_fragments = pool_fits_fragments(pool), staged = stages_tile(p);
    const probs_smem layout =
        probs_smem_layout<T, D, O>(RB, KB, p.probs || p.rows, staged, p.pooled, pools_through_row_bins<PASS>(p));
    O *stage = reinterpret_cast<O *>(smem_raw + layout.stage) + warp * 16 * STAGE_STRIDE; // (16, STAGE_STRIDE)
    // (2 outputs, RB, WARPS, 16): this warp's carries of probs and of rows for row block mb
    uint4 *carries = reinterpret_cast<uint4 *>(smem_raw + layout.stage + WARPS * 16 * STAGE_STRIDE * sizeof(O)) +
                     warp * 16;
    auto carry_of = [&](int output, int mb) { return carries + (output * RB + mb) * WARPS * 16; };
    float *pt = reinterpret_cast<float *>(smem_raw + layout.tile);                      // (TILE_M, PT_STRIDE)
    float *row_bins = reinterpret_cast<float *>(smem_raw + layout.bins); // (TILE_M, TILE_N + 1), or warp_sums

    const T *q = query_head<T>(p, b, h), *k = key_head<T>(p, b, kvh);
    O *probs = p.probs ? static_cast<O *>(p.probs) + slot_index * map_entries(p.layout, T_len) : nullptr;
    O *rows = p.rows ? static_cast<O *>(p.rows) + slot_index * (p.rows_end - p.rows_begin) * T_len : nullptr;
    float *col_partial = p.col_partial ? p.col_partial + (slot_index * p.n_query_tiles + qt) * T_len : nullptr;
    float *pooled = p.pooled ? p.pooled + slot_index * p.n_bins * p.n_bins : nullptr; // (n_bins, n_bins)
    float *pool_partial = p.pool_partial ? p.pool_partial + (slot_index * p.n_query_tiles + qt) *
                                                                  (int64_t)p.max_local_bins * p.n_bins
                                         : nullptr; // (max_local_bins, n_bins)
    const float *lse = p.lse + ((int64_t)b * p.n_heads + h) * T_len;
    float lse2[RB][2];
#pragma unroll
    for (int mb = 0; mb < RB; mb++) row_lse2(lse2[mb], lse, r0 + mb * TILE_M, T_len, warp, lane);
    float pool_run[2] = {0.0f, 0.0f}; // pool_key_tiles: this lane's sums of the current key bin so far

    // Square maps and rows of causal attention hold zeros past each row block's diagonal tile, written by the chunk
    // with the query tile's last key tile before its key tiles (which write none of them): nothing of this is then
    // live across the key loop (it took the maps copy with Q in shared memory one spill past 128 registers).
    if (kt_stop == kt_end) {
#pragma unroll
        for (int mb = 0; mb < RB; mb++) {
            const int zeros_from = kt_end_of(mb) * TILE_N, i0 = r0 + mb * TILE_M + warp * 16;
            const int i1 = min(i0 + 16, T_len);
            if (zeros_from >= T_len) continue;
            if (probs && p.layout == AV_PROBS_SQUARE) zero_rows_from(probs, 0, i0, i1, zeros_from, T_len, lane);
            if (rows)
                zero_rows_from(rows, p.rows_begin, max(i0, p.rows_begin), min(i1, p.rows_end), zeros_from, T_len,
                               lane);
        }
    }

    constexpr bool WGMMA = scores_by_wgmma<D, PASS>();
#pragma unroll
    for (int mb = 0; mb < RB; mb++)
        load_mma_tile_async<T, D, WGMMA>(qs + mb * TILE, q, p.q_row, r0 + mb * TILE_M, T_len);
    load_mma_tile_async<T, D, WGMMA>(ks + (kt_first % KB) * TILE, k, p.k_row, kt_first * TILE_N, T_len);
    cp_async_commit();
    query_operand<T, D, WGMMA, RB, TILE, probs_q_in_registers<D, PASS>()> q_operand;
    for (int kt = kt_first; kt < kt_stop; kt++) {
        const int c0 = kt * TILE_N, nc = min(TILE_N, T_len - c0);
        mma_tiles_wait<WGMMA, 0>();
        __syncthreads(); // K of tile kt is in; every warp is done with tile kt - 1 (its K buffer, pt, row_bins)
        if (KB == 2 && kt + 1 < kt_stop) {
            load_mma_tile_async<T, D, WGMMA>(ks + ((kt + 1) % 2) * TILE, k, p.k_row, c0 + TILE_N, T_len);
            cp_async_commit();
        }
        if (kt == kt_first) q_operand.load(qs, warp, lane);
        float s[RB][TILE_N / 8][4];
        tile_scores(s, q_operand, ks + (kt % KB) * TILE, lane);
        if (KB == 1 && kt + 1 < kt_stop) {
            __syncthreads(); // every warp has its S: the one K buffer is free
            load_mma_tile_async<T, D, WGMMA>(ks, k, p.k_row, c0 + TILE_N, T_len);
            cp_async_commit();
        }
#pragma unroll
        for (int mb = 0; mb < RB; mb++) { // a row block past its diagonal (the first, causal, last tile) has no P
            if (RB > 1 && kt >= kt_end_of(mb)) continue;
            const int rb0 = r0 + mb * TILE_M, i0 = rb0 + warp * 16;
            exact_probs(s[mb], p, lse2[mb], rb0, c0, warp, lane);
            const bool first_tile = kt == kt_first, last_tile = kt + 1 == min(kt_stop, kt_end_of(mb));
            if (probs)
                write_warp_rows(stage, carry_of(0, mb), s[mb],
                                map_warp_rows(probs, p.layout, T_len, i0, c0, first_tile, last_tile), lane);
            if (rows)
                write_warp_rows(stage, carry_of(1, mb), s[mb],
                                selected_warp_rows(rows, p, i0, c0, first_tile, last_tile), lane);
        }
        if constexpr (RB == 1) { // the reductions, laid out by query tile
            if (staged) {
                stage_fragments(pt, s[0], warp, lane);
                __syncthreads(); // pt complete
                if (col_partial) colsum_tile(col_partial, pt, nr, c0, nc);
            }
            if (pooled && !p.pool_partial) {
                pool_in_place(p, pool, pooled, row_bins, s[0], r0, c0, warp, lane);
            } else if (PASS == probs_pass::pooled && pooled) { // a pool that spans whole tiles
                pool_key_tiles(pool_partial, row_bins, pool_run, s[0], pool, T_len, r0, c0, kt + 1 == kt_end, warp,
                               lane);
            } else if (pools_through_row_bins<PASS>(p)) {
                if (pool_from_fragments) pool_row_bins_from_fragments(pool, s[0], row_bins, c0, nc, warp, lane);
                else pool_row_bins_from_tile(pool, pt, row_bins, nr, c0, nc);
                __syncthreads(); // row_bins complete
                pool_query_bins(p, pool, pool_partial, row_bins, r0, nr, c0, nc);
            }
        }
    }
    if (kt_stop < kt_end) return; // the chunk with the query tile's last key tile writes the bins past it
    if (pooled && !p.pool_partial) zero_pooled_past(pooled, pool, r0, nr, kt_end * TILE_N, p.n_bins);
}

// Keys [0, processed_keys_end(qt)) are the ones query tile qt processed; its partials beyond were never written.
__device__ __forceinline__ int processed_keys_end(const attention_probs_params &p, int qt) {
    return min(p.seq_len, key_tiles_of(p, qt) * TILE_N);
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

// Q of head h's query tile and, when load_k, K of key/value head kvh's key tile at c0, as one commit group, in the
// padded layout: the head reduction writes maps like the dump, which ran faster by mma.sync (scores_by_wgmma).
template <typename T, int D>
__device__ __forceinline__ void load_head_tiles(const attention_probs_params &p, T *q_buf, T *k_buf, int b, int h,
                                                int kvh, int r0, int c0, bool load_k) {
    load_tile_async<T, D>(q_buf, query_head<T>(p, b, h), p.q_row, r0, p.seq_len);
    if (load_k) load_tile_async<T, D>(k_buf, key_head<T>(p, b, kvh), p.k_row, c0, p.seq_len);
    cp_async_commit();
}

// Items (key tile kt, head h) in order, heads inner. Q and K are double buffered: the tiles of the next item load
// while this one computes (K only when the next item needs another key tile or key/value head).
template <typename T, int D, typename O>
__global__ void __launch_bounds__(THREADS, 3) head_reduce_kernel(const attention_probs_params p) {
    constexpr int Q_TILE = TILE_M * (D + ROW_PAD), K_TILE = TILE_N * (D + ROW_PAD);
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw);                   // 2 x (TILE_M, D + ROW_PAD): item i's in buffer i % 2
    T *ks = qs + 2 * Q_TILE;                                    // 2 x (TILE_N, D + ROW_PAD)
    O *stages = reinterpret_cast<O *>(ks + 2 * K_TILE);         // (WARPS, 16, STAGE_STRIDE)
    uint4 *carries = reinterpret_cast<uint4 *>(stages + WARPS * 16 * STAGE_STRIDE); // (2 outputs, WARPS, 16)

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    O *stage = stages + warp * 16 * STAGE_STRIDE;
    uint4 *mean_carry = carries + warp * 16, *max_carry = carries + (WARPS + warp) * 16;
    const grid_item where = heavy_first_item(p.n_query_tiles, p.n_groups, p.batch, p.causal);
    const int g = where.slot, b = where.b, qt = where.qt;
    const int T_len = p.seq_len, r0 = qt * TILE_M, i0 = r0 + warp * 16;
    const int heads_per_group = p.n_heads / p.n_groups, h0 = g * heads_per_group;
    const int group_size = p.n_heads / p.n_kv_heads;
    const int kt_end = key_tiles_of(p, qt);
    const int64_t map_offset = ((int64_t)b * p.n_groups + g) * map_entries(p.layout, T_len);
    O *mean_map = p.head_mean ? static_cast<O *>(p.head_mean) + map_offset : nullptr;
    O *max_map = p.head_max ? static_cast<O *>(p.head_max) + map_offset : nullptr;

    load_head_tiles<T, D>(p, qs, ks, b, h0, h0 / group_size, r0, 0, true);
    int item = 0, k_buf = 0; // k_buf: the buffer holding this item's K
    for (int kt = 0; kt < kt_end; kt++) {
        const int c0 = kt * TILE_N;
        const bool last_tile = kt + 1 == kt_end;
        float sum[TILE_N / 8][4], mx[TILE_N / 8][4];
        for (int h = h0; h < h0 + heads_per_group; h++, item++) {
            const int kvh = h / group_size;
            cp_async_wait<0>();
            __syncthreads(); // this item's Q and K are in; every warp is done with the previous item's buffers
            const bool last_head = h + 1 == h0 + heads_per_group;
            const int next_h = last_head ? h0 : h + 1, next_kt = last_head ? kt + 1 : kt;
            const bool next_k = last_head || next_h / group_size != kvh;
            if (next_kt < kt_end)
                load_head_tiles<T, D>(p, qs + ((item + 1) % 2) * Q_TILE, ks + (k_buf ^ next_k) * K_TILE, b, next_h,
                                      next_h / group_size, r0, next_kt * TILE_N, next_k);
            query_operand<T, D, false> q_operand;
            q_operand.load(qs + (item % 2) * Q_TILE, warp, lane);
            float lse2[2];
            row_lse2(lse2, p.lse + ((int64_t)b * p.n_heads + h) * T_len, r0, T_len, warp, lane);
            float scores[1][TILE_N / 8][4];
            tile_scores(scores, q_operand, ks + k_buf * K_TILE, lane);
            float(&s)[TILE_N / 8][4] = scores[0];
            exact_probs(s, p, lse2, r0, c0, warp, lane);
#pragma unroll
            for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    sum[nb][e] = h == h0 ? s[nb][e] : sum[nb][e] + s[nb][e];
                    mx[nb][e] = h == h0 ? s[nb][e] : fmaxf(mx[nb][e], s[nb][e]);
                }
            }
            k_buf ^= next_k;
        }
        if (mean_map) {
#pragma unroll
            for (int nb = 0; nb < TILE_N / 8; nb++)
#pragma unroll
                for (int e = 0; e < 4; e++) sum[nb][e] /= (float)heads_per_group;
            write_warp_rows(stage, mean_carry, sum,
                            map_warp_rows(mean_map, p.layout, T_len, i0, c0, kt == 0, last_tile), lane);
        }
        if (max_map)
            write_warp_rows(stage, max_carry, mx, map_warp_rows(max_map, p.layout, T_len, i0, c0, kt == 0, last_tile),
                            lane);
    }
    const int zeros_from = kt_end * TILE_N, i1 = min(i0 + 16, T_len);
    if (p.layout == AV_PROBS_SQUARE && zeros_from < T_len) {
        if (mean_map) zero_rows_from(mean_map, 0, i0, i1, zeros_from, T_len, lane);
        if (max_map) zero_rows_from(max_map, 0, i0, i1, zeros_from, T_len, lane);
    }
}

// Blocks that share a query tile's keys (key_split_of), for copy PASS on a GPU of `sms` SMs. Pooling in place (a pool
// that divides the tile: every bin inside one key tile, nothing carried between key tiles): KEY_CHUNKS, always; on a
// short prompt the grid was a single wave that lasted as long as its longest causal query tile, which alone took every
// key tile (2.35x the forward at n = 2048 on the H200). Full maps and rows: the writer carries row ends from key tile
// to key tile and writes them element by element at a chunk's edges instead, so they split only as far as the
// heaviest block (the last query tile's key tiles) outlasts the mean work of a block slot (all blocks' key tiles over
// SMs x blocks an SM), in chunks of at least MIN_CHUNK_TILES key tiles: GPT-2's 12 heads at n = 4096 are 384 blocks
// of 128 rows for 396 slots on an H200, the heaviest 64 key tiles against a mean of 32 (2 chunks); at 2048, 32
// against 8 (3); at 8192 none (128 against 126), nor Llama's 32 heads from 2048 on. Column sums and partials carry
// their sums from tile to tile: one chunk.
constexpr int KEY_CHUNKS = 4, MIN_CHUNK_TILES = 8;
template <int D, typename O, probs_pass PASS> int key_chunks_for(const attention_probs_params &p, int sms) {
    if (PASS == probs_pass::pooled) return p.pool_partial ? 1 : KEY_CHUNKS;
    if (PASS != probs_pass::maps) return 1;
    constexpr int RB = probs_row_blocks<PASS>();
    const int n_key_tiles = key_tile_count(p);
    const tile_range tiles = launched_tiles(p, RB * TILE_M);
    auto key_tiles = [&](int qt) { return key_tiles_of(p, qt * RB + RB - 1); }; // those of qt's last row block
    int64_t work = 0;
    for (int qt = tiles.first; qt < tiles.first + tiles.count; qt++) work += key_tiles(qt);
    work *= (int64_t)p.n_slots * p.batch;
    const int64_t slots = (int64_t)sms * probs_blocks_per_sm<D, O, PASS>();
    const int64_t outlasts = key_tiles(tiles.first + tiles.count - 1) * slots / work; // heaviest / mean, rounded down
    const int most = n_key_tiles / MIN_CHUNK_TILES < KEY_CHUNKS ? n_key_tiles / MIN_CHUNK_TILES : KEY_CHUNKS;
    return (int)(outlasts < 1 || most < 1 ? 1 : outlasts > most ? most : outlasts);
}

template <typename T, int D, typename O, probs_pass PASS>
static cudaError_t launch_per_head(const attention_probs_params *params, cudaStream_t stream) {
    constexpr int RB = probs_row_blocks<PASS>(), KB = probs_k_buffers<D, O, PASS>();
    cudaError_t err = cudaFuncSetAttribute(attention_probs_kernel<T, D, O, PASS>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           probs_smem_layout<T, D, O>(RB, KB, true, true, true, true).bytes);
    int device, sms;
    if (err == cudaSuccess) err = cudaGetDevice(&device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    if (err != cudaSuccess) return err;
    attention_probs_params p = *params;
    p.key_chunks = key_chunks_for<D, O, PASS>(p, sms);
    int smem =
        probs_smem_layout<T, D, O>(RB, KB, p.probs || p.rows, stages_tile(p), p.pooled, pools_through_row_bins<PASS>(p))
            .bytes;
    dim3 grid;
    if (!heavy_first_grid(launched_tiles(p, RB * TILE_M).count * key_split_of(p).chunks, p.n_slots, p.batch, &grid))
        return cudaErrorInvalidConfiguration;
    attention_probs_kernel<T, D, O, PASS><<<grid, THREADS, smem, stream>>>(p);
    return cudaGetLastError();
}

template <typename T, int D, typename O>
static cudaError_t launch_typed(const attention_probs_params *p, cudaStream_t stream) {
    constexpr int HEAD_REDUCE_SMEM =
        2 * (TILE_M + TILE_N) * (D + ROW_PAD) * sizeof(T) + WARPS * 16 * STAGE_STRIDE * sizeof(O) + CARRY_BYTES;
    cudaError_t err;
    bool per_head = p->probs || p->rows || p->col_partial || p->pooled;
    if (per_head) {
        switch (probs_pass_of(*p)) { // pooling alone writes fp32 whatever O is: one instantiation serves all
        case probs_pass::maps: err = launch_per_head<T, D, O, probs_pass::maps>(p, stream); break;
        case probs_pass::pooled: err = launch_per_head<T, D, float, probs_pass::pooled>(p, stream); break;
        default: err = launch_per_head<T, D, O, probs_pass::general>(p, stream);
        }
        if (err != cudaSuccess) return err;
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
        dim3 grid;
        if (!heavy_first_grid(p->n_query_tiles, p->n_groups, p->batch, &grid)) return cudaErrorInvalidConfiguration;
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
