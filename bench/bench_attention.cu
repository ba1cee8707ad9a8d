// Kernel benchmarks of include/attnviz_kernels.h on one GPU; one JSON line per measurement:
//   {"name", "shape", "dtype", "median", "min", "max", "unit", "baseline", "ratio", "floor", "pct_of_floor"}
// Times are CUDA-event medians over >= 20 repetitions after warm-up, rotating among several input sets so that
// repeated runs do not measure L2. The two ceilings are measured here first: device-to-device copy bandwidth
// (bytes read + written) and a large bf16 cuBLAS GEMM rate.
//   forward         vs the plain path (cuBLAS S = Q K^T, a softmax kernel, cuBLAS P V); floor: flops / GEMM rate
//   probs_packed    exact fp16 packed-causal dump of every P; floor: bytes written / copy bandwidth
//   write_ceiling   the dump's bytes written by cudaMemsetAsync alone: the write rate with nothing computed
//   write_tile_order  the dump's writes alone, in its order and at its blocks an SM (write_tile_order); and
//                   the same in steps of 256 keys (write_tile_order_256)
//   pooled_512      pooled 512 x 512 maps of every head: the pooling pass alone (LSE from an earlier forward) and
//                   forward + pass; baseline the forward alone, so ratio = forward / this (target: pass alone
//                   >= 1 / 1.5, i.e. at most 1.5x the forward)
// Shapes: GPT-2 small (12 heads, d 64) and Llama-3-8B (32 query heads, 8 key/value heads, d 128), one causal
// sequence of n = 512, 2048, 4096, 8192, 32768, and 65536 for GPT-2 (--quick: 8192 only).
// Build: the bench_attention target of every CUDA build (CMakeLists.txt); run: bench/gpu_kernels.sh.
#include <attnviz_kernels.h>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CUDA_CHECK(call)                                                                                       \
    do {                                                                                                       \
        cudaError_t err_ = (call);                                                                             \
        if (err_ != cudaSuccess) {                                                                             \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_));            \
            exit(1);                                                                                           \
        }                                                                                                      \
    } while (0)
#define AV_CHECK(call)                                                                                         \
    do {                                                                                                       \
        av_status st_ = (call);                                                                                \
        if (st_ != AV_SUCCESS) {                                                                               \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, av_last_error());                     \
            exit(1);                                                                                           \
        }                                                                                                      \
    } while (0)
#define CUBLAS_CHECK(call)                                                                                     \
    do {                                                                                                       \
        cublasStatus_t st_ = (call);                                                                           \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                                    \
            fprintf(stderr, "%s:%d %s: cuBLAS status %d\n", __FILE__, __LINE__, #call, (int)st_);              \
            exit(1);                                                                                           \
        }                                                                                                      \
    } while (0)

static const int WARMUP = 3, REPS = 20, SETS = 3;

struct timing {
    double median, min, max; // milliseconds
};

// Times RUN(rep) REPS times (after WARMUP untimed calls), one event pair per repetition.
template <typename F> static timing time_ms(F run) {
    for (int i = 0; i < WARMUP; i++) run(i);
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<cudaEvent_t> start(REPS), stop(REPS);
    for (int i = 0; i < REPS; i++) {
        CUDA_CHECK(cudaEventCreate(&start[i]));
        CUDA_CHECK(cudaEventCreate(&stop[i]));
    }
    for (int i = 0; i < REPS; i++) {
        CUDA_CHECK(cudaEventRecord(start[i]));
        run(i);
        CUDA_CHECK(cudaEventRecord(stop[i]));
    }
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaGetLastError());
    std::vector<double> ms(REPS);
    for (int i = 0; i < REPS; i++) {
        float t;
        CUDA_CHECK(cudaEventElapsedTime(&t, start[i], stop[i]));
        ms[i] = t;
        cudaEventDestroy(start[i]);
        cudaEventDestroy(stop[i]);
    }
    std::sort(ms.begin(), ms.end());
    return {ms[REPS / 2], ms.front(), ms.back()};
}

