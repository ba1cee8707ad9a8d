// Every CUDA kernel and backend op against its CPU reference: fresh random inputs, outputs poisoned with NaN before
// the run (an unwritten element fails), a guard region after each output checked afterwards (a write past the end
// fails), ragged sizes (T = 1, 31, 33, 1000). Without a device the GPU tests skip; the error-path tests still run.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.cuh"
#include "backend.h"
#include "convert.cuh"
#include "cublas_loader.h"
#include "cuda_check.cuh"
#include "embedding.cuh"
#include "layernorm.cuh"
#include "residual.cuh"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "softmax.cuh"
#include "support_cuda.h"
#include "swiglu.cuh"

#define GUARD_FLOATS 64
// A NaN with a payload no kernel produces: a guard float that still holds it was not written.
#define POISON_BITS 0x7fc0dead

static const int ragged_T[] = {1, 31, 33, 1000};
#define N_RAGGED (sizeof ragged_T / sizeof ragged_T[0])


static float poison_value(void) {
    uint32_t bits = POISON_BITS;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static bool is_poison(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits == POISON_BITS;
}

// Device buffer of BYTES followed by the guard, every float of it poisoned.
static void *device_poisoned(size_t bytes) {
    size_t floats = (bytes + sizeof(float) - 1) / sizeof(float) + GUARD_FLOATS;
    float *host = malloc(floats * sizeof(float));
    for (size_t i = 0; i < floats; i++) host[i] = poison_value();
    void *dev = NULL;
    CUDA_OK(cudaMalloc(&dev, floats * sizeof(float)));
    CUDA_OK(cudaMemcpy(dev, host, floats * sizeof(float), cudaMemcpyHostToDevice));
    // A pageable cudaMemcpy may return before its DMA lands; the backend's stream must not overtake it.
    CUDA_OK(cudaDeviceSynchronize());
    free(host);
    return dev;
}

static void *device_copy(const void *host, size_t bytes) {
    void *dev = NULL;
    CUDA_OK(cudaMalloc(&dev, bytes ? bytes : 1));
    CUDA_OK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaDeviceSynchronize());
    return dev;
}

static float *random_host(size_t n, uint64_t seed, float lo, float hi) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    fill_random(x, n, seed, lo, hi);
    return x;
}

// Downloads BYTES of output from a device_poisoned buffer into HOST after checking that its guard is intact.
static void download_guarded(void *host, const void *dev, size_t bytes, const char *what) {
    size_t guard_start = (bytes + sizeof(float) - 1) / sizeof(float);
    size_t floats = guard_start + GUARD_FLOATS;
    float *all = malloc(floats * sizeof(float));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(all, dev, floats * sizeof(float), cudaMemcpyDeviceToHost));
    for (size_t i = guard_start; i < floats; i++)
        cr_assert(is_poison(all[i]), "%s: guard float %zu after the output was overwritten", what, i - guard_start);
    memcpy(host, all, bytes);
    free(all);
}

// Error paths: these run without a device too.

static av_status failing_cuda_call(void) {
    AV_CUDA_CHECK(cudaSetDevice(-1));
    return AV_SUCCESS;
}

static av_status failing_cublas_call(void) {
    AV_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED);
    return AV_SUCCESS;
}

Test(cuda_errors, cuda_check_names_statement_file_line_and_function) {
    cr_assert_eq(failing_cuda_call(), AV_ERROR_CUDA);
    const char *msg = av_last_error();
    cr_assert(strstr(msg, "cudaSetDevice(-1)"), "statement missing: %s", msg);
    cr_assert(strstr(msg, "test_cuda_kernels.c:"), "file missing: %s", msg);
    cr_assert(strstr(msg, "failing_cuda_call"), "function missing: %s", msg);
    cr_assert(strstr(msg, "cudaError"), "error name missing: %s", msg);
}

static bool cublas_is_mapped(void) {
    FILE *maps = fopen("/proc/self/maps", "r");
    cr_assert(maps);
    char line[1024];
    bool found = false;
    while (fgets(line, sizeof line, maps)) found |= strstr(line, "libcublas.so") != NULL;
    fclose(maps);
    return found;
}

