// The CUDA backend: the ops of backend.h on one GPU. Activations live in cudaMalloc'ed memory, parameters in a weight
// arena filled once by upload_tensor (matmul weights as bf16 in bf16 mode), products go through cuBLAS with fp32
// accumulation and TF32 off, everything else through the hand-written kernels in kernels/. Attention in bf16 mode
// with heads of 64 or 128 columns runs the flash kernels of include/attnviz_kernels.h (no (NH, T, T) scores in
// memory), otherwise the plain path (cuBLAS scores, softmax kernel, cuBLAS P.V). All work is queued on one compute
// stream; the captured attention probabilities stream out to pinned host memory on a second stream. With
// set_reductions the flash path computes the --capture reductions instead of full P, and only their compact buffer
// streams out.
#include "attnviz_kernels.h"
#include "backend.h"
#include "cublas_loader.h"
#include "half.h"

#include <assert.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "activation.cuh"
#include "convert.cuh"
#include "cuda_check.cuh"
#include "embedding.cuh"
#include "layernorm.cuh"
#include "residual.cuh"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "softmax.cuh"
#include "swiglu.cuh"

// Weight arena chunks: large enough that a small model takes one, and a tensor larger than this gets its own.
#define ARENA_CHUNK_BYTES ((size_t)64 << 20)
#define ARENA_ALIGN 256
// Host elements converted to bf16 per upload copy: bounds the staging buffer.
#define BF16_STAGING_ELEMENTS ((size_t)1 << 20)

typedef struct weight_arena {
    void **chunks; // (n_chunks) cudaMalloc'ed
    int n_chunks, cap_chunks;
    char *cursor;  // next free byte of the last chunk
    size_t left;   // bytes left after cursor
} weight_arena;

// The stream of captured probabilities. Layer l's P is copied to host[b] on the copy stream at emit_probs(l); the
// sink sees it at emit_probs(l + 1) or flush_probs, so the copy of one layer overlaps the next layer's compute.
// attention() waits for the last copy before overwriting the device buffer it reads.
typedef struct probs_stream {
    void *host[2];          // pinned (n_slots, T, T) in the attention dtype
    size_t host_bytes[2];
    cudaEvent_t copied[2];  // the copy into host[b] is complete
    cudaEvent_t computed;   // the compute stream has produced the P being emitted
    float *converted;       // (n_slots, T, T) float32 for the sink when the dtype is fp16 or bf16
    size_t converted_bytes;
    int next;               // host buffer of the next emit
    bool copy_issued;       // copied[last] is recorded
    int last;
    // The copied but not yet delivered layer.
    bool pending;
    int pending_buffer, layer, n_slots, T;
    bool reduced; // the pending copy is a float32 compact buffer of reductions (av_reductions_sink), not P
    av_probs_sink sink;
    void *user;
} probs_stream;

typedef struct cuda_impl {
    backend_options options;
    cudaStream_t compute, copy;
    const av_cublas_api *blas; // loaded by cuda_init
    cublasHandle_t cublas;
    weight_arena arena;
    // The weights stored as bf16, so that a matmul can tell them from fp32 ones (GPT-2's wte is both: an fp32 table
    // for the embedding and a bf16 LM head, uploaded twice).
    const void **bf16_weights; // (n_bf16)
    size_t n_bf16, cap_bf16;
    float *scores;            // (NH, T, T): raw q.k, then P in fp32 for P.V (plain path only)
    size_t scores_bytes;
    // The flash path's scratch.
    uint16_t *qkv_bf16;       // (T, C + 2 NKV HS) bf16: the kernels' q, k and v
    size_t qkv_bf16_bytes;
    uint16_t *out_bf16;       // (T, C) bf16: O, heads concatenated
    size_t out_bf16_bytes;
    float *lse;               // (NH, T): each query row's log-sum-exp, from the forward for the probs kernel
    size_t lse_bytes;
    void *probs_workspace;    // whatever av_attention_probs_workspace asks for (nothing, for full P)
    size_t probs_workspace_bytes;
    uint16_t *bf16_operand;   // (T, C) bf16, C the product's input width: the activation operand of a bf16 product
    size_t bf16_operand_bytes;
    // set_reductions: the flash path computes these instead of full P, into one compact float32 buffer.
    bool reduce;
    av_reduction_request reductions;
    float *reduced;           // av_reduction_layout_of(reductions, n_slots, T) floats
    size_t reduced_bytes;
    probs_stream probs;
} cuda_impl;

static cuda_impl *impl_of(av_backend *be) { return be->impl; }

static size_t attn_element_bytes(av_attn_dtype dtype) { return dtype == AV_ATTN_FP32 ? sizeof(float) : 2; }

// Device scratch that grows to the largest request and is kept: buffers sized by T are asked for once per op.
static av_status grow_device_buffer(cuda_impl *impl, void **buffer, size_t *have, size_t need, const char *what) {
    if (need <= *have) return AV_SUCCESS;
    // The old buffer may still be read by queued work.
    AV_CUDA_CHECK(cudaStreamSynchronize(impl->compute));
    AV_CUDA_CHECK(cudaFree(*buffer));
    *buffer = NULL;
    *have = 0;
    if (cudaMalloc(buffer, need) != cudaSuccess) {
        cudaGetLastError();
        return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of GPU memory allocating %zu bytes for %s", need, what);
    }
    *have = need;
    return AV_SUCCESS;
}

