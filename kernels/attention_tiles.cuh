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

#include <type_traits>

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

// p, hidden from the compiler's algebra: an address it cannot take apart again (below, it folded a row offset and the
// pass's step back into one row product a pass).
template <typename T> __device__ __forceinline__ const T *opaque(const T *p) {
    asm("" : "+l"(p));
    return p;
}

// This thread's 16-byte chunk of every pass of a tile load: rows row0 + r + pass * ROWS_PER_PASS of one head, column
// col, to dest(pass); rows at or past n_rows are zeros. The source address is formed once and stepped by a multiple
// of the row stride, one 64-bit add a pass (a row product a pass was most of a tile load's instructions, and tile
// loads a fifth of the forward's).
template <typename T, int PASSES, int ROWS_PER_PASS, typename Dest>
__device__ __forceinline__ void copy_chunk_passes(const T *head, int64_t row_stride, int row0, int n_rows, int r,
                                                  int col, Dest dest) {
    const T *src = opaque(head + (int64_t)(row0 + r) * row_stride + col);
    const int64_t step = ROWS_PER_PASS * row_stride;
#pragma unroll
    for (int pass = 0; pass < PASSES; pass++) {
        const bool valid = row0 + r + pass * ROWS_PER_PASS < n_rows;
        cp_async_16(dest(pass), valid ? src + pass * step : head, valid);
    }
}

// Each thread copies the same 16-byte column of every ROWS_PER_PASS-th row, a fixed number of passes, fully unrolled.
// (A strided loop over all chunks, and a column offset kept from one tile load to the next, made ptxas spill the
// D = 128 forward.)
template <typename T, int D, int ROWS = TILE_M>
__device__ __forceinline__ void load_tile_async(T *smem, const T *head, int64_t row_stride, int row0, int n_rows) {
    constexpr int CHUNKS_PER_ROW = D / 8, ROWS_PER_PASS = THREADS / CHUNKS_PER_ROW;
    static_assert(ROWS % ROWS_PER_PASS == 0, "whole passes");
    const int tid = thread_index(), r = tid / CHUNKS_PER_ROW, col = (tid % CHUNKS_PER_ROW) * 8;
    copy_chunk_passes<T, ROWS / ROWS_PER_PASS, ROWS_PER_PASS>(
        head, row_stride, row0, n_rows, r, col,
        [&](int pass) { return smem + (r + pass * ROWS_PER_PASS) * (D + ROW_PAD) + col; });
}

// The same rows in wgmma's interleaved ("no swizzle") K-major layout: core matrices of 8 rows x 16 bytes (128
// contiguous bytes); those of a row group along K (d) CORE_STRIDE bytes apart (the descriptors' leading-dimension
// offset), row groups D / 8 core matrices apart (their stride offset). The 16 spare bytes after each core matrix
// spread a row's chunks over the banks: threads take the chunks in row order as load_tile_async does, so a warp's
// global reads are whole rows (4 x 128 bytes at D = 64, 2 x 256 at D = 128), and each 8-lane phase of its shared
// stores, 8 chunks of one row, lands in 8 distinct groups of 4 banks. (With core matrices packed, 128 bytes apart,
// stores were conflict-free only with 8 rows x 64 bytes a warp: twice the cache lines for the same bytes, and the
// H200 had the wgmma kernels L2-bound at 76-81%.)
constexpr int CORE_STRIDE = 144;
template <int D> __host__ __device__ constexpr int group_bytes() { return D / 8 * CORE_STRIDE; }
template <typename T, int D, int ROWS = TILE_M>
__device__ __forceinline__ void load_tile_interleaved_async(T *smem, const T *head, int64_t row_stride, int row0,
                                                            int n_rows) {
    constexpr int CHUNKS_PER_ROW = D / 8, ROWS_PER_PASS = THREADS / CHUNKS_PER_ROW;
    static_assert(ROWS % ROWS_PER_PASS == 0 && ROWS_PER_PASS % 8 == 0, "whole passes of whole row groups");
    constexpr int PASS_ELEMENTS = ROWS_PER_PASS / 8 * group_bytes<D>() / (int)sizeof(T);
    const int tid = thread_index(), r = tid / CHUNKS_PER_ROW, c = tid % CHUNKS_PER_ROW;
    T *dest = smem + (r / 8 * group_bytes<D>() + c * CORE_STRIDE + r % 8 * 16) / (int)sizeof(T);
    copy_chunk_passes<T, ROWS / ROWS_PER_PASS, ROWS_PER_PASS>(head, row_stride, row0, n_rows, r, c * 8,
                                                             [&](int pass) { return dest + pass * PASS_ELEMENTS; });
}