static void emit(const char *name, const char *shape, const char *dtype, timing t, const char *unit, double value,
                 double value_min, double value_max, double baseline, double floor) {
    double ratio = baseline > 0 ? (strcmp(unit, "ms") == 0 ? baseline / value : value / baseline) : 0.0;
    double pct = floor > 0 ? (strcmp(unit, "ms") == 0 ? 100.0 * floor / value : 100.0 * value / floor) : 0.0;
    printf("{\"name\": \"%s\", \"shape\": \"%s\", \"dtype\": \"%s\", \"median\": %.6g, \"min\": %.6g, \"max\": %.6g, "
           "\"unit\": \"%s\", \"baseline\": %.6g, \"ratio\": %.4g, \"floor\": %.6g, \"pct_of_floor\": %.4g, "
           "\"median_ms\": %.6g}\n",
           name, shape, dtype, value, value_min, value_max, unit, baseline, ratio, floor, pct, t.median);
    fflush(stdout);
}

// Never time zeros: uniform values in [-1, 1) as bf16.
__global__ void fill_random_bf16(__nv_bfloat16 *x, size_t n, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed * 97531u;
        h ^= h >> 15;
        h *= 2246822519u;
        h ^= h >> 13;
        x[i] = __float2bfloat16((h & 0xffffff) / 8388608.0f - 1.0f);
    }
}

static __nv_bfloat16 *random_buffer(size_t n, unsigned seed) {
    __nv_bfloat16 *x;
    CUDA_CHECK(cudaMalloc(&x, n * sizeof *x));
    fill_random_bf16<<<1024, 256>>>(x, n, seed);
    CUDA_CHECK(cudaGetLastError());
    return x;
}

// Row softmax of the plain path: s (rows, n) fp32 scores -> p (rows, n) bf16, causal rows masked past the diagonal.
__global__ void softmax_rows(const float *s, __nv_bfloat16 *p, int n, float scale, int causal) {
    int row = blockIdx.x, i = row % n;
    const float *sr = s + (size_t)row * n;
    __nv_bfloat16 *pr = p + (size_t)row * n;
    int visible = causal ? i + 1 : n;
    __shared__ float red[32];
    float m = -INFINITY;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) m = fmaxf(m, sr[j] * scale);
    for (int o = 16; o; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = m;
    __syncthreads();
    m = red[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++) m = fmaxf(m, red[w]);
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < visible; j += blockDim.x) sum += __expf(sr[j] * scale - m);
    for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int w = 0; w < (int)blockDim.x / 32; w++) sum += red[w];
    float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        pr[j] = __float2bfloat16(j < visible ? __expf(sr[j] * scale - m) * inv : 0.0f);
}