// Memory.

static av_status cuda_alloc(av_backend *be, void **ptr, size_t bytes, const char *what) {
    if (cudaMalloc(ptr, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of GPU memory allocating %zu bytes for %s (%zu of %zu free)",
                       bytes, what, free_bytes, total);
    }
    return AV_SUCCESS;
}

// cudaFree waits for the device, so queued work that still reads PTR finishes first.
static void cuda_release(av_backend *be, void *ptr) { cudaFree(ptr); }

// Synchronous: SRC may be reused or freed on return.
static av_status copy_to_device(cuda_impl *impl, void *dst, const void *src, size_t bytes) {
    AV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, impl->compute));
    AV_CUDA_CHECK(cudaStreamSynchronize(impl->compute));
    return AV_SUCCESS;
}

static av_status cuda_upload(av_backend *be, void *dst, const void *src, size_t bytes) {
    return copy_to_device(impl_of(be), dst, src, bytes);
}

static av_status cuda_download(av_backend *be, void *dst, const void *src, size_t bytes) {
    cuda_impl *impl = impl_of(be);
    AV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, impl->compute));
    AV_CUDA_CHECK(cudaStreamSynchronize(impl->compute));
    return AV_SUCCESS;
}

static av_status cuda_memory_available(av_backend *be, size_t *bytes) {
    size_t total = 0;
    AV_CUDA_CHECK(cudaMemGetInfo(bytes, &total));
    return AV_SUCCESS;
}

// The flash kernels take bf16 (or fp16) inputs and heads of 64 or 128 columns; in fp32 mode the plain path keeps
// the products in fp32.
static bool flash_supported(const cuda_impl *impl, int C, int NH) {
    int HS = C / NH;
    return impl->options.compute == AV_COMPUTE_BF16 && HS * NH == C && (HS == 64 || HS == 128);
}

static bool flash_runs(const cuda_impl *impl, int C, int NH) {
    return impl->options.attention != AV_ATTENTION_PLAIN && flash_supported(impl, C, NH);
}

static av_status check_attention_choice(const cuda_impl *impl, int C, int NH) {
    if (impl->options.attention == AV_ATTENTION_FLASH && !flash_supported(impl, C, NH))
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "--attention flash: needs --dtype bf16 and heads of 64 or 128 "
                       "columns (this run: --dtype %s, %d heads of %d columns)",
                       impl->options.compute == AV_COMPUTE_BF16 ? "bf16" : "fp32", NH, C / NH);
    return AV_SUCCESS;
}

static av_status cuda_attention_kernel(av_backend *be, int C, int NH, const char **name) {
    cuda_impl *impl = impl_of(be);
    AV_TRY(check_attention_choice(impl, C, NH));
    *name = flash_runs(impl, C, NH) ? "flash" : "plain";
    return AV_SUCCESS;
}

static av_dtype kernel_dtype_of(av_attn_dtype dtype) {
    return dtype == AV_ATTN_FP32 ? AV_DTYPE_FP32 : dtype == AV_ATTN_FP16 ? AV_DTYPE_FP16 : AV_DTYPE_BF16;
}

static av_attention_shape flash_shape(int T, int C, int NH, int NKV, bool causal) {
    return (av_attention_shape){.batch = 1, .n_heads = NH, .n_kv_heads = NKV, .seq_len = T, .head_dim = C / NH,
                                .dtype = AV_DTYPE_BF16, .causal = causal};
}

// The device reductions' compact buffer and workspace, for every head captured (0 without set_reductions).
static size_t reduction_bytes(const cuda_impl *impl, int T, int C, int NH) {
    if (!impl->reduce) return 0;
    const av_reduction_request *r = &impl->reductions;
    // Any non-NULL address: the workspace depends only on which outputs are asked for, not where they go.
    static float probe;
    av_probs_request req = {.colsum = r->colsum ? &probe : NULL, .colmean = r->colsum ? &probe : NULL,
                            .pooled = r->pool ? &probe : NULL, .pool = r->pool};
    // The workspace does not depend on the key/value heads (head means, per group too, need none).
    av_attention_shape shape = flash_shape(T, C, NH, NH, false);
    size_t workspace = 0;
    if (av_attention_probs_workspace(&shape, &req, &workspace) != AV_SUCCESS) return SIZE_MAX / 2; // refused
    return workspace + av_reduction_layout_of(r, NH, T).floats * sizeof(float);
}

// Attention scratch (the scores of every head on the plain path; bf16 q, k, v, O and the log-sum-exp on the flash
// path, whose full-P requests need no probs workspace: only column sums and pooled maps do), the bf16 operand of the
// widest product input, and the weight arena (bf16 matmul weights in bf16 mode; one chunk of slack for the arena's
// rounding). Upper bounds whatever the key/value heads: 3C bounds qkv's C + 2 NKV HS columns. A product's input is
// at most max(C, inner) wide (Llama's gate and up projections write 2 inner columns but read C; the down projection
// reads inner).
static size_t cuda_extra_bytes(av_backend *be, int T, int C, int NH, int inner, size_t param_bytes,
                               size_t matrix_bytes) {
    const cuda_impl *impl = impl_of(be);
    bool bf16 = impl->options.compute == AV_COMPUTE_BF16;
    size_t attention = flash_runs(impl, C, NH)
                           ? (size_t)T * 4 * C * sizeof(uint16_t) + (size_t)NH * T * sizeof(float)
                           : (size_t)NH * T * T * sizeof(float);
    size_t operand = bf16 ? (size_t)T * (size_t)(C > inner ? C : inner) * sizeof(uint16_t) : 0;
    size_t weights = bf16 ? param_bytes - matrix_bytes / 2 : param_bytes;
    return attention + reduction_bytes(impl, T, C, NH) + operand + weights + ARENA_CHUNK_BYTES;
}

