// The CPU backend: the reference every other backend is tested against. Plain float32, OpenBLAS sgemm for the
// products, OpenMP over rows elsewhere.
#include "backend.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void av_embedding_cpu(float *out, const int32_t *ids, const float *wte, const float *wpe, const float *wtt, int T,
                      int C) {
#pragma omp parallel for
    for (int t = 0; t < T; t++) {
        const float *tok = wte + (size_t)ids[t] * C;
        const float *pos = wpe ? wpe + (size_t)t * C : NULL;
        float *o = out + (size_t)t * C;
        for (int c = 0; c < C; c++) o[c] = tok[c] + (pos ? pos[c] : 0.0f) + (wtt ? wtt[c] : 0.0f);
    }
}

void av_layernorm_cpu(float *out, const float *inp, const float *weight, const float *bias, int T, int C, float eps) {
#pragma omp parallel for
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += x[c];
        double mean = sum / C;
        double var = 0.0;
        for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
        float rstd = (float)(1.0 / sqrt(var / C + eps));
        float *o = out + (size_t)t * C;
        for (int c = 0; c < C; c++) o[c] = ((float)(x[c] - mean) * rstd) * weight[c] + bias[c];
    }
}

// As Hugging Face's LlamaRMSNorm: the mean square in float32 (here double), x * rsqrt(ms + eps), then the weight.
void av_rmsnorm_cpu(float *out, const float *inp, const float *weight, int T, int C, float eps) {
#pragma omp parallel for
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        double sum = 0.0;
        for (int c = 0; c < C; c++) sum += (double)x[c] * x[c];
        float rstd = (float)(1.0 / sqrt(sum / C + eps));
        float *o = out + (size_t)t * C;
        for (int c = 0; c < C; c++) o[c] = weight[c] * (x[c] * rstd);
    }
}

// Rotary pairs whose cosine and sine are taken at once, for every head of a row.
#define ROPE_CHUNK 64

// Row T of qkv, its N_HEADS q and k heads of HS values, turned by the row's angles. The fp32 product t * inv_freq[i]
// is what Hugging Face's float32 matmul of positions by inv_freq gives, so the angles (and their error at long
// prompts) are the same. Their cosine and sine are taken in double and rounded once, the correctly rounded float the
// CUDA kernel also computes (glibc's cosf / sinf are 1 ulp off for about 1% of angles near 1e5), once per row for all
// its heads.
static void rope_row(float *row, const float *inv_freq, int t, int n_heads, int HS) {
    int half = HS / 2;
    float c[ROPE_CHUNK], s[ROPE_CHUNK];
    for (int i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
        int n = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
        for (int k = 0; k < n; k++) {
            float angle = (float)t * inv_freq[i0 + k];
            c[k] = (float)cos((double)angle);
            s[k] = (float)sin((double)angle);
        }
        for (int h = 0; h < n_heads; h++) {
            float *x = row + (size_t)h * HS + i0;
            for (int k = 0; k < n; k++) {
                float x1 = x[k], x2 = x[k + half];
                x[k] = x1 * c[k] - x2 * s[k];
                x[k + half] = x2 * c[k] + x1 * s[k];
            }
        }
    }
}