// cuBLAS is mapped only when asked for (a CPU run never pays for it), then with every entry point resolved. Needs
// the library, not a device.
Test(cuda_errors, cublas_loads_on_demand_with_every_entry_point) {
    cr_assert(!cublas_is_mapped(), "libcublas is mapped before anything asked for it");
    const av_cublas_api *blas = NULL;
    AV_OK(av_cublas_load(&blas));
    cr_assert(blas->create && blas->destroy && blas->set_stream && blas->set_math_mode && blas->gemm_ex &&
              blas->gemm_strided_batched_ex && blas->status_name && blas->status_string);
    cr_assert_str_eq(blas->status_name(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
    cr_assert(cublas_is_mapped());
}

Test(cuda_errors, cublas_check_names_the_status) {
    cr_assert_eq(failing_cublas_call(), AV_ERROR_CUDA);
    const char *msg = av_last_error();
    cr_assert(strstr(msg, "CUBLAS_STATUS_NOT_INITIALIZED"), "status missing: %s", msg);
    cr_assert(strstr(msg, "failing_cublas_call"), "function missing: %s", msg);
}

Test(cuda_errors, create_agrees_with_availability) {
    backend_options options = {AV_COMPUTE_FP32, AV_ATTN_FP32, AV_ATTENTION_AUTO};
    av_backend *be = NULL;
    av_status st = backend_cuda_create(&be, &options);
    if (backend_cuda_available()) {
        cr_assert_eq(st, AV_SUCCESS, "%s", av_last_error());
        cr_assert_str_eq(be->name, "cuda");
        be->destroy(be);
    } else {
        cr_assert_eq(st, AV_ERROR_NO_DEVICE, "without a device: status %d (%s)", (int)st, av_last_error());
        cr_assert(strstr(av_last_error(), "CUDA"), "%s", av_last_error());
    }
}

// Kernels, called through their launchers.

Test(cuda_kernels, embedding_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    const int V = 97, P = 1024, C = 80;
    float *wte = random_host((size_t)V * C, 1, -1.0f, 1.0f), *wpe = random_host((size_t)P * C, 2, -1.0f, 1.0f);
    float *wtt = random_host(C, 3, -1.0f, 1.0f);
    float *d_wte = device_copy(wte, (size_t)V * C * 4), *d_wpe = device_copy(wpe, (size_t)P * C * 4);
    float *d_wtt = device_copy(wtt, (size_t)C * 4);
    for (size_t k = 0; k < N_RAGGED; k++) {
        // with_type 0 and 1: GPT-2 and BERT; 2: a rotary model's token row alone (no position table).
        for (int with_type = 0; with_type < 3; with_type++) {
            int T = ragged_T[k];
            const float *pos = with_type == 2 ? NULL : wpe, *d_pos = with_type == 2 ? NULL : d_wpe;
            const float *type = with_type == 1 ? wtt : NULL, *d_type = with_type == 1 ? d_wtt : NULL;
            int32_t *ids = malloc((size_t)T * sizeof *ids);
            for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 7919u + 13u * (unsigned)k) % (unsigned)V);
            int32_t *d_ids = device_copy(ids, (size_t)T * sizeof *ids);
            size_t n = (size_t)T * C;
            float *want = malloc(n * 4), *got = malloc(n * 4);
            float *d_out = device_poisoned(n * 4);
            av_embedding_cpu(want, ids, wte, pos, type, T, C);
            AV_OK(av_embedding_cuda(d_out, d_ids, d_wte, d_pos, d_type, T, C, 0));
            download_guarded(got, d_out, n * 4, "embedding");
            expect_close("embedding", got, want, n, 0.0, 0.0, NULL);
            cudaFree(d_out);
            cudaFree(d_ids);
            free(ids);
            free(want);
            free(got);
        }
    }
    cudaFree(d_wte);
    cudaFree(d_wpe);
    cudaFree(d_wtt);
    free(wte);
    free(wpe);
    free(wtt);
}

// A row norm under test: LayerNorm when it has a bias, RMSNorm otherwise; weight and bias on the host and the device.
typedef struct row_norm {
    const char *name;
    float eps;
    double tol; // absolute and relative
    const float *weight, *bias, *d_weight, *d_bias;
} row_norm;

static void row_norm_reference(const row_norm *nm, float *out, const float *inp, int T, int C) {
    if (nm->bias) av_layernorm_cpu(out, inp, nm->weight, nm->bias, T, C, nm->eps);
    else av_rmsnorm_cpu(out, inp, nm->weight, T, C, nm->eps);
}

static av_status row_norm_kernel(const row_norm *nm, float *out, const float *inp, int T, int C) {
    return nm->bias ? av_layernorm_cuda(out, inp, nm->d_weight, nm->d_bias, T, C, nm->eps, 0)
                    : av_rmsnorm_cuda(out, inp, nm->d_weight, T, C, nm->eps, 0);
}

// inp (T, C) into a poisoned buffer with its guard, then in place, as the model may call it.
static void expect_row_norm_matches(const row_norm *nm, const float *inp, int T, int C) {
    size_t n = (size_t)T * C;
    float *want = malloc(n * 4), *got = malloc(n * 4);
    float *d_inp = device_copy(inp, n * 4), *d_out = device_poisoned(n * 4);
    row_norm_reference(nm, want, inp, T, C);
    AV_OK(row_norm_kernel(nm, d_out, d_inp, T, C));
    download_guarded(got, d_out, n * 4, nm->name);
    expect_close(nm->name, got, want, n, nm->tol, nm->tol, NULL);
    AV_OK(row_norm_kernel(nm, d_inp, d_inp, T, C));
    CUDA_OK(cudaMemcpy(got, d_inp, n * 4, cudaMemcpyDeviceToHost));
    char what[64];
    snprintf(what, sizeof what, "%s in place", nm->name);
    expect_close(what, got, want, n, nm->tol, nm->tol, NULL);
    cudaFree(d_inp);
    cudaFree(d_out);
    free(want);
    free(got);
}