// The weight arena.

static av_status arena_take(weight_arena *arena, size_t bytes, void **out) {
    size_t aligned = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (aligned > arena->left) {
        if (arena->n_chunks == arena->cap_chunks) {
            int cap = arena->cap_chunks ? 2 * arena->cap_chunks : 8;
            void **chunks = realloc(arena->chunks, (size_t)cap * sizeof *chunks);
            if (!chunks) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory growing the weight arena's list");
            arena->chunks = chunks;
            arena->cap_chunks = cap;
        }
        size_t chunk = aligned > ARENA_CHUNK_BYTES ? aligned : ARENA_CHUNK_BYTES;
        void *base = NULL;
        if (cudaMalloc(&base, chunk) != cudaSuccess) {
            cudaGetLastError();
            return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of GPU memory allocating %zu bytes of weights", chunk);
        }
        arena->chunks[arena->n_chunks++] = base;
        arena->cursor = base;
        arena->left = chunk;
    }
    *out = arena->cursor;
    arena->cursor += aligned;
    arena->left -= aligned;
    return AV_SUCCESS;
}

static bool is_bf16_weight(const cuda_impl *impl, const void *dev) {
    for (size_t i = 0; i < impl->n_bf16; i++)
        if (impl->bf16_weights[i] == dev) return true;
    return false;
}

static av_status remember_bf16_weight(cuda_impl *impl, const void *dev) {
    if (impl->n_bf16 == impl->cap_bf16) {
        size_t cap = impl->cap_bf16 ? 2 * impl->cap_bf16 : 64;
        const void **list = realloc(impl->bf16_weights, cap * sizeof *list);
        if (!list) return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of memory growing the bf16 weight list");
        impl->bf16_weights = list;
        impl->cap_bf16 = cap;
    }
    impl->bf16_weights[impl->n_bf16++] = dev;
    return AV_SUCCESS;
}

// dst (numel) bf16 in device memory = src (numel) float32 in host memory, rounded on the host chunk by chunk.
static av_status upload_as_bf16(cuda_impl *impl, uint16_t *dst, const float *src, size_t numel) {
    size_t chunk = numel < BF16_STAGING_ELEMENTS ? numel : BF16_STAGING_ELEMENTS;
    uint16_t *staging = av_malloc(chunk * sizeof *staging, "bf16 weight staging");
    if (!staging) return AV_ERROR_OUT_OF_MEMORY;
    av_status st = AV_SUCCESS;
    for (size_t start = 0; start < numel && st == AV_SUCCESS; start += chunk) {
        size_t n = numel - start < chunk ? numel - start : chunk;
        for (size_t i = 0; i < n; i++) staging[i] = av_f32_to_bf16(src[start + i]);
        st = copy_to_device(impl, dst + start, staging, n * sizeof *staging);
    }
    free(staging);
    return st;
}

// Each call makes a new copy: host addresses are no key (a later model may be mapped where an earlier one was).
static av_status cuda_upload_tensor(av_backend *be, const float **dst, const float *src, size_t numel,
                                    bool matmul_weight) {
    cuda_impl *impl = impl_of(be);
    bool bf16 = matmul_weight && impl->options.compute == AV_COMPUTE_BF16;
    void *dev = NULL;
    AV_TRY(arena_take(&impl->arena, numel * (bf16 ? sizeof(uint16_t) : sizeof(float)), &dev));
    if (bf16) {
        AV_TRY(upload_as_bf16(impl, dev, src, numel));
        AV_TRY(remember_bf16_weight(impl, dev));
    } else {
        AV_TRY(cuda_upload(be, dev, src, numel * sizeof(float)));
    }
    *dst = dev;
    return AV_SUCCESS;
}

// Ops.

static av_status cuda_embedding(av_backend *be, float *out, const int32_t *ids, const float *wte, const float *wpe,
                                const float *wtt, int T, int C) {
    return av_embedding_cuda(out, ids, wte, wpe, wtt, T, C, impl_of(be)->compute);
}

static av_status cuda_layernorm(av_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                                int T, int C, float eps) {
    return av_layernorm_cuda(out, inp, weight, bias, T, C, eps, impl_of(be)->compute);
}

static av_status cuda_rmsnorm(av_backend *be, float *out, const float *inp, const float *weight, int T, int C,
                              float eps) {
    return av_rmsnorm_cuda(out, inp, weight, T, C, eps, impl_of(be)->compute);
}

static av_status cuda_rope(av_backend *be, float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS) {
    return av_rope_cuda(qkv, inv_freq, T, NH, NKV, HS, impl_of(be)->compute);
}

static av_status cuda_swiglu(av_backend *be, float *out, const float *inp, int T, int I) {
    return av_swiglu_cuda(out, inp, T, I, impl_of(be)->compute);
}

