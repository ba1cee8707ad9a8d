// attention_fwd: O = softmax(Q K^T * scale) V and LSE, one block of 4 warps per (query tile, head, batch), the
// heaviest causal query tiles of every head first (heavy_first_item).
//
// Transliteration of forward_query_tile in host/attention_tiled.c: every query row sees the same 64-key tiles in
// the same ascending order (up to the tile holding its diagonal when causal), online softmax in the log2 domain
// with fp32 statistics, P rounded to the input dtype as the A operand of P V. The kernel's query tile is two of the
// mirror's, 128 rows as two 64-row blocks: warp w owns rows 16 w .. 16 w + 15 of each, two 16-row mma blocks, so
// every V fragment read from shared memory feeds two products (with one block per warp, shared memory bandwidth
// capped the tensor cores near half rate). Only tiles on the causal diagonal or past the end of the sequence pay for
// masking. K and V stream through shared memory with cp.async, K double buffered: V of tile kt and K of tile kt + 1
// are issued together at the top of iteration kt, V lands while S = Q K^T and the softmax run, K during the whole
// iteration.
//
// Both products are mma.sync on every build: a version with warpgroup MMAs for both (S from shared memory, P V from
// P in registers) ran 6-7% slower on the H200 at n = 8192 (bench/RESULTS.md, eighth session; Nsight Compute had it
// L2-bound at 76%). At D = 64 P V of tile kt - 1 is computed with tile kt (pipelined(): V double buffered, one barrier
// a tile), inside the softmax, in one straight stretch of code ptxas interleaves, and Q's fragments stay in
// registers; at D = 128 P V follows the softmax, two barriers a tile, and Q's fragments are re-read from shared memory
// every tile.
#include "attention_fwd.cuh"
#include "attention_tiles.cuh"

namespace avk {

constexpr int ROW_BLOCKS = 2;                       // 16-row mma blocks per warp
constexpr int FWD_TILE_M = WARPS * 16 * ROW_BLOCKS; // query rows per block
constexpr int BLOCK_ROWS = WARPS * 16;              // a row block of the query tile: warp w's rows 16 w .. of it
__host__ __device__ __forceinline__ int forward_query_tiles(int seq_len) {
    return (seq_len + FWD_TILE_M - 1) / FWD_TILE_M;
}

// Q of the block's two row blocks, stride BLOCK_ROWS rows: its fragments stay in registers at D = 64 and are read
// from shared memory every k-step at D = 128 (where acc holds 128 registers).
template <int D> constexpr bool q_in_registers() { return D == 64; }
template <typename T, int D>
using forward_query = query_operand<T, D, false, ROW_BLOCKS, BLOCK_ROWS * (D + ROW_PAD), q_in_registers<D>()>;

// Largest of this thread's entries of fragment rows g (i = 0) and g + 8 (i = 1), as a tree: with 8 warps an SM,
// a 16-deep chain of dependent fmaxf would leave the schedulers idle.
__device__ __forceinline__ float fragment_row_max(const float s[TILE_N / 8][4], int i) {
    float x[TILE_N / 8];
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++) x[nb] = fmaxf(s[nb][2 * i], s[nb][2 * i + 1]);
#pragma unroll
    for (int w = TILE_N / 16; w >= 1; w /= 2)
#pragma unroll
        for (int nb = 0; nb < w; nb++) x[nb] = fmaxf(x[nb], x[nb + w]);
    return x[0];
}

// The online softmax of one key tile, in phases that each take both of the warp's row blocks (fragment rows g and
// g + 8 of block mb are rows warp_row0 + 64 mb + g, + 8): their chains are independent, and with two warps a
// scheduler the one block's shuffles and exponentials wait on latency the other's can fill.

// Raw scores of keys past the sequence, or (CAUSAL) past the row's diagonal, to -inf.
template <bool CAUSAL>
__device__ __forceinline__ void mask_scores(float s[ROW_BLOCKS][TILE_N / 8][4], int warp_row0, int c0, int T,
                                            int lane) {
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int row = warp_row0 + mb * BLOCK_ROWS + lane / 4 + (e / 2) * 8, key = c0 + fragment_col(lane, nb, e);
                if (key >= T || (CAUSAL && key > row)) s[mb][nb][e] = -INFINITY;
            }
}