// Elements of a Q or K tile (TILE_M rows) in shared memory in either layout: the interleaved one is the larger at
// D = 128 (18 against 17 KB), the same at D = 64.
template <typename T, int D> __host__ __device__ constexpr int mma_tile_elements() {
    static_assert(TILE_M == TILE_N, "Q and K tiles alike");
    constexpr int padded = TILE_M * (D + ROW_PAD), interleaved = TILE_M / 8 * group_bytes<D>() / (int)sizeof(T);
    return padded > interleaved ? padded : interleaved;
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

// Hopper's warpgroup MMA (sm_90a builds, __CUDA_ARCH_FEAT_SM90_ALL): 64 query rows are one m64 row block of the
// block's 4 warps, one warpgroup. S = Q K^T is D / 16 wgmma.m64n64k16 a key tile, both operands read from shared
// memory by the tensor cores, where mma.sync needs each warp to load every K fragment into registers (16 ldmatrix and
// 32 mma a warp and tile at D = 64, and each warp reads all of K). The accumulators come back in the mma.sync C layout
// (warp w holds rows 16 w + g, + 8 of each 8-column block), so all that follows is unchanged. A kernel picks its path
// at compile time (the WGMMA parameters below, at most HAS_WGMMA): on the H200 (bench/RESULTS.md, eighth session)
// wgmma was the faster only for the pooling pass at D = 64, and slower for the forward (6-7%) and the P dump (9% at
// D = 64, 31% at D = 128), where Nsight Compute had both L2-bound (76-81%; their tile loads then read half rows, see
// load_tile_interleaved_async). Other builds (the PTX that later GPUs compile) keep ldmatrix and mma.sync on padded
// rows throughout.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
constexpr bool HAS_WGMMA = true;
#else
constexpr bool HAS_WGMMA = false;
#endif

// Shared-memory descriptor of an interleaved tile (load_tile_interleaved_async), no swizzle: start address, leading-
// and stride-dimension byte offsets, all three in 16-byte units.
__device__ __forceinline__ uint64_t tile_descriptor(const void *tile, uint32_t leading, uint32_t stride) {
    return (uint64_t)((smem_address(tile) & 0x3ffff) >> 4) | (uint64_t)(leading >> 4) << 16 |
           (uint64_t)(stride >> 4) << 32;
}
// Q or K as a K-major operand of S = Q K^T: the leading offset goes along K (d: the next 8 columns), the stride offset
// along M or N (the next 8 rows).
template <int D> __device__ __forceinline__ uint64_t interleaved_descriptor(const void *tile) {
    return tile_descriptor(tile, CORE_STRIDE, group_bytes<D>());
}

// The ordering a warpgroup MMA needs: shared memory written through the generic proxy (cp.async, stores) made visible
// to the tensor cores' async proxy, by each writing thread before the barrier that publishes it; register fences
// before the first MMA and around its accumulators after the wait.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Every commit group of this thread but the newest PENDING has completed.
template <int PENDING> __device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(PENDING) : "memory");
}
__device__ __forceinline__ void fence_operand(float &x) { asm volatile("" : "+f"(x)::"memory"); }
__device__ __forceinline__ void fence_operand(uint32_t &x) { asm volatile("" : "+r"(x)::"memory"); }

#define AV_WGMMA_D32 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, " \
                     "%20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define AV_WGMMA_OUT32(d)                                                                                        \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),  \
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),  \
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])

// d (64 x 64 over the warpgroup, this thread's 32) = A B^T + (accumulate ? d : 0), A (64 x 16) and B (64 x 16) K-major
// in shared memory; TYPES the PTX input types.
#define AV_WGMMA_M64N64K16(TYPES)                                                                                \
    "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\nwgmma.mma_async.sync.aligned.m64n64k16.f32." TYPES " " AV_WGMMA_D32 \
    ", %32, %33, p, 1, 1, 0, 0;\n}\n"
template <typename T> struct wgmma_op {
    __device__ __forceinline__ static void run(float d[32], uint64_t a, uint64_t b, int accumulate) {
        if constexpr (std::is_same<T, __half>::value)
            asm volatile(AV_WGMMA_M64N64K16("f16.f16") : AV_WGMMA_OUT32(d) : "l"(a), "l"(b), "r"(accumulate));
        else
            asm volatile(AV_WGMMA_M64N64K16("bf16.bf16") : AV_WGMMA_OUT32(d) : "l"(a), "l"(b), "r"(accumulate));
    }
};