// out (T, OC) = inp (T, C) @ W (+ bias). cuBLAS is column-major: a row-major (T, OC) matrix is a column-major
// (OC, T) one, so it computes out^T = op(W) inp^T, with op(W) = W^T's buffer as is for (C, OC) weights and
// transposed for (OC, C) weights.
static av_status cuda_matmul(av_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                             int T, int C, int OC, av_weight_layout layout) {
    cuda_impl *impl = impl_of(be);
    bool transposed = layout == AV_WEIGHT_OUT_IN;
    cublasOperation_t op_w = transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
    int ld_w = transposed ? C : OC;
    const float one = 1.0f, zero = 0.0f;
    if (is_bf16_weight(impl, weight)) {
        size_t n = (size_t)T * C;
        AV_TRY(grow_device_buffer(impl, (void **)&impl->bf16_operand, &impl->bf16_operand_bytes, n * sizeof(uint16_t),
                                  "the bf16 matmul operand"));
        AV_TRY(av_f32_to_bf16_cuda(impl->bf16_operand, inp, n, impl->compute));
        AV_CUBLAS_CHECK(impl->blas->gemm_ex(impl->cublas, op_w, CUBLAS_OP_N, OC, T, C, &one, weight, CUDA_R_16BF,
                                            ld_w, impl->bf16_operand, CUDA_R_16BF, C, &zero, out, CUDA_R_32F, OC,
                                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
        AV_CUBLAS_CHECK(impl->blas->gemm_ex(impl->cublas, op_w, CUBLAS_OP_N, OC, T, C, &one, weight, CUDA_R_32F,
                                            ld_w, inp, CUDA_R_32F, C, &zero, out, CUDA_R_32F, OC, CUBLAS_COMPUTE_32F,
                                            CUBLAS_GEMM_DEFAULT));
    }
    if (bias) AV_TRY(av_add_bias_cuda(out, bias, T, OC, impl->compute));
    return AV_SUCCESS;
}

// Per query head h with key/value head g = h / G (G = NH / NKV query heads share one): S_h = Q_h K_g^T in fp32, the
// softmax kernel turns S_h into P_h (and the side buffer's copy for captured heads), then out_h = P_h V_g. Column-
// major view as in cuda_matmul: S_h^T (T keys, T queries) = K_g Q_h^T, out_h^T (HS, T) = V_g^T P_h^T.
//
// One strided-batched product for each r < G, batched over the NKV heads h = g G + r: every operand advances by a
// fixed stride from one batch entry to the next (K and V by one head, Q, out and the scores by G heads), and none is
// shared at stride 0. G calls a product: one for multi-head attention (the call this path always made), 4 to 8 for
// the grouped Llama models. One call per key/value head over its G query heads (K and V at stride 0) would take NKV
// calls instead, fewer only where NKV < G (TinyLlama: 4 against 8); a launch or two costs microseconds next to the
// T x T products, so one rule serves every shape.
static av_status plain_attention(cuda_impl *impl, float *out, float *probs, const float *qkv, int T, int C, int NH,
                                 int NKV, bool causal, const int *head_slot) {
    int HS = C / NH, G = NH / NKV, ld_qkv = C + 2 * NKV * HS;
    float scale = 1.0f / sqrtf((float)HS);
    long long TT = (long long)T * T;
    const float one = 1.0f, zero = 0.0f;
    AV_TRY(grow_device_buffer(impl, (void **)&impl->scores, &impl->scores_bytes, (size_t)NH * TT * sizeof(float),
                              "attention scores"));
    const av_cublas_api *blas = impl->blas;
    for (int r = 0; r < G; r++)
        AV_CUBLAS_CHECK(blas->gemm_strided_batched_ex(impl->cublas, CUBLAS_OP_T, CUBLAS_OP_N, T, T, HS, &one, qkv + C,
                                                      CUDA_R_32F, ld_qkv, HS, qkv + (size_t)r * HS, CUDA_R_32F,
                                                      ld_qkv, (long long)G * HS, &zero, impl->scores + r * TT,
                                                      CUDA_R_32F, T, G * TT, NKV, CUBLAS_COMPUTE_32F,
                                                      CUBLAS_GEMM_DEFAULT));
    bool capture = probs && head_slot;
    // The previous layer's P may still be on its way to the host from the buffer this call overwrites.
    if (capture && impl->probs.copy_issued)
        AV_CUDA_CHECK(cudaStreamWaitEvent(impl->compute, impl->probs.copied[impl->probs.last], 0));
    size_t slot_bytes = (size_t)TT * attn_element_bytes(impl->options.attn);
    for (int h = 0; h < NH; h++) {
        int slot = capture ? head_slot[h] : -1;
        void *side = slot >= 0 ? (char *)probs + (size_t)slot * slot_bytes : NULL;
        AV_TRY(av_attention_softmax_cuda(impl->scores + (size_t)h * TT, side, T, scale, causal, impl->options.attn,
                                         impl->compute));
    }
    for (int r = 0; r < G; r++)
        AV_CUBLAS_CHECK(blas->gemm_strided_batched_ex(impl->cublas, CUBLAS_OP_N, CUBLAS_OP_N, HS, T, T, &one,
                                                      qkv + C + (size_t)NKV * HS, CUDA_R_32F, ld_qkv, HS,
                                                      impl->scores + r * TT, CUDA_R_32F, T, G * TT, &zero,
                                                      out + (size_t)r * HS, CUDA_R_32F, C, (long long)G * HS, NKV,
                                                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return AV_SUCCESS;
}

// Part PART (0 q, 1 k, 2 v) of the fused bf16 qkv (T, C + 2 NKV HS) as a (1, NH, T, HS) tensor for q and a
// (1, NKV, T, HS) one for k and v: q at column 0, k at C, v at C + NKV HS.
static av_attention_tensor fused_qkv_part(uint16_t *qkv, int part, int T, int C, int NH, int NKV) {
    int HS = C / NH;
    size_t ld = (size_t)C + 2 * (size_t)NKV * HS;
    size_t offset = part == 0 ? 0 : part == 1 ? (size_t)C : C + (size_t)NKV * HS;
    return (av_attention_tensor){.data = qkv + offset, .batch_stride = (int64_t)(T * ld), .head_stride = HS,
                                 .row_stride = (int64_t)ld};
}

// Fills the request of the captured heads [h, end) (consecutive slots from head_slot[h] on) into OUT.
typedef av_probs_request (*head_run_request)(const cuda_impl *impl, void *out, const int *head_slot, int h, int end,
                                             const av_attention_shape *shape);

// One av_attention_probs call per run of consecutive captured heads whose slots are consecutive too (the plan's slots
// follow head order, so usually one call for all).
static av_status probs_per_head_run(cuda_impl *impl, const av_attention_shape *shape, av_attention_tensor q,
                                    av_attention_tensor k, const int *head_slot, head_run_request request_of,
                                    void *out) {
    for (int h = 0; h < shape->n_heads;) {
        if (head_slot[h] < 0) {
            h++;
            continue;
        }
        int end = h + 1;
        while (end < shape->n_heads && head_slot[end] == head_slot[end - 1] + 1) end++;
        av_probs_request req = request_of(impl, out, head_slot, h, end, shape);
        size_t workspace = 0;
        AV_TRY(av_attention_probs_workspace(shape, &req, &workspace));
        AV_TRY(grow_device_buffer(impl, &impl->probs_workspace, &impl->probs_workspace_bytes, workspace,
                                  "the attention probabilities' workspace"));
        AV_TRY(av_attention_probs(shape, q, k, impl->lse, &req, impl->probs_workspace, impl->probs_workspace_bytes,
                                  impl->compute));
        h = end;
    }
    return AV_SUCCESS;
}

// Full P into probs (n_slots, T, T) in the side buffer's dtype.
static av_probs_request full_probs_request(const cuda_impl *impl, void *probs, const int *head_slot, int h, int end,
                                           const av_attention_shape *shape) {
    size_t slot_bytes = (size_t)shape->seq_len * shape->seq_len * attn_element_bytes(impl->options.attn);
    return (av_probs_request){.head_begin = h, .head_end = end, .probs_dtype = kernel_dtype_of(impl->options.attn),
                              .layout = AV_PROBS_SQUARE, .probs = (char *)probs + head_slot[h] * slot_bytes};
}

// The compact buffer one layer's reductions go to.
typedef struct reduction_target {
    float *base;
    av_reduction_layout at;
} reduction_target;

// The reductions of set_reductions into their slots of the compact buffer, float32. The head mean and max cover every
// head, so only a run of all heads asks for them (flash_reduce refuses them otherwise).
static av_probs_request reductions_request(const cuda_impl *impl, void *target, const int *head_slot, int h, int end,
                                           const av_attention_shape *shape) {
    const av_reduction_request *r = &impl->reductions;
    const reduction_target *t = target;
    size_t slot = (size_t)head_slot[h], T = (size_t)shape->seq_len, nb = (size_t)t->at.n_bins;
    bool every_head = h == 0 && end == shape->n_heads;
    return (av_probs_request){
        .head_begin = h,
        .head_end = end,
        .probs_dtype = AV_DTYPE_FP32,
        .layout = AV_PROBS_SQUARE,
        .rows = r->rows ? t->base + t->at.rows + slot * (size_t)r->rows * T : NULL,
        .rows_begin = shape->seq_len - r->rows,
        .rows_end = shape->seq_len,
        .colsum = r->colsum ? t->base + t->at.colsum + slot * T : NULL,
        .colmean = r->colsum ? t->base + t->at.colmean + slot * T : NULL,
        .pooled = r->pool ? t->base + t->at.pooled + slot * nb * nb : NULL,
        .pool = r->pool,
        .head_mean = r->head_mean && every_head ? t->base + t->at.head_mean : NULL,
        .head_max = r->head_mean && every_head ? t->base + t->at.head_max : NULL,
        .head_group = AV_HEADS_ALL};
}

// The group mean and max into their slots of the compact buffer: a call of their own, since one request has one
// head grouping (the head mean's is all heads). The kernel's groups are the key/value heads'; head means need no
// workspace.
static av_status flash_group_means(cuda_impl *impl, const av_attention_shape *shape, av_attention_tensor q,
                                   av_attention_tensor k, const reduction_target *t) {
    if (impl->reductions.group_mean != shape->n_kv_heads)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "device group mean: %d groups, but the kernel groups heads by their "
                       "%d key/value heads", impl->reductions.group_mean, shape->n_kv_heads);
    av_probs_request request = {.probs_dtype = AV_DTYPE_FP32, .layout = AV_PROBS_SQUARE,
                                .head_mean = t->base + t->at.group_mean, .head_max = t->base + t->at.group_max,
                                .head_group = AV_HEADS_PER_KV_GROUP};
    return av_attention_probs(shape, q, k, impl->lse, &request, NULL, 0, impl->compute);
}

// set_reductions' outputs of the captured heads into impl->reduced (the compact layout for their count).
static av_status flash_reduce(cuda_impl *impl, const av_attention_shape *shape, av_attention_tensor q,
                              av_attention_tensor k, const int *head_slot) {
    int n_slots = av_captured_heads(head_slot, shape->n_heads);
    bool head_order = true; // slot h holds head h: one run covers every head
    for (int h = 0; h < shape->n_heads; h++) head_order = head_order && head_slot[h] == h;
    if ((impl->reductions.head_mean || impl->reductions.group_mean) && !head_order)
        return av_fail(AV_ERROR_INVALID_ARGUMENT, "device head and group means: need every head captured in head order "
                       "(%d of %d captured)", n_slots, shape->n_heads);
    reduction_target target = {.at = av_reduction_layout_of(&impl->reductions, n_slots, shape->seq_len)};
    AV_TRY(grow_device_buffer(impl, (void **)&impl->reduced, &impl->reduced_bytes, target.at.floats * sizeof(float),
                              "the attention reductions"));
    target.base = impl->reduced;
    AV_TRY(probs_per_head_run(impl, shape, q, k, head_slot, reductions_request, &target));
    return impl->reductions.group_mean ? flash_group_means(impl, shape, q, k, &target) : AV_SUCCESS;
}

// qkv rounded to bf16 once; the forward writes O (bf16) and each row's log-sum-exp, from which the probs kernel
// recomputes exact P of the captured heads tile by tile. The (NH, T, T) scores never exist.
static av_status flash_attention(cuda_impl *impl, float *out, float *probs, const float *qkv, int T, int C, int NH,
                                 int NKV, bool causal, const int *head_slot) {
    size_t n_qkv = (size_t)T * (C + 2 * (size_t)NKV * (C / NH)), n_out = (size_t)T * C;
    AV_TRY(grow_device_buffer(impl, (void **)&impl->qkv_bf16, &impl->qkv_bf16_bytes, n_qkv * sizeof(uint16_t),
                              "the bf16 copy of q, k and v"));
    AV_TRY(grow_device_buffer(impl, (void **)&impl->out_bf16, &impl->out_bf16_bytes, n_out * sizeof(uint16_t),
                              "the bf16 attention output"));
    AV_TRY(grow_device_buffer(impl, (void **)&impl->lse, &impl->lse_bytes, (size_t)NH * T * sizeof(float),
                              "the attention log-sum-exp"));
    AV_TRY(av_f32_to_bf16_cuda(impl->qkv_bf16, qkv, n_qkv, impl->compute));
    av_attention_shape shape = flash_shape(T, C, NH, NKV, causal);
    av_attention_tensor q = fused_qkv_part(impl->qkv_bf16, 0, T, C, NH, NKV);
    av_attention_tensor k = fused_qkv_part(impl->qkv_bf16, 1, T, C, NH, NKV);
    av_attention_tensor v = fused_qkv_part(impl->qkv_bf16, 2, T, C, NH, NKV);
    av_attention_tensor o = {.data = impl->out_bf16, .batch_stride = (int64_t)n_out, .head_stride = C / NH,
                             .row_stride = C};
    AV_TRY(av_attention_forward(&shape, q, k, v, o, impl->lse, impl->compute));
    if (head_slot && (probs || impl->reduce)) {
        // The previous layer's P (or reductions) may still be on its way to the host from the buffer this call
        // overwrites; waiting before flash_reduce may regrow that buffer also keeps a pending copy's source alive.
        if (impl->probs.copy_issued)
            AV_CUDA_CHECK(cudaStreamWaitEvent(impl->compute, impl->probs.copied[impl->probs.last], 0));
        if (impl->reduce) AV_TRY(flash_reduce(impl, &shape, q, k, head_slot));
        else AV_TRY(probs_per_head_run(impl, &shape, q, k, head_slot, full_probs_request, probs));
    }
    return av_bf16_to_f32_cuda(out, impl->out_bf16, n_out, impl->compute);
}

static av_status cuda_attention(av_backend *be, float *out, float *probs, const float *qkv, int T, int C, int NH,
                                int NKV, bool causal, const int *head_slot) {
    cuda_impl *impl = impl_of(be);
    assert(NKV > 0 && NH % NKV == 0); // the config loader's check
    AV_TRY(check_attention_choice(impl, C, NH));
    if (flash_runs(impl, C, NH)) return flash_attention(impl, out, probs, qkv, T, C, NH, NKV, causal, head_slot);
    return plain_attention(impl, out, probs, qkv, T, C, NH, NKV, causal, head_slot);
}

static av_status cuda_activation(av_backend *be, float *out, const float *inp, size_t N, av_activation act) {
    return av_activation_cuda(out, inp, N, act, impl_of(be)->compute);
}

static av_status cuda_residual(av_backend *be, float *out, const float *a, const float *b, size_t N) {
    return av_residual_cuda(out, a, b, N, impl_of(be)->compute);
}

// Streaming the captured probabilities out.

static av_status grow_pinned_buffer(probs_stream *ps, int b, size_t bytes) {
    if (bytes <= ps->host_bytes[b]) return AV_SUCCESS;
    // Buffer b's last copy was delivered (only the other buffer can be pending), so it is free to replace.
    AV_CUDA_CHECK(cudaFreeHost(ps->host[b]));
    ps->host[b] = NULL;
    ps->host_bytes[b] = 0;
    if (cudaMallocHost(&ps->host[b], bytes) != cudaSuccess) {
        cudaGetLastError();
        return av_fail(AV_ERROR_OUT_OF_MEMORY, "out of pinned host memory allocating %zu bytes for attention "
                                               "probabilities", bytes);
    }
    ps->host_bytes[b] = bytes;
    return AV_SUCCESS;
}

// Waits for the pending layer's copy and hands it to its sink as float32.
static av_status deliver_pending(cuda_impl *impl) {
    probs_stream *ps = &impl->probs;
    if (!ps->pending) return AV_SUCCESS;
    ps->pending = false;
    AV_CUDA_CHECK(cudaEventSynchronize(ps->copied[ps->pending_buffer]));
    size_t n = (size_t)ps->n_slots * ps->T * ps->T;
    const void *host = ps->host[ps->pending_buffer];
    if (ps->reduced || impl->options.attn == AV_ATTN_FP32)
        return ps->sink(ps->user, ps->layer, host, ps->n_slots, ps->T);
    if (n * sizeof(float) > ps->converted_bytes) {
        free(ps->converted);
        ps->converted_bytes = 0;
        ps->converted = av_malloc(n * sizeof(float), "attention probabilities as float32");
        if (!ps->converted) return AV_ERROR_OUT_OF_MEMORY;
        ps->converted_bytes = n * sizeof(float);
    }
    const uint16_t *h = host;
    if (impl->options.attn == AV_ATTN_FP16)
        for (size_t i = 0; i < n; i++) ps->converted[i] = av_f16_to_f32(h[i]);
    else
        for (size_t i = 0; i < n; i++) ps->converted[i] = av_bf16_to_f32(h[i]);
    return ps->sink(ps->user, ps->layer, ps->converted, ps->n_slots, ps->T);
}

// Queues the copy of BYTES at SRC (backend memory) into a pinned buffer and delivers the previous layer. REDUCED: SRC
// is a float32 compact buffer of reductions for an av_reductions_sink (same signature as av_probs_sink).
static av_status stream_out(cuda_impl *impl, const void *src, size_t bytes, bool reduced, int layer, int n_slots,
                            int T, av_probs_sink sink, void *user) {
    probs_stream *ps = &impl->probs;
    // A pass that failed before its flush left its last layer pending; a new pass starts over at a lower layer or
    // with another sink, and must not hand that layer to a sink that may be gone.
    if (ps->pending && (layer <= ps->layer || sink != ps->sink || user != ps->user)) {
        AV_CUDA_CHECK(cudaEventSynchronize(ps->copied[ps->pending_buffer]));
        ps->pending = false;
    }
    int b = ps->next;
    AV_TRY(grow_pinned_buffer(ps, b, bytes));
    AV_CUDA_CHECK(cudaEventRecord(ps->computed, impl->compute));
    AV_CUDA_CHECK(cudaStreamWaitEvent(impl->copy, ps->computed, 0));
    AV_CUDA_CHECK(cudaMemcpyAsync(ps->host[b], src, bytes, cudaMemcpyDeviceToHost, impl->copy));
    AV_CUDA_CHECK(cudaEventRecord(ps->copied[b], impl->copy));
    ps->copy_issued = true;
    ps->last = b;
    ps->next = 1 - b;
    // This layer's copy is queued; the previous layer's sink runs while it (and the next layer) proceed.
    av_status st = deliver_pending(impl);
    ps->pending = true;
    ps->pending_buffer = b;
    ps->reduced = reduced;
    ps->layer = layer;
    ps->n_slots = n_slots;
    ps->T = T;
    ps->sink = sink;
    ps->user = user;
    return st;
}

static av_status cuda_emit_probs(av_backend *be, const float *probs, int layer, int n_slots, int T,
                                 av_probs_sink sink, void *user) {
    cuda_impl *impl = impl_of(be);
    size_t bytes = (size_t)n_slots * T * T * attn_element_bytes(impl->options.attn);
    return stream_out(impl, probs, bytes, false, layer, n_slots, T, sink, user);
}

static av_status cuda_emit_reductions(av_backend *be, int layer, int n_slots, int T, av_reductions_sink sink,
                                      void *user) {
    cuda_impl *impl = impl_of(be);
    if (!impl->reduce) return av_fail(AV_ERROR_INVALID_ARGUMENT, "emit_reductions: set_reductions was not called");
    size_t floats = av_reduction_layout_of(&impl->reductions, n_slots, T).floats;
    return stream_out(impl, impl->reduced, floats * sizeof(float), true, layer, n_slots, T, sink, user);
}

// The reductions run on the flash path only; the plain path leaves them to the host, and so does the flash path for
// head and group means of a head subset (the kernels' means cover every head).
static av_status cuda_set_reductions(av_backend *be, const av_reduction_request *request, int C, int NH,
                                     bool *on_device) {
    cuda_impl *impl = impl_of(be);
    *on_device = false;
    if (!request) {
        impl->reduce = false;
        return AV_SUCCESS;
    }
    if ((request->head_mean || request->group_mean) && !request->every_head) return AV_SUCCESS;
    AV_TRY(check_attention_choice(impl, C, NH));
    if (!flash_runs(impl, C, NH)) return AV_SUCCESS;
    impl->reduce = *on_device = true;
    impl->reductions = *request;
    return AV_SUCCESS;
}

static av_status cuda_flush_probs(av_backend *be) { return deliver_pending(impl_of(be)); }

// The compute stream only: a layer's P may still be on its way to the host on the copy stream.
static av_status cuda_synchronize(av_backend *be) {
    AV_CUDA_CHECK(cudaStreamSynchronize(impl_of(be)->compute));
    return AV_SUCCESS;
}

// Creation and teardown. destroy accepts a partly created backend (members still zero).

static void cuda_destroy(av_backend *be) {
    if (!be) return;
    cuda_impl *impl = impl_of(be);
    if (impl) {
        if (impl->compute) cudaStreamSynchronize(impl->compute);
        if (impl->copy) cudaStreamSynchronize(impl->copy);
        for (int i = 0; i < impl->arena.n_chunks; i++) cudaFree(impl->arena.chunks[i]);
        free(impl->arena.chunks);
        free(impl->bf16_weights);
        cudaFree(impl->scores);
        cudaFree(impl->qkv_bf16);
        cudaFree(impl->out_bf16);
        cudaFree(impl->lse);
        cudaFree(impl->probs_workspace);
        cudaFree(impl->bf16_operand);
        cudaFree(impl->reduced);
        probs_stream *ps = &impl->probs;
        for (int b = 0; b < 2; b++) {
            cudaFreeHost(ps->host[b]);
            if (ps->copied[b]) cudaEventDestroy(ps->copied[b]);
        }
        if (ps->computed) cudaEventDestroy(ps->computed);
        free(ps->converted);
        if (impl->cublas) impl->blas->destroy(impl->cublas);
        if (impl->copy) cudaStreamDestroy(impl->copy);
        if (impl->compute) cudaStreamDestroy(impl->compute);
        free(impl);
    }
    free(be);
}

static av_status cuda_init(cuda_impl *impl) {
    // The compute stream stays ordered with the legacy default stream, so a caller's plain cudaMemcpy before an op
    // is seen by it; the copy stream is ordered only by events.
    AV_CUDA_CHECK(cudaStreamCreate(&impl->compute));
    AV_CUDA_CHECK(cudaStreamCreateWithFlags(&impl->copy, cudaStreamNonBlocking));
    AV_CUDA_CHECK(cudaEventCreateWithFlags(&impl->probs.computed, cudaEventDisableTiming));
    for (int b = 0; b < 2; b++) AV_CUDA_CHECK(cudaEventCreateWithFlags(&impl->probs.copied[b], cudaEventDisableTiming));
    AV_TRY(av_cublas_load(&impl->blas));
    AV_CUBLAS_CHECK(impl->blas->create(&impl->cublas));
    AV_CUBLAS_CHECK(impl->blas->set_stream(impl->cublas, impl->compute));
    // Plain fp32 products: no TF32 tensor-core shortcut, whatever the library's default becomes.
    AV_CUBLAS_CHECK(impl->blas->set_math_mode(impl->cublas, CUBLAS_DEFAULT_MATH));
    return AV_SUCCESS;
}

bool backend_cuda_available(void) {
    int count = 0;
    // No driver, no device, or a device the driver cannot use: all mean zero devices here.
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return count > 0;
}

av_status backend_cuda_create(av_backend **out, const backend_options *options) {
    if (!backend_cuda_available())
        return av_fail(AV_ERROR_NO_DEVICE, "--device cuda: no usable CUDA device (cudaGetDeviceCount found none)");
    av_backend *be = av_calloc(1, sizeof *be, "CUDA backend");
    if (!be) return AV_ERROR_OUT_OF_MEMORY;
    cuda_impl *impl = av_calloc(1, sizeof *impl, "CUDA backend state");
    if (!impl) {
        free(be);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    impl->options = *options;
    *be = (av_backend){
        .name = "cuda",
        .impl = impl,
        .alloc = cuda_alloc,
        .release = cuda_release,
        .upload = cuda_upload,
        .download = cuda_download,
        .upload_tensor = cuda_upload_tensor,
        .embedding = cuda_embedding,
        .layernorm = cuda_layernorm,
        .rmsnorm = cuda_rmsnorm,
        .rope = cuda_rope,
        .swiglu = cuda_swiglu,
        .matmul = cuda_matmul,
        .attention = cuda_attention,
        .activation = cuda_activation,
        .residual = cuda_residual,
        .memory_available = cuda_memory_available,
        .extra_bytes = cuda_extra_bytes,
        .attention_kernel = cuda_attention_kernel,
        .emit_probs = cuda_emit_probs,
        .flush_probs = cuda_flush_probs,
        .set_reductions = cuda_set_reductions,
        .emit_reductions = cuda_emit_reductions,
        .synchronize = cuda_synchronize,
        .destroy = cuda_destroy,
    };
    av_status st = cuda_init(impl);
    if (st != AV_SUCCESS) {
        cuda_destroy(be);
        return st;
    }
    *out = be;
    return AV_SUCCESS;
}
