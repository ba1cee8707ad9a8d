// attention_fwd: O = softmax(Q K^T * scale) V and LSE, one block of 4 warps per (query tile, head, batch).
//
// Transliteration of forward_query_tile in host/attention_tiled.c: the same 64 x 64 tiles, key tiles in ascending
// order up to the diagonal tile when causal, online softmax in the log2 domain with fp32 statistics, P rounded to
// the input dtype as the A operand of P V. Each warp owns 16 query rows; S and O live in mma.m16n8k16 fragments.
// K and V stream through shared memory with cp.async: V of tile kt loads while S = Q K^T runs, K of tile kt + 1
// while the softmax and P V run.
#include "attention_fwd.cuh"
#include "attention_tiles.cuh"

namespace avk {

template <typename T, int D, bool CAUSAL>
__global__ void __launch_bounds__(THREADS) attention_fwd_kernel(const attention_fwd_params p) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *qs = reinterpret_cast<T *>(smem_raw); // (TILE_M, D + ROW_PAD)
    T *ks = qs + TILE_M * (D + ROW_PAD);      // (TILE_N, D + ROW_PAD)
    T *vs = ks + TILE_N * (D + ROW_PAD);      // (TILE_N, D + ROW_PAD)

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int n_query_tiles = gridDim.x;
    // Causal tiles near the end of the sequence have the most key tiles: start them first.
    const int qt = CAUSAL ? n_query_tiles - 1 - blockIdx.x : blockIdx.x;
    const int h = blockIdx.y, b = blockIdx.z;
    const int kvh = h / (p.n_heads / p.n_kv_heads);
    const int T_len = p.seq_len, r0 = qt * TILE_M;

    const T *q = static_cast<const T *>(p.q) + b * p.q_batch + h * p.q_head;
    const T *k = static_cast<const T *>(p.k) + b * p.k_batch + kvh * p.k_head;
    const T *v = static_cast<const T *>(p.v) + b * p.v_batch + kvh * p.v_head;

    const int kt_end = CAUSAL ? qt + 1 : (T_len + TILE_N - 1) / TILE_N;
    load_tile_async<T, D>(qs, q, p.q_row, r0, T_len);
    load_tile_async<T, D>(ks, k, p.k_row, 0, T_len);
    cp_async_commit();

    uint32_t qa[D / 16][4];
    float acc[D / 8][4];
#pragma unroll
    for (int dn = 0; dn < D / 8; dn++) acc[dn][0] = acc[dn][1] = acc[dn][2] = acc[dn][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}; // rows g and g + 8 of this warp, log2 domain
    float l[2] = {0.0f, 0.0f};           // this thread's share of the row sums; the quad adds them at the end

    for (int kt = 0; kt < kt_end; kt++) {
        cp_async_wait<0>();
        __syncthreads(); // K of tile kt is in; every warp is done with V of tile kt - 1
        if (kt == 0) load_query_fragments<T, D>(qa, qs, warp, lane);
        load_tile_async<T, D>(vs, v, p.v_row, kt * TILE_N, T_len);
        cp_async_commit();

        float s[TILE_N / 8][4];
        score_fragments<T, D>(s, qa, ks, lane);
        __syncthreads(); // every warp is done with K of tile kt
        if (kt + 1 < kt_end) {
            load_tile_async<T, D>(ks, k, p.k_row, (kt + 1) * TILE_N, T_len);
            cp_async_commit();
        }

        // Scale into the log2 domain and mask; then the new row maxima across the quad that shares a row.
        float m_new[2] = {m[0], m[1]};
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int row = r0 + fragment_row(warp, lane, e), key = kt * TILE_N + fragment_col(lane, nb, e);
                bool masked = key >= T_len || (CAUSAL && key > row);
                s[nb][e] = masked ? -INFINITY : __fmul_rn(s[nb][e], p.scale_log2);
                m_new[e / 2] = fmaxf(m_new[e / 2], s[nb][e]);
            }
        }
#pragma unroll
        for (int i = 0; i < 2; i++) {
            m_new[i] = fmaxf(m_new[i], __shfl_xor_sync(0xffffffffu, m_new[i], 1));
            m_new[i] = fmaxf(m_new[i], __shfl_xor_sync(0xffffffffu, m_new[i], 2));
        }
        // m_new is finite: key 0 of tile 0 is visible to every row, padding rows included.
        float alpha[2] = {exp2f(m[0] - m_new[0]), exp2f(m[1] - m_new[1])};
        float row_sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                s[nb][e] = exp2f(s[nb][e] - m_new[e / 2]);
                row_sum[e / 2] += s[nb][e];
            }
        }
#pragma unroll
        for (int i = 0; i < 2; i++) {
            l[i] = l[i] * alpha[i] + row_sum[i];
            m[i] = m_new[i];
        }
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) {
            acc[dn][0] *= alpha[0];
            acc[dn][1] *= alpha[0];
            acc[dn][2] *= alpha[1];
            acc[dn][3] *= alpha[1];
        }

        if (kt + 1 < kt_end) cp_async_wait<1>();
        else cp_async_wait<0>();
        __syncthreads(); // V of tile kt is in

        // O += P V: the C fragments of two key blocks are the A fragment of one 16-key step.
#pragma unroll
        for (int kk = 0; kk < TILE_N / 16; kk++) {
            uint32_t pa[4] = {mma_op<T>::pack(s[2 * kk][0], s[2 * kk][1]),
                              mma_op<T>::pack(s[2 * kk][2], s[2 * kk][3]),
                              mma_op<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              mma_op<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int dn = 0; dn < D / 8; dn += 2) {
                uint32_t bv[4]; // b0, b1 of output columns 8 dn.., then of 8 (dn + 1)..
                int key = kk * 16 + ((lane / 8) % 2) * 8 + lane % 8;
                ldmatrix_x4_trans(bv, vs + key * (D + ROW_PAD) + (dn + lane / 16) * 8);
                mma_op<T>::run(acc[dn], pa, bv[0], bv[1]);
                mma_op<T>::run(acc[dn + 1], pa, bv[2], bv[3]);
            }
        }
    }

#pragma unroll
    for (int i = 0; i < 2; i++) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
    }
    T *o = static_cast<T *>(p.o) + b * p.o_batch + h * p.o_head;
    float *lse = p.lse + ((int64_t)b * p.n_heads + h) * T_len;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        int row = r0 + fragment_row(warp, lane, 2 * i);
        if (row >= T_len) continue;
        float inv_l = 1.0f / l[i];
#pragma unroll
        for (int dn = 0; dn < D / 8; dn++) {
            uint32_t packed = mma_op<T>::pack(acc[dn][2 * i] * inv_l, acc[dn][2 * i + 1] * inv_l);
            *reinterpret_cast<uint32_t *>(o + row * p.o_row + dn * 8 + (lane % 4) * 2) = packed;
        }
        if (lane % 4 == 0) lse[row] = (m[i] + log2f(l[i])) * LN2;
    }
}

template <typename T, int D, bool CAUSAL>
static cudaError_t launch(const attention_fwd_params *p, cudaStream_t stream) {
    constexpr int SMEM = 3 * TILE_M * (D + ROW_PAD) * sizeof(T);
    cudaError_t err = cudaFuncSetAttribute(attention_fwd_kernel<T, D, CAUSAL>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM);
    if (err != cudaSuccess) return err;
    dim3 grid((p->seq_len + TILE_M - 1) / TILE_M, p->n_heads, p->batch);
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