Test(cuda_kernels, layernorm_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    static const int widths[] = {33, 768};
    for (size_t w = 0; w < 2; w++) {
        int C = widths[w];
        float *weight = random_host(C, 10 + w, 0.5f, 1.5f), *bias = random_host(C, 20 + w, -0.5f, 0.5f);
        float *d_weight = device_copy(weight, (size_t)C * 4), *d_bias = device_copy(bias, (size_t)C * 4);
        row_norm nm = {"layernorm", 1e-5f, 1e-5, weight, bias, d_weight, d_bias};
        for (size_t k = 0; k < N_RAGGED; k++) {
            int T = ragged_T[k];
            // A mean far from zero: a one-pass E[x^2] - mean^2 variance would fail here.
            float *inp = random_host((size_t)T * C, 100 + k, 40.0f, 44.0f);
            expect_row_norm_matches(&nm, inp, T, C);
            free(inp);
        }
        cudaFree(d_weight);
        cudaFree(d_bias);
        free(weight);
        free(bias);
    }
}

Test(cuda_kernels, rmsnorm_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    static const int widths[] = {33, 768, 4096};
    for (size_t w = 0; w < 3; w++) {
        int C = widths[w];
        float *weight = random_host(C, 1200 + w, 0.5f, 1.5f);
        float *d_weight = device_copy(weight, (size_t)C * 4);
        row_norm nm = {"rmsnorm", 1e-6f, 1e-6, weight, NULL, d_weight, NULL};
        for (size_t k = 0; k < N_RAGGED; k++) {
            int T = ragged_T[k];
            // An offset, so that rows have a mean square far from their variance (a norm that subtracts the mean
            // would fail), and large values, where the squares must not lose the small ones.
            float offset = k % 2 ? 20.0f : 0.0f;
            float *inp = random_host((size_t)T * C, 1210 + 10 * w + k, offset - 3.0f, offset + 3.0f);
            expect_row_norm_matches(&nm, inp, T, C);
            free(inp);
        }
        cudaFree(d_weight);
        free(weight);
    }
}

// The plain rotary frequencies of heads of HS columns and rope_theta BASE, as the model loader computes them.
static float *rope_inv_freq(int HS, float base) {
    float *f = malloc((size_t)(HS / 2) * sizeof *f);
    model_config cfg = {.n_embd = HS, .n_head = 1, .rope = {.type = AV_ROPE_DEFAULT, .theta = base}};
    config_rope_inv_freq(&cfg, f);
    return f;
}

// RoPE in place on a (T, (NH + 2 NKV) HS) qkv with a guard after it: q and k turned as the CPU turns them, v
// bit-for-bit untouched. The sines and cosines of the two sides may differ by an ulp (glibc's sinf and cosf are not
// always correctly rounded), so q and k agree within a few 1e-7 for entries of magnitude 2.
static void check_rope(int T, int NH, int NKV, int HS, float base, uint64_t seed) {
    size_t width = (size_t)(NH + 2 * NKV) * HS, n = (size_t)T * width;
    float *inv_freq = rope_inv_freq(HS, base);
    float *qkv = random_host(n, seed, -2.0f, 2.0f), *want = malloc(n * 4), *got = malloc(n * 4);
    memcpy(want, qkv, n * 4);
    av_rope_cpu(want, inv_freq, T, NH, NKV, HS);
    float *d_freq = device_copy(inv_freq, (size_t)(HS / 2) * 4), *d_qkv = device_poisoned(n * 4);
    CUDA_OK(cudaMemcpy(d_qkv, qkv, n * 4, cudaMemcpyHostToDevice));
    CUDA_OK(cudaDeviceSynchronize());
    AV_OK(av_rope_cuda(d_qkv, d_freq, T, NH, NKV, HS, 0));
    char what[128];
    snprintf(what, sizeof what, "rope T=%d NH=%d NKV=%d HS=%d base %g", T, NH, NKV, HS, base);
    download_guarded(got, d_qkv, n * 4, what);
    expect_close(what, got, want, n, 1e-6, 1e-6, NULL);
    for (int t = 0; t < T; t++)
        for (size_t c = (size_t)(NH + NKV) * HS; c < width; c++)
            cr_assert(got[t * width + c] == qkv[t * width + c], "%s: v changed at row %d column %zu", what, t, c);
    cudaFree(d_freq);
    cudaFree(d_qkv);
    free(inv_freq);
    free(qkv);
    free(want);
    free(got);
}