// Raises the running maxima m (log2 domain: the raw maximum times scale_log2, which is positive, is the maximum of
// the scaled scores) to this tile's; alpha = exp2(old m - new m) rescales what was summed before.
__device__ __forceinline__ void raise_maxima(const float s[ROW_BLOCKS][TILE_N / 8][4], float m[ROW_BLOCKS][2],
                                             float alpha[ROW_BLOCKS][2], float scale_log2) {
    float x[ROW_BLOCKS][2];
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int i = 0; i < 2; i++) x[mb][i] = fragment_row_max(s[mb], i);
#pragma unroll
    for (int offset = 1; offset <= 2; offset *= 2)
#pragma unroll
        for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
            for (int i = 0; i < 2; i++) x[mb][i] = fmaxf(x[mb][i], __shfl_xor_sync(0xffffffffu, x[mb][i], offset));
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            // Finite: key 0 of tile 0 is visible to every row, padding rows included.
            const float m_new = fmaxf(m[mb][i], x[mb][i] * scale_log2);
            alpha[mb][i] = exp2_ftz(m[mb][i] - m_new);
            m[mb][i] = m_new;
        }
}

// s to exp2(s * scale_log2 - m) with one FFMA each, and l (this thread's share of the row sums) to l alpha plus this
// tile's, summed as a tree.
__device__ __forceinline__ void exponentiate_and_sum(float s[ROW_BLOCKS][TILE_N / 8][4],
                                                     const float m[ROW_BLOCKS][2], float l[ROW_BLOCKS][2],
                                                     const float alpha[ROW_BLOCKS][2], float scale_log2) {
    float sums[ROW_BLOCKS][TILE_N / 8][2];
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) s[mb][nb][e] = exp2_ftz(fmaf(s[mb][nb][e], scale_log2, -m[mb][e / 2]));
            sums[mb][nb][0] = s[mb][nb][0] + s[mb][nb][1];
            sums[mb][nb][1] = s[mb][nb][2] + s[mb][nb][3];
        }
#pragma unroll
    for (int w = TILE_N / 16; w >= 1; w /= 2)
#pragma unroll
        for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
            for (int nb = 0; nb < w; nb++)
                sums[mb][nb][0] += sums[mb][nb + w][0], sums[mb][nb][1] += sums[mb][nb + w][1];
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int i = 0; i < 2; i++) l[mb][i] = l[mb][i] * alpha[mb][i] + sums[mb][0][i];
}

// acc *= alpha. alpha is exactly 1 where a row's maximum did not move, as in most tiles of a long row once it has
// settled: a warp-wide vote then spares the multiplications by 1 (which would change nothing).
template <int D>
__device__ __forceinline__ void rescale_accumulators(float acc[ROW_BLOCKS][D / 8][4],
                                                     const float alpha[ROW_BLOCKS][2]) {
    bool moved = false;
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int i = 0; i < 2; i++) moved |= alpha[mb][i] != 1.0f;
    if (!__any_sync(0xffffffffu, moved)) return;
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) {
            acc[mb][dn][0] *= alpha[mb][0];
            acc[mb][dn][1] *= alpha[mb][0];
            acc[mb][dn][2] *= alpha[mb][1];
            acc[mb][dn][3] *= alpha[mb][1];
        }
}