// This thread's copies but the last PENDING groups have landed, and (wgmma) are fenced for the tensor cores; a block
// barrier then publishes them.
template <bool WGMMA, int PENDING> __device__ __forceinline__ void mma_tiles_wait() {
    cp_async_wait<PENDING>();
    if constexpr (WGMMA) fence_proxy_async();
}

// A tile of Q or K in the layout the MMAs read.
template <typename T, int D, bool WGMMA>
__device__ __forceinline__ void load_mma_tile_async(T *smem, const T *head, int64_t row_stride, int row0,
                                                    int n_rows) {
    if constexpr (WGMMA) load_tile_interleaved_async<T, D>(smem, head, row_stride, row0, n_rows);
    else load_tile_async<T, D>(smem, head, row_stride, row0, n_rows);
}

// The accumulators of completed warpgroup MMAs handed back to ordinary code: the empty asm that "writes" each keeps
// the compiler from moving their uses above the wait.
template <int N, typename X> __device__ __forceinline__ void fence_operands(X *x) {
#pragma unroll
    for (int i = 0; i < N; i++) fence_operand(x[i]);
}

// s[mb] (64 x 64 over the warpgroup, this thread's 32) = Q of row block mb (q[mb], interleaved) times K^T (k, 64
// keys) in fp32: D / 16 warpgroup MMAs a row block, a k-step 2 core matrices along both descriptors (their start in
// 16-byte units), committed and waited for together.
template <typename T, int D, int ROW_BLOCKS>
__device__ __forceinline__ void wgmma_scores(float s[ROW_BLOCKS][TILE_N / 8][4], const uint64_t q[ROW_BLOCKS],
                                             uint64_t k) {
    constexpr int KSTEP = 2 * CORE_STRIDE / 16;
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < D / 16; ks++) // d[4 nb + e] = s[mb][nb][e]: the fragments in order
#pragma unroll
        for (int mb = 0; mb < ROW_BLOCKS; mb++)
            wgmma_op<T>::run(&s[mb][0][0], q[mb] + KSTEP * ks, k + KSTEP * ks, ks > 0);
    wgmma_commit();
    wgmma_wait<0>();
    fence_operands<ROW_BLOCKS * TILE_N / 2>(&s[0][0][0]);
}

// Q fragments of one k-step (16 columns from 16 ks) of the 16 rows at q_rows (padded layout).
template <typename T, int D>
__device__ __forceinline__ void load_query_kstep(uint32_t a[4], const T *q_rows, int ks, int lane) {
    ldmatrix_x4(a, q_rows + (lane % 16) * (D + ROW_PAD) + ks * 16 + (lane / 16) * 8);
}

// The Q side of S for ROW_BLOCKS row blocks of 64 query rows, BLOCK_STRIDE elements apart in shared memory (a warp
// owns 16 rows of each), set once per Q tile: their descriptors (wgmma), or this warp's rows (mma.sync) and, when
// IN_REGISTERS, their fragments, which are otherwise read again from shared memory every k-step.
template <typename T, int D, bool WGMMA, int ROW_BLOCKS = 1, int BLOCK_STRIDE = mma_tile_elements<T, D>(),
          bool IN_REGISTERS = true>
struct query_operand {
    uint64_t descriptor[ROW_BLOCKS];
    uint32_t qa[ROW_BLOCKS][IN_REGISTERS && !WGMMA ? D / 16 : 1][4];
    const T *q_warp; // this warp's first row of row block 0
    __device__ __forceinline__ void load(const T *q_tile, int warp, int lane) {
        if constexpr (WGMMA) {
#pragma unroll
            for (int mb = 0; mb < ROW_BLOCKS; mb++)
                descriptor[mb] = interleaved_descriptor<D>(q_tile + mb * BLOCK_STRIDE);
        } else {
            q_warp = q_tile + warp * 16 * (D + ROW_PAD);
            if constexpr (IN_REGISTERS)
#pragma unroll
                for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
                    for (int ks = 0; ks < D / 16; ks++)
                        load_query_kstep<T, D>(qa[mb][ks], q_warp + mb * BLOCK_STRIDE, ks, lane);
        }
    }
    // The A fragments of k-step ks of every row block (mma.sync).
    __device__ __forceinline__ void kstep(uint32_t a[ROW_BLOCKS][4], int ks, int lane) const {
#pragma unroll
        for (int mb = 0; mb < ROW_BLOCKS; mb++) {
            if constexpr (IN_REGISTERS) {
#pragma unroll
                for (int x = 0; x < 4; x++) a[mb][x] = qa[mb][ks][x];
            } else {
                load_query_kstep<T, D>(a[mb], q_warp + mb * BLOCK_STRIDE, ks, lane);
            }
        }
    }
};