Test(cuda_kernels, rope_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    for (size_t k = 0; k < N_RAGGED; k++) {
        check_rope(ragged_T[k], 4, 2, 64, 10000.0f, 1300 + k);   // grouped
        check_rope(ragged_T[k], 4, 1, 128, 500000.0f, 1310 + k); // multi-query, Llama 3's base
        check_rope(ragged_T[k], 3, 3, 128, 10000.0f, 1320 + k);  // every head its own key/value
    }
}

// Positions up to 100k: angles of 1e5 rad, where a fast sine or a reduction in fp32 would be far off.
Test(cuda_kernels, rope_matches_cpu_at_long_positions) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    check_rope(100003, 2, 1, 64, 10000.0f, 1330);
    check_rope(100003, 1, 1, 128, 500000.0f, 1331);
}

Test(cuda_kernels, swiglu_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    static const int widths[] = {33, 1024};
    for (size_t w = 0; w < 2; w++) {
        int I = widths[w];
        for (size_t k = 0; k < N_RAGGED; k++) {
            int T = ragged_T[k];
            size_t n_in = (size_t)T * 2 * I, n = (size_t)T * I;
            // Gates out to where silu saturates at 0 and at x.
            float *inp = random_host(n_in, 1400 + 10 * w + k, -20.0f, 20.0f);
            float *want = malloc(n * 4), *got = malloc(n * 4);
            float *d_inp = device_copy(inp, n_in * 4), *d_out = device_poisoned(n * 4);
            av_swiglu_cpu(want, inp, T, I);
            AV_OK(av_swiglu_cuda(d_out, d_inp, T, I, 0));
            download_guarded(got, d_out, n * 4, "swiglu");
            expect_close("swiglu", got, want, n, 1e-6, 2e-6, NULL);
            cudaFree(d_inp);
            cudaFree(d_out);
            free(inp);
            free(want);
            free(got);
        }
    }
}

Test(cuda_kernels, activations_match_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    static const av_activation acts[] = {AV_ACT_GELU_TANH, AV_ACT_GELU_ERF, AV_ACT_RELU, AV_ACT_SILU};
    static const char *names[] = {"gelu tanh", "gelu erf", "relu", "silu"};
    static const size_t sizes[] = {1, 31, 33, 1000, (1u << 20) + 3};
    for (size_t a = 0; a < 4; a++) {
        for (size_t k = 0; k < 5; k++) {
            size_t n = sizes[k];
            float *inp = random_host(n, 200 + 10 * a + k, -6.0f, 6.0f);
            float *want = malloc(n * 4), *got = malloc(n * 4);
            float *d_inp = device_copy(inp, n * 4), *d_out = device_poisoned(n * 4);
            av_activation_cpu(want, inp, n, acts[a]);
            AV_OK(av_activation_cuda(d_out, d_inp, n, acts[a], 0));
            download_guarded(got, d_out, n * 4, names[a]);
            expect_close(names[a], got, want, n, 1e-6, 1e-5, NULL);
            cudaFree(d_inp);
            cudaFree(d_out);
            free(inp);
            free(want);
            free(got);
        }
    }
}

Test(cuda_kernels, residual_and_bias_match_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    const int OC = 97;
    float *bias = random_host(OC, 300, -1.0f, 1.0f);
    float *d_bias = device_copy(bias, (size_t)OC * 4);
    for (size_t k = 0; k < N_RAGGED; k++) {
        int T = ragged_T[k];
        size_t n = (size_t)T * OC;
        float *a = random_host(n, 310 + k, -2.0f, 2.0f), *b = random_host(n, 320 + k, -2.0f, 2.0f);
        float *want = malloc(n * 4), *got = malloc(n * 4);
        float *d_a = device_copy(a, n * 4), *d_b = device_copy(b, n * 4), *d_out = device_poisoned(n * 4);
        av_residual_cpu(want, a, b, n);
        AV_OK(av_residual_cuda(d_out, d_a, d_b, n, 0));
        download_guarded(got, d_out, n * 4, "residual");
        expect_close("residual", got, want, n, 0.0, 0.0, NULL);
        AV_OK(av_residual_cuda(d_a, d_a, d_b, n, 0)); // out aliasing a, as the model calls it
        CUDA_OK(cudaMemcpy(got, d_a, n * 4, cudaMemcpyDeviceToHost));
        expect_close("residual in place", got, want, n, 0.0, 0.0, NULL);

        for (size_t i = 0; i < n; i++) want[i] = b[i] + bias[i % OC];
        CUDA_OK(cudaMemcpy(d_out, b, n * 4, cudaMemcpyHostToDevice));
        AV_OK(av_add_bias_cuda(d_out, d_bias, T, OC, 0));
        download_guarded(got, d_out, n * 4, "bias");
        expect_close("bias", got, want, n, 0.0, 0.0, NULL);
        cudaFree(d_a);
        cudaFree(d_b);
        cudaFree(d_out);
        free(a);
        free(b);
        free(want);
        free(got);
    }
    cudaFree(d_bias);
    free(bias);
}