// The dump's writes alone, in its order and at its occupancy, with 1.0 for every P: a block (heaviest first: query
// tiles from the last, heads fastest) takes 128 query rows, a warp 16 rows of each 64-row half, and walks the keys in
// ascending steps of `width` (the dump's: its key tile, 64), writing each row's segment of the step as the 16-byte
// chunks whose last element (or the row's) lies in it, 8 lanes a row; a chunk that the row only partly covers (its
// ends) element by element. So every element once, whole chunks by one store, as kernels/attention_probs.cu's writer
// (its short-prompt key split aside). Wider steps write longer runs of each row at a time. The unused dynamic shared
// memory holds the blocks an SM to the dump's.
// Chunks [c_lo, c_hi) of the row at [base, row_end) that step kt writes.
__host__ __device__ inline void segment_chunks(int64_t base, int64_t row_end, int kt, int width, int64_t *c_lo,
                                               int64_t *c_hi) {
    const int64_t from = base + (int64_t)width * kt, seg_end = from + width < row_end ? from + width : row_end;
    *c_lo = from / 8;
    *c_hi = seg_end == row_end ? (row_end - 1) / 8 + 1 : seg_end / 8;
}
__global__ void write_tile_order(__half *packed, int n, int heads, int width) {
    const int n_qt = (n + 127) / 128, h = blockIdx.x % heads, qt = n_qt - 1 - blockIdx.x / heads;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __half *head = packed + (int64_t)h * n * (n + 1) / 2;
    const __half one = __float2half(1.0f);
    const uint4 ones = make_uint4(0x3c003c00u, 0x3c003c00u, 0x3c003c00u, 0x3c003c00u);
    const int kt_end = (min(n, qt * 128 + 128) - 1) / width + 1;
    for (int kt = 0; kt < kt_end; kt++)
        for (int half_tile = 0; half_tile < 2; half_tile++)
            for (int pass = 0; pass < 4; pass++) {
                const int64_t i = qt * 128 + half_tile * 64 + warp * 16 + pass * 4 + lane / 8;
                if (i >= n || (int64_t)width * kt > i) continue;
                const int64_t base = i * (i + 1) / 2, row_end = base + i + 1;
                int64_t c_lo, c_hi;
                segment_chunks(base, row_end, kt, width, &c_lo, &c_hi);
                for (int64_t c = c_lo + lane % 8; c < c_hi; c += 8) {
                    const int64_t e0 = 8 * c > base ? 8 * c : base, e1 = 8 * c + 8 < row_end ? 8 * c + 8 : row_end;
                    if (e1 - e0 == 8)
                        __stcs(reinterpret_cast<uint4 *>(head + e0), ones);
                    else
                        for (int64_t e = e0; e < e1; e++) head[e] = one;
                }
            }
}

static const int WRITE_WIDTHS[] = {64, 256}; // write_tile_order's steps: the dump's key tile, and four of them

// Exits unless write_tile_order writes every element of a ragged case once, in each of its steps.
static void check_write_tile_order() {
    const int n = 301, heads = 2;
    const size_t entries = (size_t)heads * n * (n + 1) / 2;
    __half *dump;
    CUDA_CHECK(cudaMalloc(&dump, entries * 2));
    std::vector<uint16_t> written(entries);
    for (int width : WRITE_WIDTHS) {
        CUDA_CHECK(cudaMemset(dump, 0xff, entries * 2));
        write_tile_order<<<(n + 127) / 128 * heads, 128>>>(dump, n, heads, width);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaMemcpy(written.data(), dump, entries * 2, cudaMemcpyDeviceToHost));
        for (size_t e = 0; e < entries; e++)
            if (written[e] != 0x3c00) {
                fprintf(stderr, "write_tile_order: entry %zu of n = %d in steps of %d not written once\n", e, n,
                        width);
                exit(1);
            }
    }
    cudaFree(dump);
}