// P of one row block as the A fragments of P V, rounded to T: the C fragments of key blocks 2 kk and 2 kk + 1 are
// the A fragment of 16-key step kk. Packing right after the softmax halves the registers P holds.
template <typename T>
__device__ __forceinline__ void pack_probs(uint32_t pa[TILE_N / 16][4], const float s[TILE_N / 8][4]) {
#pragma unroll
    for (int kk = 0; kk < TILE_N / 16; kk++) {
        pa[kk][0] = mma_op<T>::pack(s[2 * kk][0], s[2 * kk][1]);
        pa[kk][1] = mma_op<T>::pack(s[2 * kk][2], s[2 * kk][3]);
        pa[kk][2] = mma_op<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        pa[kk][3] = mma_op<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
}

// acc[mb] += P[mb] V, 16 keys a step; each V fragment serves both row blocks.
template <typename T, int D>
__device__ __forceinline__ void accumulate_pv(float acc[ROW_BLOCKS][D / 8][4],
                                              const uint32_t pa[ROW_BLOCKS][TILE_N / 16][4], const T *v_tile,
                                              int lane) {
#pragma unroll
    for (int kk = 0; kk < TILE_N / 16; kk++) {
#pragma unroll
        for (int dn = 0; dn < D / 8; dn += 2) {
            uint32_t bv[4]; // b0, b1 of output columns 8 dn.., then of 8 (dn + 1)..
            int key = kk * 16 + ((lane / 8) % 2) * 8 + lane % 8;
            ldmatrix_x4_trans(bv, v_tile + key * (D + ROW_PAD) + (dn + lane / 16) * 8);
#pragma unroll
            for (int mb = 0; mb < ROW_BLOCKS; mb++) {
                mma_op<T>::run(acc[mb][dn], pa[mb][kk], bv[0], bv[1]);
                mma_op<T>::run(acc[mb][dn + 1], pa[mb][kk], bv[2], bv[3]);
            }
        }
    }
}

// Pipelined: P V of tile kt - 1 is computed with tile kt (V double buffered, one barrier a tile), overlapping the
// softmax: on the H200 the forward ran near one instruction a cycle an SM, stalled on the softmax's dependent chains
// (row maxima, shuffles, alpha) with the tensor cores idle meanwhile, and the previous tile's products fill those
// waits, for P's 32 registers across the tile. D = 128 lacks them: there P V follows the softmax.
template <int D> constexpr bool pipelined() { return D == 64; }

// S of this key tile and, pipelined, P V of the previous one (P in pa, V in v_prev; before tile 0, a zero P and a
// zero V tile: straight code, no branch around the first product).
template <typename T, int D>
__device__ __forceinline__ void scores_and_previous_pv(float s[ROW_BLOCKS][TILE_N / 8][4],
                                                       float acc[ROW_BLOCKS][D / 8][4],
                                                       const uint32_t pa[ROW_BLOCKS][TILE_N / 16][4],
                                                       const forward_query<T, D> &q, const T *k_tile,
                                                       const T *v_prev, int lane) {
    tile_scores(s, q, k_tile, lane);
    if constexpr (pipelined<D>()) accumulate_pv<T, D>(acc, pa, v_prev, lane);
}

// The online softmax of one key tile up to its rescale factors alpha; only tiles on the causal diagonal or past the
// end of the sequence are MASKED.
template <bool CAUSAL, bool MASKED>
__device__ __forceinline__ void softmax_step(float s[ROW_BLOCKS][TILE_N / 8][4], float m[ROW_BLOCKS][2],
                                             float l[ROW_BLOCKS][2], float alpha[ROW_BLOCKS][2], float scale_log2,
                                             int warp_row0, int c0, int T_len, int lane) {
    if (MASKED) mask_scores<CAUSAL>(s, warp_row0, c0, T_len, lane);
    raise_maxima(s, m, alpha, scale_log2);
    exponentiate_and_sum(s, m, l, alpha, scale_log2);
}

// Shared memory of the forward: Q, two K buffers and V_BUFFERS V buffers.
template <typename T, int D, int V_BUFFERS> constexpr int forward_smem_bytes() {
    return (FWD_TILE_M + (2 + V_BUFFERS) * TILE_N) * (D + ROW_PAD) * sizeof(T);
}

template <typename T, int D, bool CAUSAL>
__global__ void __launch_bounds__(THREADS, 2) attention_fwd_kernel(const attention_fwd_params p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw);  // (FWD_TILE_M, D + ROW_PAD)
    T *ks = qs + FWD_TILE_M * (D + ROW_PAD);  // 2 x (TILE_N, D + ROW_PAD): K of tile kt in buffer kt % 2
    T *vs = ks + 2 * TILE_N * (D + ROW_PAD);  // (TILE_N, D + ROW_PAD), pipelined 2 x: V of tile kt in buffer kt % 2
    constexpr int V_TILE = pipelined<D>() ? TILE_N * (D + ROW_PAD) : 0; // buffer stride
    constexpr bool Q_IN_REGISTERS = q_in_registers<D>();

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const grid_item where = heavy_first_item(forward_query_tiles(p.seq_len), p.n_heads, p.batch, CAUSAL);
    const int qt = where.qt, h = where.slot, b = where.b;
    const int kvh = h / (p.n_heads / p.n_kv_heads);
    const int T_len = p.seq_len, r0 = qt * FWD_TILE_M, warp_row0 = r0 + warp * 16; // block 0's

    const T *q = static_cast<const T *>(p.q) + b * p.q_batch + h * p.q_head;
    const T *k = static_cast<const T *>(p.k) + b * p.k_batch + kvh * p.k_head;
    const T *v = static_cast<const T *>(p.v) + b * p.v_batch + kvh * p.v_head;

    const int n_key_tiles = (T_len + TILE_N - 1) / TILE_N;
    const int kt_end = CAUSAL ? min(n_key_tiles, (r0 + FWD_TILE_M + TILE_N - 1) / TILE_N) : n_key_tiles;
    load_tile_async<T, D, FWD_TILE_M>(qs, q, p.q_row, r0, T_len);
    load_tile_async<T, D, TILE_N>(ks, k, p.k_row, 0, T_len);
    if constexpr (pipelined<D>()) load_tile_async<T, D, TILE_N>(vs + V_TILE, v, p.v_row, T_len, T_len); // zeros
    cp_async_commit();

    forward_query<T, D> q_operand;
    if (!Q_IN_REGISTERS) q_operand.load(qs, warp, lane); // the rows alone, read every k-step
    float acc[ROW_BLOCKS][D / 8][4];
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) acc[mb][dn][0] = acc[mb][dn][1] = acc[mb][dn][2] = acc[mb][dn][3] = 0.0f;
    float m[ROW_BLOCKS][2], l[ROW_BLOCKS][2]; // rows g and g + 8 of each block; l is this thread's share
    uint32_t pa[ROW_BLOCKS][TILE_N / 16][4] = {}; // P of tile kt; pipelined: of tile kt - 1 until the rescale
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++) m[mb][0] = m[mb][1] = -INFINITY, l[mb][0] = l[mb][1] = 0.0f;

    for (int kt = 0; kt < kt_end; kt++) {
        const int c0 = kt * TILE_N;
        cp_async_wait<0>();
        __syncthreads(); // K of tile kt (pipelined: and V of kt - 1) is in; every warp is done with the buffers
                         // it reloads below (V of kt - 1, pipelined kt - 2; K of kt - 1)
        if (Q_IN_REGISTERS && kt == 0) q_operand.load(qs, warp, lane); // Q is in: its fragments
        load_tile_async<T, D, TILE_N>(vs + (kt % 2) * V_TILE, v, p.v_row, c0, T_len);
        cp_async_commit();
        if (kt + 1 < kt_end)
            load_tile_async<T, D, TILE_N>(ks + ((kt + 1) % 2) * TILE_N * (D + ROW_PAD), k, p.k_row, c0 + TILE_N,
                                          T_len);
        cp_async_commit(); // empty after the last tile: D = 128's wait below still leaves exactly V's group open
        const T *v_prev = vs + ((kt + 1) % 2) * V_TILE;

        float s[ROW_BLOCKS][TILE_N / 8][4];
        scores_and_previous_pv<T, D>(s, acc, pa, q_operand, ks + (kt % 2) * TILE_N * (D + ROW_PAD), v_prev, lane);
        // Only the causal diagonal tiles and the last, ragged one mask; a tile entirely after a row's diagonal leaves
        // that row's m, l and acc exactly as they were (all its P are 0, alpha is 1).
        const bool masked = c0 + TILE_N > T_len || (CAUSAL && c0 + TILE_N - 1 > warp_row0);
        float alpha[ROW_BLOCKS][2];
        if (masked)
            softmax_step<CAUSAL, true>(s, m, l, alpha, p.scale_log2, warp_row0, c0, T_len, lane);
        else
            softmax_step<CAUSAL, false>(s, m, l, alpha, p.scale_log2, warp_row0, c0, T_len, lane);
        // Pipelined, the rescale follows P V of tile kt - 1, as it followed that product when it came last in the
        // previous tile: acc = (acc + P(kt - 1) V(kt - 1)) alpha(kt), the mirror's order.
        rescale_accumulators<D>(acc, alpha);
#pragma unroll
        for (int mb = 0; mb < ROW_BLOCKS; mb++) pack_probs<T>(pa[mb], s[mb]);
        if constexpr (!pipelined<D>()) {
            cp_async_wait<1>(); // this thread's part of V of tile kt is in; K of tile kt + 1 may still be on its way
            __syncthreads();    // all of V of tile kt is in
            accumulate_pv<T, D>(acc, pa, vs, lane);
        }
    }
    if constexpr (pipelined<D>()) { // P V of the last tile
        cp_async_wait<0>();
        __syncthreads();
        accumulate_pv<T, D>(acc, pa, vs + ((kt_end - 1) % 2) * V_TILE, lane);
    }

    T *o = static_cast<T *>(p.o) + b * p.o_batch + h * p.o_head;
    float *lse = p.lse + ((int64_t)b * p.n_heads + h) * T_len;