Test(cuda_kernels, bf16_conversion_rounds_to_nearest_even) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    const size_t n = 1000;
    float *inp = random_host(n, 400, -100.0f, 100.0f);
    uint16_t *got = malloc(n * sizeof *got);
    uint16_t *d_out = device_poisoned(n * sizeof *got);
    float *d_inp = device_copy(inp, n * 4);
    AV_OK(av_f32_to_bf16_cuda(d_out, d_inp, n, 0));
    download_guarded(got, d_out, n * sizeof *got, "bf16");
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        float want = av_round_bf16(inp[i]);
        memcpy(&u, &want, sizeof u);
        cr_assert_eq(got[i], (uint16_t)(u >> 16), "element %zu: %g -> 0x%04x, want 0x%04x", i, inp[i], got[i],
                     (unsigned)(u >> 16));
    }
    cudaFree(d_out);
    cudaFree(d_inp);
    free(inp);
    free(got);
}

// The attention softmax kernel alone: raw scores in, P out (fp32 in place and the side buffer in fp32).
Test(cuda_kernels, attention_softmax_matches_cpu_rows) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    for (size_t k = 0; k < N_RAGGED; k++) {
        for (int causal = 0; causal < 2; causal++) {
            int T = ragged_T[k];
            size_t n = (size_t)T * T;
            float scale = 0.125f;
            float *scores = random_host(n, 500 + k, -40.0f, 40.0f);
            float *want = malloc(n * 4), *got = malloc(n * 4);
            // Reference, the CPU's softmax_row: max of s*scale, exp(s*scale - max), times 1/sum; masked entries 0.
            for (int i = 0; i < T; i++) {
                const float *s = scores + (size_t)i * T;
                float *p = want + (size_t)i * T;
                int visible = causal ? i + 1 : T;
                float max = -INFINITY, sum = 0.0f;
                for (int j = 0; j < visible; j++) max = fmaxf(max, s[j] * scale);
                for (int j = 0; j < visible; j++) sum += p[j] = expf(s[j] * scale - max);
                for (int j = 0; j < T; j++) p[j] = j < visible ? p[j] / sum : 0.0f;
            }
            float *d_scores = device_copy(scores, n * 4), *d_probs = device_poisoned(n * 4);
            AV_OK(av_attention_softmax_cuda(d_scores, d_probs, T, scale, causal, AV_ATTN_FP32, 0));
            download_guarded(got, d_probs, n * 4, "softmax side buffer");
            expect_close("softmax P (side buffer)", got, want, n, 1e-6, 1e-5, NULL);
            CUDA_OK(cudaMemcpy(got, d_scores, n * 4, cudaMemcpyDeviceToHost));
            expect_close("softmax P (for P.V)", got, want, n, 1e-6, 1e-5, NULL);
            for (int i = 0; causal && i < T; i++)
                for (int j = i + 1; j < T; j++)
                    cr_assert_eq(got[(size_t)i * T + j], 0.0f, "masked P[%d][%d] = %g", i, j, got[(size_t)i * T + j]);
            cudaFree(d_scores);
            cudaFree(d_probs);
            free(scores);
            free(want);
            free(got);
        }
    }
}

// Backend ops, called through the table.

typedef struct collected_probs {
    int calls;
    int layers[8];
    float *probs[8]; // (n_slots, T, T) each, copied
    int n_slots, T;
} collected_probs;

static av_status collect_probs(void *user, int layer, const float *probs, int n_slots, int T) {
    collected_probs *c = user;
    cr_assert_lt(c->calls, 8);
    size_t n = (size_t)n_slots * T * T;
    c->layers[c->calls] = layer;
    c->probs[c->calls] = malloc(n * sizeof(float));
    memcpy(c->probs[c->calls], probs, n * sizeof(float));
    c->n_slots = n_slots;
    c->T = T;
    c->calls++;
    return AV_SUCCESS;
}

static void collected_free(collected_probs *c) {
    for (int i = 0; i < c->calls; i++) free(c->probs[i]);
}

static av_backend *cuda_backend(av_compute_dtype compute, av_attn_dtype attn) {
    backend_options options = {compute, attn, AV_ATTENTION_AUTO};
    av_backend *be = NULL;
    AV_OK(backend_cuda_create(&be, &options));
    return be;
}

