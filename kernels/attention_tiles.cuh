// Device building blocks shared by attention_fwd.cu and attention_probs.cu: the tile constants, cp.async tile
// loads, ldmatrix fragment loads and the m16n8k16 tensor-core product for fp16 and bf16.
//
// Fragment layout of mma.m16n8k16 (g = lane / 4, t = lane % 4), which the softmax code relies on:
//   A (16 x 16, row-major): a0 (g, 2t..2t+1), a1 (g + 8, 2t..), a2 (g, 2t + 8..), a3 (g + 8, 2t + 8..)
//   B (16 x 8, column-major): b0 (k 2t..2t+1, n g), b1 (k 2t + 8.., n g)
//   C (16 x 8, fp32): c0, c1 (g, 2t..2t+1), c2, c3 (g + 8, 2t..2t+1)
#ifndef AV_ATTENTION_TILES_CUH
#define AV_ATTENTION_TILES_CUH

#include "attnviz_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

namespace avk {

constexpr int TILE_M = AV_ATTENTION_TILE_M; // query rows per block: 4 warps x 16 rows
constexpr int TILE_N = AV_ATTENTION_TILE_N; // keys per step
constexpr int WARPS = 4;
constexpr int THREADS = WARPS * 32;
// 16 bytes of padding per shared-memory row keep the 8 row addresses of one ldmatrix in distinct banks.
constexpr int ROW_PAD = 8;
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t smem_address(const void *p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared without passing through registers; VALID false fills zeros (rows past the sequence).
__device__ __forceinline__ void cp_async_16(void *dst, const void *src, bool valid) {
    int bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int PENDING> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING));
}

// Rows [row0, row0 + ROWS) of one head (row stride in elements) into smem (ROWS, D + ROW_PAD); rows at or past
// n_rows are zeros. One commit group is left to the caller.
// threadIdx.x read anew where it is used: volatile, so the compiler neither hoists it nor keeps what is derived from
// it alive across a loop (at D = 128 the forward has no register to spare for a tile load's column offset).
__device__ __forceinline__ int thread_index() {
    int t;
    asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(t));
    return t;
}

// Each thread copies the same 16-byte column of every ROWS_PER_PASS-th row, a fixed number of passes, fully unrolled.
// (A strided loop over all chunks, and a column offset kept from one tile load to the next, made ptxas spill the
// D = 128 forward.)
template <typename T, int D, int ROWS = TILE_M>
__device__ __forceinline__ void load_tile_async(T *smem, const T *head, int64_t row_stride, int row0, int n_rows) {
    constexpr int CHUNKS_PER_ROW = D / 8, ROWS_PER_PASS = THREADS / CHUNKS_PER_ROW;
    static_assert(ROWS % ROWS_PER_PASS == 0, "whole passes");
    const int tid = thread_index(), r_thread = tid / CHUNKS_PER_ROW, col = (tid % CHUNKS_PER_ROW) * 8;
#pragma unroll
    for (int pass = 0; pass < ROWS / ROWS_PER_PASS; pass++) {
        const int r = r_thread + pass * ROWS_PER_PASS;
        const bool valid = row0 + r < n_rows;
        const T *src = valid ? head + (int64_t)(row0 + r) * row_stride + col : head;
        cp_async_16(smem + r * (D + ROW_PAD) + col, src, valid);
    }
}

// 2^x as one MUFU.EX2, denormal results flushed to zero. exp2f adds range scaling around it for denormal results
// (three more instructions per probability, a third of the softmax's issue slots); P below 2^-126 is 0 in fp16 and
// bf16 anyway, and 1e-38 is far below every tolerance of an fp32 P.
__device__ __forceinline__ float exp2_ftz(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_address(p)));
}

template <typename T> struct mma_op;

template <> struct mma_op<__half> {
    __device__ __forceinline__ static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                     "{%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
        __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
};

template <> struct mma_op<__nv_bfloat16> {
    __device__ __forceinline__ static void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                     "{%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
};

// The A fragments of this warp's 16 query rows, all of D: qa[ks] covers columns 16 ks .. 16 ks + 15.
template <typename T, int D>
__device__ __forceinline__ void load_query_fragments(uint32_t qa[D / 16][4], const T *qs, int warp, int lane) {
#pragma unroll
    for (int ks = 0; ks < D / 16; ks++)
        ldmatrix_x4(qa[ks], qs + (warp * 16 + lane % 16) * (D + ROW_PAD) + ks * 16 + (lane / 16) * 8);
}

// s (16 x TILE_N of this warp) = Q K^T in fp32: s[nb] is the C fragment of keys 8 nb .. 8 nb + 7, k-steps over D in
// ascending order.
template <typename T, int D>
__device__ __forceinline__ void score_fragments(float s[TILE_N / 8][4], const uint32_t qa[D / 16][4], const T *ks_tile,
                                                int lane) {
#pragma unroll
    for (int nb = 0; nb < TILE_N / 8; nb++) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < D / 16; ks++) {
#pragma unroll
        for (int nb = 0; nb < TILE_N / 8; nb += 2) {
            uint32_t b[4]; // b0, b1 of key block nb, then of nb + 1
            int key = nb * 8 + (lane / 16) * 8 + lane % 8;
            ldmatrix_x4(b, ks_tile + key * (D + ROW_PAD) + ks * 16 + ((lane / 8) % 2) * 8);
            mma_op<T>::run(s[nb], qa[ks], b[0], b[1]);
            mma_op<T>::run(s[nb + 1], qa[ks], b[2], b[3]);
        }
    }
}

// Query row and key of fragment entry e (0..3) of key block nb, relative to the tile.
__device__ __forceinline__ int fragment_row(int warp, int lane, int e) { return warp * 16 + lane / 4 + (e / 2) * 8; }
__device__ __forceinline__ int fragment_col(int lane, int nb, int e) { return nb * 8 + (lane % 4) * 2 + (e % 2); }

} // namespace avk

#endif