// Times write_tile_order over the dump of `heads` heads of n tokens at blocks_per_sm blocks an SM.
static timing time_write_tile_order(__half *dump, int n, int heads, int width, int blocks_per_sm) {
    int device, sm_bytes, reserved;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sm_bytes, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device));
    const int smem = sm_bytes / blocks_per_sm - reserved;
    CUDA_CHECK(cudaFuncSetAttribute(write_tile_order, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return time_ms([&](int) { write_tile_order<<<(n + 127) / 128 * heads, 128, smem>>>(dump, n, heads, width); });
}

struct problem {
    int batch, heads, kv_heads, n, d;
    std::vector<__nv_bfloat16 *> q, k, v; // SETS input sets: q (B, H, n, d), k and v (B, KV, n, d)
    __nv_bfloat16 *o;
    float *lse;
    av_attention_shape shape;
    av_attention_tensor tensor(void *data, int tensor_heads) const {
        return {data, (int64_t)tensor_heads * n * d, (int64_t)n * d, d};
    }
    av_attention_tensor q_tensor(void *data) const { return tensor(data, heads); }
    av_attention_tensor kv_tensor(void *data) const { return tensor(data, kv_heads); }
};

static problem make_problem(int batch, int heads, int kv_heads, int n, int d) {
    problem p{batch, heads, kv_heads, n, d, {}, {}, {}, nullptr, nullptr, {}};
    size_t q_elems = (size_t)batch * heads * n * d, kv_elems = (size_t)batch * kv_heads * n * d;
    for (int s = 0; s < SETS; s++) {
        p.q.push_back(random_buffer(q_elems, 3 * s + 1));
        p.k.push_back(random_buffer(kv_elems, 3 * s + 2));
        p.v.push_back(random_buffer(kv_elems, 3 * s + 3));
    }
    CUDA_CHECK(cudaMalloc(&p.o, q_elems * 2));
    CUDA_CHECK(cudaMalloc(&p.lse, (size_t)batch * heads * n * sizeof(float)));
    p.shape = {batch, heads, kv_heads, n, d, AV_DTYPE_BF16, 1, 0.0f};
    return p;
}

static void free_problem(problem &p) {
    for (int s = 0; s < SETS; s++) {
        cudaFree(p.q[s]);
        cudaFree(p.k[s]);
        cudaFree(p.v[s]);
    }
    cudaFree(p.o);
    cudaFree(p.lse);
}

static void forward(problem &p, int set) {
    AV_CHECK(av_attention_forward(&p.shape, p.q_tensor(p.q[set]), p.kv_tensor(p.k[set]), p.kv_tensor(p.v[set]),
                                  p.q_tensor(p.o), p.lse, nullptr));
}

// The plain path: batched cuBLAS S = Q K^T (fp32 out), row softmax to bf16 P, batched cuBLAS O = P V. With grouped
// heads, one batched call per key/value head covers the G query heads that share it (stride 0 on K and V).
static timing time_plain(cublasHandle_t handle, problem &p, float *s, __nv_bfloat16 *probs) {
    int n = p.n, d = p.d, G = p.heads / p.kv_heads, groups = p.batch * p.kv_heads;
    float one = 1.0f, zero = 0.0f, scale = 1.0f / sqrtf((float)d);
    int64_t nd = (int64_t)n * d, nn = (int64_t)n * n;
    // Without grouping every head is its own group: one call for all of them.
    int calls = G == 1 ? 1 : groups, batch = G == 1 ? groups : G;
    int64_t kv_stride = G == 1 ? nd : 0;
    return time_ms([&](int rep) {
        int set = rep % SETS;
        for (int c = 0; c < calls; c++) {
            const __nv_bfloat16 *q = p.q[set] + (size_t)c * G * nd, *k = p.k[set] + (size_t)c * nd;
            const __nv_bfloat16 *v = p.v[set] + (size_t)c * nd;
            float *sc = s + (size_t)c * G * nn;
            __nv_bfloat16 *pc = probs + (size_t)c * G * nn, *oc = p.o + (size_t)c * G * nd;
            // Column-major view of row-major S = Q K^T: S^T (n x n) = K Q^T.
            CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, n, d, &one, k, CUDA_R_16BF,
                                                    d, kv_stride, q, CUDA_R_16BF, d, nd, &zero, sc, CUDA_R_32F, n,
                                                    nn, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            softmax_rows<<<batch * n, 256>>>(sc, pc, n, scale, 1);
            CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, d, n, n, &one, v, CUDA_R_16BF,
                                                    d, kv_stride, pc, CUDA_R_16BF, n, nn, &zero, oc, CUDA_R_16BF, d,
                                                    nd, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        }
    });
}

static double copy_bandwidth_gbs() {
    size_t bytes = (size_t)1 << 30;
    void *a, *b;
    CUDA_CHECK(cudaMalloc(&a, bytes));
    CUDA_CHECK(cudaMalloc(&b, bytes));
    CUDA_CHECK(cudaMemset(a, 1, bytes));
    timing t = time_ms([&](int) { CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
    double gbs = 2.0 * bytes / (t.median * 1e6);
    emit("copy_bandwidth", "1 GiB d2d, read + write", "u8", t, "GB/s", gbs, 2.0 * bytes / (t.max * 1e6),
         2.0 * bytes / (t.min * 1e6), 0, 0);
    cudaFree(a);
    cudaFree(b);
    return gbs;
}

static double gemm_tflops(cublasHandle_t handle) {
    int n = 8192;
    __nv_bfloat16 *a = random_buffer((size_t)n * n, 11), *b = random_buffer((size_t)n * n, 12), *c;
    CUDA_CHECK(cudaMalloc(&c, (size_t)n * n * 2));
    float one = 1.0f, zero = 0.0f;
    timing t = time_ms([&](int) {
        CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a, CUDA_R_16BF, n, b, CUDA_R_16BF,
                                  n, &zero, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    double flops = 2.0 * n * n * (double)n;
    double rate = flops / (t.median * 1e9);
    emit("gemm_rate", "8192^3", "bf16", t, "TFLOP/s", rate, flops / (t.max * 1e9), flops / (t.min * 1e9), 0, 0);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    return rate;
}

int main(int argc, char **argv) {
    bool quick = argc > 1 && !strcmp(argv[1], "--quick"); // one size per measurement
    cublasHandle_t handle;
    CUBLAS_CHECK(cublasCreate(&handle));
    double copy_gbs = copy_bandwidth_gbs(), peak_tflops = gemm_tflops(handle);
    check_write_tile_order();

    // The attention shapes of GPT-2 small and Llama-3-8B (grouped-query), causal, one sequence.
    // GPT-2's shape also at n = 65536, where the 512 x 512 pooled map's pool (128) spans whole tiles.
    struct model_shape {
        const char *name;
        int heads, kv_heads, d, max_n;
    };
    const model_shape models[] = {{"gpt2-small", 12, 12, 64, 65536}, {"llama3-8b", 32, 8, 128, 32768}};
    const int lengths[] = {512, 2048, 4096, 8192, 32768, 65536};
    for (const model_shape &m : models) {
        for (int n : lengths) {
            if ((quick && n != 8192) || n > m.max_n) continue;
            problem p = make_problem(1, m.heads, m.kv_heads, n, m.d);
            int d = m.d;
            char shape[96];
            snprintf(shape, sizeof shape, "%s H=%d KV=%d n=%d d=%d causal", m.name, m.heads, m.kv_heads, n, d);
            double flops = 4.0 * p.batch * p.heads * (double)n * n * d / 2.0; // causal: half of QK^T and PV
            timing fwd = time_ms([&](int rep) { forward(p, rep % SETS); });

            // The plain path needs S and P in full: at long n it does not fit, and is reported as 0 (not run).
            float *s = nullptr;
            __nv_bfloat16 *probs = nullptr;
            size_t nn = (size_t)p.batch * p.heads * n * n;
            timing plain{0, 0, 0};
            if (cudaMalloc(&s, nn * sizeof(float)) == cudaSuccess && cudaMalloc(&probs, nn * 2) == cudaSuccess)
                plain = time_plain(handle, p, s, probs);
            cudaGetLastError();
            cudaFree(s);
            cudaFree(probs);
            double floor_ms = flops / (peak_tflops * 1e9);
            emit("forward", shape, "bf16", fwd, "ms", fwd.median, fwd.min, fwd.max, plain.median, floor_ms);
            emit("forward_tflops", shape, "bf16", fwd, "TFLOP/s", flops / (fwd.median * 1e9),
                 flops / (fwd.max * 1e9), flops / (fwd.min * 1e9), plain.median > 0 ? flops / (plain.median * 1e9) : 0,
                 peak_tflops);

            // Pooled 512 x 512 maps of every head: the forward (for LSE) plus the pooling pass.
            av_probs_request pooled_rq = {};
            pooled_rq.pool = n / 512;
            float *pooled;
            CUDA_CHECK(cudaMalloc(&pooled, (size_t)p.batch * p.heads * 512 * 512 * sizeof(float)));
            pooled_rq.pooled = pooled;
            size_t ws_bytes;
            AV_CHECK(av_attention_probs_workspace(&p.shape, &pooled_rq, &ws_bytes));
            void *ws = nullptr; // none when the pool divides the tile size (every bin inside one tile)
            if (ws_bytes) CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
            timing with_forward = time_ms([&](int rep) {
                int set = rep % SETS;
                forward(p, set);
                AV_CHECK(av_attention_probs(&p.shape, p.q_tensor(p.q[set]), p.kv_tensor(p.k[set]), p.lse, &pooled_rq,
                                            ws, ws_bytes, nullptr));
            });
            emit("pooled_512_with_forward", shape, "bf16", with_forward, "ms", with_forward.median,
                 with_forward.min, with_forward.max, fwd.median, 0);
            // The pass alone reads the LSE of the last forward above for every input set: same work, other values.
            timing pass = time_ms([&](int rep) {
                int set = rep % SETS;
                AV_CHECK(av_attention_probs(&p.shape, p.q_tensor(p.q[set]), p.kv_tensor(p.k[set]), p.lse, &pooled_rq,
                                            ws, ws_bytes, nullptr));
            });
            emit("pooled_512_pass", shape, "bf16", pass, "ms", pass.median, pass.min, pass.max, fwd.median, 0);
            cudaFree(ws);
            cudaFree(pooled);

            // Exact fp16 packed-causal dump of every P (after the forward, which is not timed here).
            av_probs_request dump_rq = {};
            dump_rq.probs_dtype = AV_DTYPE_FP16;
            dump_rq.layout = AV_PROBS_PACKED_CAUSAL;
            size_t entries = (size_t)p.batch * p.heads * n * (size_t)(n + 1) / 2;
            void *dump;
            if (cudaMalloc(&dump, entries * 2) == cudaSuccess) {
                dump_rq.probs = dump;
                for (int set = 0; set < SETS; set++) forward(p, set); // the LSE of the last set is used for all
                timing dump_t = time_ms([&](int rep) {
                    int set = rep % SETS;
                    AV_CHECK(av_attention_probs(&p.shape, p.q_tensor(p.q[set]), p.kv_tensor(p.k[set]), p.lse,
                                                &dump_rq, nullptr, 0, nullptr));
                });
                double bytes = entries * 2.0;
                emit("probs_packed_fp16", shape, "fp16", dump_t, "GB/s", bytes / (dump_t.median * 1e6),
                     bytes / (dump_t.max * 1e6), bytes / (dump_t.min * 1e6), copy_gbs, copy_gbs);
                // The same bytes written with nothing computed: how fast this card writes a buffer of this size
                // (the copy above also reads, and a dump the size of L2 partly stays there).
                timing write_t = time_ms([&](int rep) { CUDA_CHECK(cudaMemsetAsync(dump, rep & 0xff, entries * 2)); });
                emit("write_ceiling_fp16", shape, "fp16", write_t, "GB/s", bytes / (write_t.median * 1e6),
                     bytes / (write_t.max * 1e6), bytes / (write_t.min * 1e6), copy_gbs, copy_gbs);
                // The dump's writes alone in its order, at the blocks an SM of its default build's maps copy
                // (probs_blocks_per_sm in kernels/attention_probs.cu: 3 at d 64, 2 at d 128); then in steps of
                // four key tiles, 512 bytes of a row at a time.
                for (int width : WRITE_WIDTHS) {
                    timing order_t =
                        time_write_tile_order(static_cast<__half *>(dump), n, p.heads, width, d == 64 ? 3 : 2);
                    emit(width == 64 ? "write_tile_order_fp16" : "write_tile_order_256_fp16", shape, "fp16", order_t,
                         "GB/s", bytes / (order_t.median * 1e6), bytes / (order_t.max * 1e6),
                         bytes / (order_t.min * 1e6), copy_gbs, copy_gbs);
                }
                cudaFree(dump);
            } else {
                cudaGetLastError();
            }
            free_problem(p);
        }
    }
    cublasDestroy(handle);
    return 0;
}