static void check_matmul(av_backend *be, bool bf16, int T, int C, int OC, av_weight_layout layout, bool with_bias,
                         uint64_t seed) {
    size_t n_in = (size_t)T * C, n_w = (size_t)C * OC, n_out = (size_t)T * OC;
    float *inp = random_host(n_in, seed, -1.0f, 1.0f), *weight = random_host(n_w, seed + 1, -1.0f, 1.0f);
    float *bias = random_host(OC, seed + 2, -1.0f, 1.0f);
    float *want = malloc(n_out * 4), *got = malloc(n_out * 4);
    const float *d_weight = NULL, *d_bias = NULL;
    AV_OK(be->upload_tensor(be, &d_weight, weight, n_w, true));
    AV_OK(be->upload_tensor(be, &d_bias, bias, OC, false));
    float *d_inp = device_copy(inp, n_in * 4), *d_out = device_poisoned(n_out * 4);
    AV_OK(be->matmul(be, d_out, d_inp, d_weight, with_bias ? d_bias : NULL, T, C, OC, layout));
    download_guarded(got, d_out, n_out * 4, "matmul");
    if (bf16) {
        // The same product on bf16-rounded operands: only the summation order may differ.
        for (size_t i = 0; i < n_in; i++) inp[i] = av_round_bf16(inp[i]);
        for (size_t i = 0; i < n_w; i++) weight[i] = av_round_bf16(weight[i]);
    }
    av_matmul_cpu(want, inp, weight, with_bias ? bias : NULL, T, C, OC, layout);
    // Tensor cores may round the bf16 path's fp32 accumulation differently: a looser bound, still far below the
    // 1e-2 that a wrong layout or unrounded operand would give.
    if (bf16) expect_close("matmul bf16", got, want, n_out, 1e-4, 1e-4, NULL);
    else expect_close("matmul fp32", got, want, n_out, 2e-5, 1e-5, NULL);
    cudaFree(d_inp);
    cudaFree(d_out);
    free(inp);
    free(weight);
    free(bias);
    free(want);
    free(got);
}

Test(cuda_backend, matmul_fp32_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    av_backend *be = cuda_backend(AV_COMPUTE_FP32, AV_ATTN_FP32);
    for (size_t k = 0; k < N_RAGGED; k++)
        for (int layout = 0; layout < 2; layout++)
            check_matmul(be, false, ragged_T[k], 96, 33 + 64 * layout, (av_weight_layout)layout, k % 2 == 0,
                         600 + 10 * k + layout);
    be->destroy(be);
}

Test(cuda_backend, matmul_bf16_matches_cpu_on_rounded_operands) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    av_backend *be = cuda_backend(AV_COMPUTE_BF16, AV_ATTN_FP32);
    for (size_t k = 0; k < N_RAGGED; k++)
        for (int layout = 0; layout < 2; layout++)
            check_matmul(be, true, ragged_T[k], 64, 31 + 40 * layout, (av_weight_layout)layout, k % 2 == 1,
                         700 + 10 * k + layout);
    be->destroy(be);
}

Test(cuda_backend, upload_tensor_keeps_fp32_tables_and_rounds_matmul_weights_to_bf16) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    av_backend *be = cuda_backend(AV_COMPUTE_BF16, AV_ATTN_FP32);
    const size_t n = 1001;
    float *w = random_host(n, 800, -100.0f, 100.0f);
    const float *as_table = NULL, *as_matrix = NULL;
    AV_OK(be->upload_tensor(be, &as_table, w, n, false));
    AV_OK(be->upload_tensor(be, &as_matrix, w, n, true));
    cr_assert_neq(as_table, as_matrix, "GPT-2's wte is both an fp32 table and a bf16 LM head: two copies");
    float *got = malloc(n * 4);
    AV_OK(be->download(be, got, as_table, n * 4));
    expect_close("uploaded fp32 table", got, w, n, 0.0, 0.0, NULL);
    uint16_t *bits = malloc(n * sizeof *bits);
    AV_OK(be->download(be, bits, as_matrix, n * sizeof *bits));
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)bits[i] << 16;
        memcpy(&got[i], &u, sizeof u);
        cr_assert_eq(got[i], av_round_bf16(w[i]), "element %zu: %g stored as %g", i, w[i], got[i]);
    }
    free(bits);
    free(got);
    free(w);
    be->destroy(be);
}