void av_rope_cpu(float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS) {
    size_t width = (size_t)(NH + 2 * NKV) * HS;
#pragma omp parallel for
    for (int t = 0; t < T; t++) rope_row(qkv + t * width, inv_freq, t, NH + NKV, HS);
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

void av_swiglu_cpu(float *out, const float *inp, int T, int inner) {
#pragma omp parallel for
    for (int t = 0; t < T; t++) {
        const float *gate = inp + (size_t)t * 2 * inner, *up = gate + inner;
        float *o = out + (size_t)t * inner;
        for (int j = 0; j < inner; j++) o[j] = silu(gate[j]) * up[j];
    }
}

void av_matmul_cpu(float *out, const float *inp, const float *weight, const float *bias, int T, int C, int OC,
                   av_weight_layout layout) {
    float beta = 0.0f;
    if (bias) {
        for (int t = 0; t < T; t++) memcpy(out + (size_t)t * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    bool transposed = layout == AV_WEIGHT_OUT_IN;
    // One thread pool: OpenBLAS runs single-threaded (backend_cpu_create) and each OpenMP thread multiplies its
    // share of the rows, so no second pool spins while this one works.
#pragma omp parallel
    {
        int n_threads = omp_get_num_threads(), id = omp_get_thread_num();
        int r0 = (int)((long)T * id / n_threads), r1 = (int)((long)T * (id + 1) / n_threads);
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, transposed ? CblasTrans : CblasNoTrans, r1 - r0, OC, C, 1.0f,
                        inp + (size_t)r0 * C, C, weight, transposed ? C : OC, beta, out + (size_t)r0 * OC, OC);
    }
}

// Rational approximation of tanh (Eigen's generic_fast_tanh_float, error ~1e-7): no libm call, so the GELU loop
// vectorizes; glibc's tanhf was 18% of a T=1024 run.
static inline float fast_tanh(float x) {
    const float clamp = 7.90531110763549805f;
    x = x > clamp ? clamp : (x < -clamp ? -clamp : x);
    float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = x * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    return p / q;
}

static float gelu_tanh(float x) {
    const float sqrt_2_over_pi = 0.7978845608028654f;
    return 0.5f * x * (1.0f + fast_tanh(sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

void av_activation_cpu(float *out, const float *inp, size_t N, av_activation act) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        switch (act) {
        case AV_ACT_GELU_TANH: out[i] = gelu_tanh(x); break;
        case AV_ACT_GELU_ERF: out[i] = 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); break;
        case AV_ACT_RELU: out[i] = x > 0.0f ? x : 0.0f; break;
        case AV_ACT_SILU: out[i] = silu(x); break;
        }
    }
}

void av_residual_cpu(float *out, const float *a, const float *b, size_t N) {
#pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = a[i] + b[i];
}

// The table entries: the reference ops behind av_status-returning wrappers.

static av_status cpu_alloc(av_backend *be, void **ptr, size_t bytes, const char *what) {
    *ptr = av_malloc(bytes, what);
    return *ptr ? AV_SUCCESS : AV_ERROR_OUT_OF_MEMORY;
}

static void cpu_release(av_backend *be, void *ptr) { free(ptr); }

static av_status cpu_copy(av_backend *be, void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
    return AV_SUCCESS;
}

// Host memory already: parameters are used where the loader put them.
static av_status cpu_upload_tensor(av_backend *be, const float **dst, const float *src, size_t numel,
                                   bool matmul_weight) {
    *dst = src;
    return AV_SUCCESS;
}

static av_status cpu_embedding(av_backend *be, float *out, const int32_t *ids, const float *wte, const float *wpe,
                               const float *wtt, int T, int C) {
    av_embedding_cpu(out, ids, wte, wpe, wtt, T, C);
    return AV_SUCCESS;
}

static av_status cpu_layernorm(av_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                               int T, int C, float eps) {
    av_layernorm_cpu(out, inp, weight, bias, T, C, eps);
    return AV_SUCCESS;
}

static av_status cpu_matmul(av_backend *be, float *out, const float *inp, const float *weight, const float *bias,
                            int T, int C, int OC, av_weight_layout layout) {
    av_matmul_cpu(out, inp, weight, bias, T, C, OC, layout);
    return AV_SUCCESS;
}

// set_reductions: attention computes these for the captured heads into one compact buffer instead of full P.
typedef struct cpu_impl {
    bool reduce;
    av_reduction_request reductions;
    float *reduced;        // av_reduction_layout_of(reductions, n_slots, T) floats of the last attention()
    size_t reduced_floats; // allocated
} cpu_impl;

static av_status grow_reduced(cpu_impl *impl, size_t floats) {
    if (floats <= impl->reduced_floats) return AV_SUCCESS;
    free(impl->reduced);
    impl->reduced_floats = 0;
    if (!(impl->reduced = av_malloc(floats * sizeof(float), "the attention reductions"))) return AV_ERROR_OUT_OF_MEMORY;
    impl->reduced_floats = floats;
    return AV_SUCCESS;
}

static av_status cpu_attention(av_backend *be, float *out, float *probs, const float *qkv, int T, int C, int NH,
                               int NKV, bool causal, const int *head_slot) {
    cpu_impl *impl = be->impl;
    if (!impl->reduce || !head_slot) return av_attention_cpu(out, probs, qkv, T, C, NH, NKV, causal, head_slot);
    AV_TRY(grow_reduced(impl, av_reduction_layout_of(&impl->reductions, av_captured_heads(head_slot, NH), T).floats));
    return av_attention_reduced_cpu(out, impl->reduced, qkv, T, C, NH, NKV, causal, head_slot, &impl->reductions);
}

static av_status cpu_rmsnorm(av_backend *be, float *out, const float *inp, const float *weight, int T, int C,
                             float eps) {
    av_rmsnorm_cpu(out, inp, weight, T, C, eps);
    return AV_SUCCESS;
}

static av_status cpu_rope(av_backend *be, float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS) {
    av_rope_cpu(qkv, inv_freq, T, NH, NKV, HS);
    return AV_SUCCESS;
}

static av_status cpu_swiglu(av_backend *be, float *out, const float *inp, int T, int inner) {
    av_swiglu_cpu(out, inp, T, inner);
    return AV_SUCCESS;
}

static av_status cpu_activation(av_backend *be, float *out, const float *inp, size_t N, av_activation act) {
    av_activation_cpu(out, inp, N, act);
    return AV_SUCCESS;
}

static av_status cpu_residual(av_backend *be, float *out, const float *a, const float *b, size_t N) {
    av_residual_cpu(out, a, b, N);
    return AV_SUCCESS;
}

av_status host_memory_available(size_t *bytes) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return av_fail(AV_ERROR_IO, "/proc/meminfo: cannot open");
    char line[256];
    unsigned long long kib = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    fclose(f);
    if (!found) return av_fail(AV_ERROR_IO, "/proc/meminfo: no MemAvailable line");
    *bytes = (size_t)kib * 1024;
    return AV_SUCCESS;
}

static av_status cpu_memory_available(av_backend *be, size_t *bytes) { return host_memory_available(bytes); }

// Parameters stay where the loader put them; attention needs one block of score rows per thread (as it allocates),
// and with set_reductions their partial sums and the compact buffer (for every head captured).
static size_t cpu_extra_bytes(av_backend *be, int T, int C, int NH, int inner, size_t param_bytes,
                              size_t matrix_bytes) {
    const cpu_impl *impl = be->impl;
    if (!impl->reduce) return av_attention_cpu_scratch_bytes(T);
    return av_attention_reduced_cpu_scratch_bytes(&impl->reductions, T) +
           av_reduction_layout_of(&impl->reductions, NH, T).floats * sizeof(float);
}

static av_status cpu_attention_kernel(av_backend *be, int C, int NH, const char **name) {
    *name = "reference";
    return AV_SUCCESS;
}

// Host memory already: the sink reads the buffer in place.
static av_status cpu_emit_probs(av_backend *be, const float *probs, int layer, int n_slots, int T,
                                av_probs_sink sink, void *user) {
    return sink(user, layer, probs, n_slots, T);
}

static av_status cpu_flush_probs(av_backend *be) { return AV_SUCCESS; }
static av_status cpu_synchronize(av_backend *be) { return AV_SUCCESS; }

// Every shape can: the reductions are taken from each block of P rows as attention computes it.
static av_status cpu_set_reductions(av_backend *be, const av_reduction_request *request, int C, int NH,
                                    bool *on_backend) {
    cpu_impl *impl = be->impl;
    impl->reduce = *on_backend = request != NULL;
    if (request) impl->reductions = *request;
    return AV_SUCCESS;
}

static av_status cpu_emit_reductions(av_backend *be, int layer, int n_slots, int T, av_reductions_sink sink,
                                     void *user) {
    cpu_impl *impl = be->impl;
    if (!impl->reduce) return av_fail(AV_ERROR_INVALID_ARGUMENT, "emit_reductions: set_reductions was not called");
    return sink(user, layer, impl->reduced, n_slots, T);
}

static void cpu_destroy(av_backend *be) {
    if (!be) return;
    cpu_impl *impl = be->impl;
    if (impl) free(impl->reduced);
    free(impl);
    free(be);
}

// OpenBLAS extensions: which kernels it picked, and (DYNAMIC_ARCH builds only, Debian's among them) its kernel
// selection. Weak, so that attnviz still links against an OpenBLAS without them and simply keeps its choice.
char *openblas_get_corename(void) __attribute__((weak));
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));