#pragma unroll
    for (int mb = 0; mb < ROW_BLOCKS; mb++) {
#pragma unroll
        for (int i = 0; i < 2; i++) {
            float row_l = l[mb][i];
            row_l += __shfl_xor_sync(0xffffffffu, row_l, 1);
            row_l += __shfl_xor_sync(0xffffffffu, row_l, 2);
            int row = warp_row0 + mb * BLOCK_ROWS + lane / 4 + i * 8;
            if (row >= T_len) continue;
            float inv_l = 1.0f / row_l;
#pragma unroll
            for (int dn = 0; dn < D / 8; dn++) {
                uint32_t packed = mma_op<T>::pack(acc[mb][dn][2 * i] * inv_l, acc[mb][dn][2 * i + 1] * inv_l);
                *reinterpret_cast<uint32_t *>(o + row * p.o_row + dn * 8 + (lane % 4) * 2) = packed;
            }
            if (lane % 4 == 0) lse[row] = (m[mb][i] + log2f(row_l)) * LN2;
        }
    }
}

template <typename T, int D, bool CAUSAL>
static cudaError_t launch(const attention_fwd_params *p, cudaStream_t stream) {
    constexpr int SMEM = forward_smem_bytes<T, D, pipelined<D>() ? 2 : 1>();
    cudaError_t err = cudaFuncSetAttribute(attention_fwd_kernel<T, D, CAUSAL>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM);
    if (err != cudaSuccess) return err;
    dim3 grid;
    if (!heavy_first_grid(forward_query_tiles(p->seq_len), p->n_heads, p->batch, &grid))
        return cudaErrorInvalidConfiguration;
    attention_fwd_kernel<T, D, CAUSAL><<<grid, THREADS, SMEM, stream>>>(*p);
    return cudaGetLastError();
}

template <typename T, int D> static cudaError_t launch_causal(const attention_fwd_params *p, bool causal,
                                                               cudaStream_t stream) {
    return causal ? launch<T, D, true>(p, stream) : launch<T, D, false>(p, stream);
}

template <typename T> static cudaError_t launch_dim(const attention_fwd_params *p, int head_dim, bool causal,
                                                    cudaStream_t stream) {
    return head_dim == 64 ? launch_causal<T, 64>(p, causal, stream) : launch_causal<T, 128>(p, causal, stream);
}

} // namespace avk

cudaError_t attention_fwd_launch(const attention_fwd_params *p, av_dtype dtype, int head_dim, bool causal,
                                 cudaStream_t stream) {
    return dtype == AV_DTYPE_FP16 ? avk::launch_dim<__half>(p, head_dim, causal, stream)
                                  : avk::launch_dim<__nv_bfloat16>(p, head_dim, causal, stream);
}