// Attention through the table against av_attention_cpu: out, and P through emit_probs/flush_probs. NKV key/value
// heads (NKV < NH: grouped-query attention, each shared by NH / NKV query heads).
static void check_attention(av_attn_dtype dtype, int T, int NH, int NKV, int HS, bool causal, uint64_t seed) {
    int C = NH * HS;
    av_backend *be = cuda_backend(AV_COMPUTE_FP32, dtype);
    // Heads captured out of order, one skipped.
    int head_slot[8];
    int n_slots = 0;
    for (int h = NH - 1; h >= 0; h--) head_slot[h] = h == 1 ? -1 : n_slots++;
    size_t n_qkv = (size_t)T * (C + 2 * NKV * HS), n_out = (size_t)T * C, n_probs = (size_t)n_slots * T * T;
    float *qkv = random_host(n_qkv, seed, -2.0f, 2.0f);
    float *want_out = malloc(n_out * 4), *want_probs = malloc(n_probs * 4), *got_out = malloc(n_out * 4);
    AV_OK(av_attention_cpu(want_out, want_probs, qkv, T, C, NH, NKV, causal, head_slot));

    float *d_qkv = device_copy(qkv, n_qkv * 4), *d_out = device_poisoned(n_out * 4);
    float *d_probs = device_poisoned(n_probs * 4); // sized for fp32, as the model allocates it
    AV_OK(be->attention(be, d_out, d_probs, d_qkv, T, C, NH, NKV, causal, head_slot));
    collected_probs got = {0};
    AV_OK(be->emit_probs(be, d_probs, 5, n_slots, T, collect_probs, &got));
    AV_OK(be->flush_probs(be));
    download_guarded(got_out, d_out, n_out * 4, "attention out");
    expect_close("attention out", got_out, want_out, n_out, 1e-5, 1e-4, NULL);

    cr_assert_eq(got.calls, 1);
    cr_assert_eq(got.layers[0], 5);
    cr_assert_eq(got.n_slots, n_slots);
    cr_assert_eq(got.T, T);
    double rtol = dtype == AV_ATTN_FP32 ? 0.0 : dtype == AV_ATTN_FP16 ? 1e-3 : 8e-3;
    expect_close("attention P", got.probs[0], want_probs, n_probs, 1e-5, rtol, NULL);
    for (size_t i = 0; i < n_probs; i++) {
        size_t row = (i / T) % T, col = i % T;
        if (causal && col > row) cr_assert_eq(got.probs[0][i], 0.0f, "masked P at %zu is %g", i, got.probs[0][i]);
    }
    // The side buffer holds n_slots * T * T elements of the dtype; nothing past them may be touched.
    size_t used = n_probs * (dtype == AV_ATTN_FP32 ? 4 : 2);
    size_t tail_floats = n_probs + GUARD_FLOATS - (used + 3) / 4;
    float *tail = malloc(tail_floats * 4);
    CUDA_OK(cudaMemcpy(tail, (const char *)d_probs + (used + 3) / 4 * 4, tail_floats * 4, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < tail_floats; i++) cr_assert(is_poison(tail[i]), "side buffer written past its P");
    free(tail);

    collected_free(&got);
    cudaFree(d_qkv);
    cudaFree(d_out);
    cudaFree(d_probs);
    free(qkv);
    free(want_out);
    free(want_probs);
    free(got_out);
    be->destroy(be);
}

Test(cuda_backend, attention_fp32_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    for (size_t k = 0; k < N_RAGGED; k++)
        for (int causal = 0; causal < 2; causal++)
            check_attention(AV_ATTN_FP32, ragged_T[k], 4, 4, 16, causal, 900 + k);
}

// Grouped-query attention on the plain path: 2 and 3 query heads a key/value head, and multi-query (one for all).
Test(cuda_backend, attention_grouped_query_heads_match_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    static const int heads[][2] = {{4, 2}, {6, 2}, {5, 1}};
    for (size_t k = 0; k < N_RAGGED; k++)
        for (size_t g = 0; g < 3; g++)
            for (int causal = 0; causal < 2; causal++)
                check_attention(AV_ATTN_FP32, ragged_T[k], heads[g][0], heads[g][1], 16, causal, 1500 + 10 * k + g);
}

// The Llama ops are in the table and reach their kernels (the kernels' own tests above cover the shapes).
Test(cuda_backend, llama_ops_through_the_table) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    av_backend *be = cuda_backend(AV_COMPUTE_FP32, AV_ATTN_FP32);
    const int T = 33, NH = 4, NKV = 2, HS = 64, C = NH * HS, I = 40;
    size_t n = (size_t)T * C, n_qkv = (size_t)T * (NH + 2 * NKV) * HS, n_gate = (size_t)T * 2 * I;
    size_t n_most = n_qkv > n_gate ? n_qkv : n_gate;
    float *x = random_host(n_most, 1600, -2.0f, 2.0f), *weight = random_host(C, 1601, 0.5f, 1.5f);
    float *inv_freq = rope_inv_freq(HS, 10000.0f), *want = malloc(n_most * 4), *got = malloc(n_most * 4);
    float *d_x = device_copy(x, n_most * 4), *d_weight = device_copy(weight, (size_t)C * 4);
    float *d_freq = device_copy(inv_freq, (size_t)(HS / 2) * 4), *d_out = device_poisoned(n_most * 4);

    av_rmsnorm_cpu(want, x, weight, T, C, 1e-5f);
    AV_OK(be->rmsnorm(be, d_out, d_x, d_weight, T, C, 1e-5f));
    download_guarded(got, d_out, n * 4, "rmsnorm op");
    expect_close("rmsnorm op", got, want, n, 1e-6, 1e-6, NULL);

    av_swiglu_cpu(want, x, T, I);
    AV_OK(be->swiglu(be, d_out, d_x, T, I));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(got, d_out, (size_t)T * I * 4, cudaMemcpyDeviceToHost));
    expect_close("swiglu op", got, want, (size_t)T * I, 1e-6, 2e-6, NULL);

    memcpy(want, x, n_qkv * 4);
    av_rope_cpu(want, inv_freq, T, NH, NKV, HS);
    AV_OK(be->rope(be, d_x, d_freq, T, NH, NKV, HS));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(got, d_x, n_qkv * 4, cudaMemcpyDeviceToHost));
    expect_close("rope op", got, want, n_qkv, 1e-6, 1e-6, NULL);

    cudaFree(d_x);
    cudaFree(d_weight);
    cudaFree(d_freq);
    cudaFree(d_out);
    free(x);
    free(weight);
    free(inv_freq);
    free(want);
    free(got);
    be->destroy(be);
}