// s[mb] (this warp's 16 x TILE_N of row block mb) = Q K^T in fp32, s[mb][nb] the C fragment of keys 8 nb .. 8 nb + 7,
// k-steps over D ascending. By mma.sync each K fragment read from shared memory feeds every row block's products:
// with one row block a warp, shared-memory bandwidth (16 ldmatrix of K for 32 mma a tile at D = 64) held the tensor
// cores near half rate. Every warp of the block calls it alike (wgmma is a warpgroup instruction).
template <typename T, int D, bool WGMMA, int ROW_BLOCKS, int BLOCK_STRIDE, bool IN_REGISTERS>
__device__ __forceinline__ void tile_scores(float s[ROW_BLOCKS][TILE_N / 8][4],
                                            const query_operand<T, D, WGMMA, ROW_BLOCKS, BLOCK_STRIDE, IN_REGISTERS> &q,
                                            const T *k_tile, int lane) {
    if constexpr (WGMMA) {
        wgmma_scores<T, D, ROW_BLOCKS>(s, q.descriptor, interleaved_descriptor<D>(k_tile));
    } else {
#pragma unroll
        for (int mb = 0; mb < ROW_BLOCKS; mb++)
#pragma unroll
            for (int nb = 0; nb < TILE_N / 8; nb++) s[mb][nb][0] = s[mb][nb][1] = s[mb][nb][2] = s[mb][nb][3] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < D / 16; ks++) {
            uint32_t a[ROW_BLOCKS][4];
            q.kstep(a, ks, lane);
#pragma unroll
            for (int nb = 0; nb < TILE_N / 8; nb += 2) {
                uint32_t b[4]; // b0, b1 of key block nb, then of nb + 1
                int key = nb * 8 + (lane / 16) * 8 + lane % 8;
                ldmatrix_x4(b, k_tile + key * (D + ROW_PAD) + ks * 16 + ((lane / 8) % 2) * 8);
#pragma unroll
                for (int mb = 0; mb < ROW_BLOCKS; mb++) {
                    mma_op<T>::run(s[mb][nb], a[mb], b[0], b[1]);
                    mma_op<T>::run(s[mb][nb + 1], a[mb], b[2], b[3]);
                }
            }
        }
    }
}

// The work of one block of a 1-D grid of n_query_tiles x (n_slots x batch) blocks: query tile qt of head slot `slot`
// in batch entry b. A GPU hands out blocks in ascending index as earlier ones finish, so the index order is the
// schedule. Causal query tiles near the end of the sequence have the most key tiles; they come first, for every head
// and batch entry, before any lighter tile (longest processing time first). With the query tile as the fastest index
// of a (tiles, heads, batch) grid, the first wave held every tile of the first few heads, light ones included, and
// the heaviest tiles of the last heads started late: by a model of that dispatch (bench/schedule_model.py), 1.23x
// (forward) and 1.26x (probability pass) the time of this order for 12 heads at n = 8192.
struct grid_item {
    int qt, slot, b;
};
__device__ __forceinline__ grid_item heavy_first_item(int n_query_tiles, int n_slots, int batch, bool causal) {
    const unsigned per_tile = (unsigned)n_slots * (unsigned)batch, rest = blockIdx.x % per_tile;
    const int t = (int)(blockIdx.x / per_tile);
    return {causal ? n_query_tiles - 1 - t : t, (int)(rest % (unsigned)n_slots), (int)(rest / (unsigned)n_slots)};
}
// Its grid; false when the blocks do not fit one grid dimension (2^31 - 1).
inline bool heavy_first_grid(int n_query_tiles, int n_slots, int batch, dim3 *grid) {
    const long long blocks = (long long)n_query_tiles * n_slots * batch;
    *grid = dim3((unsigned)blocks);
    return blocks <= 0x7fffffffLL;
}

// Query row and key of fragment entry e (0..3) of key block nb, relative to the tile.
__device__ __forceinline__ int fragment_row(int warp, int lane, int e) { return warp * 16 + lane / 4 + (e / 2) * 8; }
__device__ __forceinline__ int fragment_col(int lane, int nb, int e) { return nb * 8 + (lane % 4) * 2 + (e % 2); }

} // namespace avk

#endif