// OpenBLAS 0.3.21 does not know newer CPUs (family 6 model 207 here) and falls back to its SSE3 "Prescott" kernels,
// 4-7x slower than the AVX-512 ones; pick those again, as OPENBLAS_CORETYPE=SkylakeX would, unless the user chose.
static void fix_openblas_kernels(void) {
    if (!openblas_get_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
    if (getenv("OPENBLAS_CORETYPE") || strcmp(openblas_get_corename(), "Prescott") != 0) return;
    const char *core = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "Haswell"
                                                                                          : NULL;
    if (!core) return;
    setenv("OPENBLAS_CORETYPE", core, 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init(); // reads OPENBLAS_CORETYPE
    unsetenv("OPENBLAS_CORETYPE");
}

av_status backend_cpu_create(av_backend **out) {
    fix_openblas_kernels();
    openblas_set_num_threads(1); // see av_matmul_cpu: OpenMP is the only thread pool
    av_backend *be = av_calloc(1, sizeof *be, "CPU backend");
    cpu_impl *impl = av_calloc(1, sizeof *impl, "CPU backend");
    if (!be || !impl) {
        free(be);
        free(impl);
        return AV_ERROR_OUT_OF_MEMORY;
    }
    *be = (av_backend){
        .name = "cpu",
        .impl = impl,
        .alloc = cpu_alloc,
        .release = cpu_release,
        .upload = cpu_copy,
        .download = cpu_copy,
        .upload_tensor = cpu_upload_tensor,
        .embedding = cpu_embedding,
        .layernorm = cpu_layernorm,
        .rmsnorm = cpu_rmsnorm,
        .rope = cpu_rope,
        .swiglu = cpu_swiglu,
        .matmul = cpu_matmul,
        .attention = cpu_attention,
        .activation = cpu_activation,
        .residual = cpu_residual,
        .memory_available = cpu_memory_available,
        .extra_bytes = cpu_extra_bytes,
        .attention_kernel = cpu_attention_kernel,
        .emit_probs = cpu_emit_probs,
        .flush_probs = cpu_flush_probs,
        .synchronize = cpu_synchronize,
        .set_reductions = cpu_set_reductions,
        .emit_reductions = cpu_emit_reductions,
        .destroy = cpu_destroy,
    };
    *out = be;
    return AV_SUCCESS;
}