Test(cuda_backend, attention_fp16_side_buffer_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    for (size_t k = 0; k < N_RAGGED; k++) check_attention(AV_ATTN_FP16, ragged_T[k], 3, 3, 24, true, 950 + k);
}

Test(cuda_backend, attention_bf16_side_buffer_matches_cpu) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    for (size_t k = 0; k < N_RAGGED; k++) check_attention(AV_ATTN_BF16, ragged_T[k], 3, 3, 24, true, 970 + k);
}

// Several layers through one device buffer, as the model runs them: each layer's P must reach the sink intact, in
// layer order, although the next layer's attention overwrites the buffer while the previous copy may be in flight.
Test(cuda_backend, probs_stream_out_in_layer_order) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    const int T = 1000, NH = 4, HS = 16, C = NH * HS, L = 5;
    int head_slot[4] = {0, 1, 2, 3};
    av_backend *be = cuda_backend(AV_COMPUTE_FP32, AV_ATTN_FP32);
    size_t n_qkv = (size_t)T * 3 * C, n_probs = (size_t)NH * T * T;
    float *d_qkv = NULL, *d_out = device_poisoned((size_t)T * C * 4), *d_probs = device_poisoned(n_probs * 4);
    CUDA_OK(cudaMalloc((void **)&d_qkv, n_qkv * 4));
    float *want[5];
    float *scratch_out = malloc((size_t)T * C * 4);
    collected_probs got = {0};
    for (int l = 0; l < L; l++) {
        float *qkv = random_host(n_qkv, 1000 + l, -3.0f, 3.0f);
        want[l] = malloc(n_probs * 4);
        AV_OK(av_attention_cpu(scratch_out, want[l], qkv, T, C, NH, NH, true, head_slot));
        AV_OK(be->upload(be, d_qkv, qkv, n_qkv * 4));
        AV_OK(be->attention(be, d_out, d_probs, d_qkv, T, C, NH, NH, true, head_slot));
        AV_OK(be->emit_probs(be, d_probs, l, NH, T, collect_probs, &got));
        free(qkv);
    }
    AV_OK(be->flush_probs(be));
    cr_assert_eq(got.calls, L);
    for (int l = 0; l < L; l++) {
        cr_assert_eq(got.layers[l], l);
        expect_close("streamed P", got.probs[l], want[l], n_probs, 1e-5, 0.0, NULL);
        free(want[l]);
    }
    collected_free(&got);
    free(scratch_out);
    cudaFree(d_qkv);
    cudaFree(d_out);
    cudaFree(d_probs);
    be->destroy(be);
}

// A forward pass that fails between two emits never flushes; the next pass must not receive its leftover layer.
Test(cuda_backend, abandoned_pass_is_not_delivered_to_the_next) {
    if (!backend_cuda_available()) cr_skip_test("no CUDA device");
    const int T = 33, NH = 2, HS = 8, C = NH * HS;
    int head_slot[2] = {0, 1};
    av_backend *be = cuda_backend(AV_COMPUTE_FP32, AV_ATTN_FP32);
    size_t n_qkv = (size_t)T * 3 * C, n_probs = (size_t)NH * T * T;
    float *qkv = random_host(n_qkv, 1100, -1.0f, 1.0f);
    float *d_qkv = device_copy(qkv, n_qkv * 4), *d_out = device_poisoned((size_t)T * C * 4);
    float *d_probs = device_poisoned(n_probs * 4);
    collected_probs failed = {0}, next = {0};
    AV_OK(be->attention(be, d_out, d_probs, d_qkv, T, C, NH, NH, true, head_slot));
    AV_OK(be->emit_probs(be, d_probs, 3, NH, T, collect_probs, &failed));
    AV_OK(be->attention(be, d_out, d_probs, d_qkv, T, C, NH, NH, true, head_slot));
    AV_OK(be->emit_probs(be, d_probs, 0, NH, T, collect_probs, &next));
    AV_OK(be->flush_probs(be));
    cr_assert_eq(failed.calls, 0, "the abandoned pass's layer was delivered");
    cr_assert_eq(next.calls, 1);
    cr_assert_eq(next.layers[0], 0);
    collected_free(&next);
    cudaFree(d_qkv);
    cudaFree(d_out);
    cudaFree(d_probs);
    free(qkv);
    be->destroy(be);
}
