// Checks the emulated cuBLAS against the documented column-major definition before it judges the backend:
// a hand-worked known answer (both ops), the row-major trick C^T = B^T A^T on a naive row-major product, and random
// shapes with every op pair, padded leading dimensions (padding NaN: a read of it fails), batches with strides,
// bf16 inputs, beta == 0 over a NaN C, beta != 0, untouched C padding, and the INVALID_VALUE argument checks.
#include <cublas_v2.h>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <cuda_runtime.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;
template <typename T> static T *D(T *host, size_t n) {
    void *p;
    cudaMalloc(&p, n * sizeof(T));
    cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice);
    return (T *)p;
}
static std::vector<float> H(const float *dev, size_t n) {
    std::vector<float> h(n);
    cudaMemcpy(h.data(), dev, n * sizeof(float), cudaMemcpyDeviceToHost);
    return h;
}
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static float frand(unsigned &s) { s = s * 1664525u + 1013904223u; return (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f; }
static uint16_t bf16(float x) { uint32_t u; memcpy(&u, &x, 4); return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16); }
static float from_bf16(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }

int main() {
    cublasHandle_t h;
    cublasCreate_v2(&h);
    const float one = 1, zero = 0;
    {   // A (2x3) = [1 2 3; 4 5 6], B (3x2) = [7 8; 9 10; 11 12], A B = [58 64; 139 154]
        float hA[] = {1, 4, 2, 5, 3, 6}, hAt[] = {1, 2, 3, 4, 5, 6}, hB[] = {7, 9, 11, 8, 10, 12}, hC[4] = {0};
        float *A = D(hA, 6), *At = D(hAt, 6), *B = D(hB, 6), *C = D(hC, 4);
        float want[] = {58, 139, 64, 154};
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &one, A, CUDA_R_32F, 2, B, CUDA_R_32F, 3, &zero, C,
                     CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        CHECK(!memcmp(H(C, 4).data(), want, sizeof want), "known answer N,N");
        cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 3, &one, At, CUDA_R_32F, 3, B, CUDA_R_32F, 3, &zero, C,
                     CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        CHECK(!memcmp(H(C, 4).data(), want, sizeof want), "known answer T,N");
        float hBt[] = {7, 8, 9, 10, 11, 12}, *Bt = D(hBt, 6); // B stored row-major = B^T column-major (2x3), ldb 2
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 2, 3, &one, A, CUDA_R_32F, 2, Bt, CUDA_R_32F, 2, &zero, C,
                     CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        CHECK(!memcmp(H(C, 4).data(), want, sizeof want), "known answer N,T");
    }
    {   // Row-major X (r x c) @ Y (c x s) = Z (r x s): column-major Z^T (s x r) = Y^T X^T, no transposes.
        int r = 5, c = 7, s = 3;
        unsigned seed = 1;
        std::vector<float> hX(r * c), hY(c * s), hZ(r * s);
        for (auto &v : hX) v = frand(seed);
        for (auto &v : hY) v = frand(seed);
        float *X = D(hX.data(), r * c), *Y = D(hY.data(), c * s), *Z = D(hZ.data(), r * s);
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, s, r, c, &one, Y, CUDA_R_32F, s, X, CUDA_R_32F, c,
                     &zero, Z, CUDA_R_32F, s, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        hZ = H(Z, r * s);
        for (int i = 0; i < r; i++)
            for (int j = 0; j < s; j++) {
                double want = 0;
                for (int l = 0; l < c; l++) want += (double)hX[i * c + l] * hY[l * s + j];
                CHECK(fabs(hZ[i * s + j] - want) < 1e-5, "row-major trick Z[%d][%d] %g want %g", i, j, hZ[i * s + j], want);
            }
    }
    unsigned seed = 42;
    for (int trial = 0; trial < 200; trial++) {
        int m = 1 + trial % 7, n = 1 + trial / 7 % 5, k = 1 + trial / 35 % 6, batch = 1 + trial % 3;
        cublasOperation_t ta = trial % 2 ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trial / 2 % 2 ? CUBLAS_OP_T : CUBLAS_OP_N;
        bool use_bf16 = trial % 5 == 0;
        float beta = trial % 4 == 3 ? 0.5f : 0.0f, alpha = trial % 3 ? 1.0f : -2.0f;
        int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m; // stored A is ar x ac column-major
        int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
        int lda = ar + trial % 3, ldb = br + trial % 2, ldc = m + trial % 4;
        long long sa = (long long)lda * ac + 3, sb = (long long)ldb * bc + 1, sc = (long long)ldc * n + 2;
        // math matrices opA (m x k), opB (k x n), C0 (m x n) per batch
        std::vector<float> opA(batch * m * k), opB(batch * k * n), C0(batch * m * n);
        for (auto &v : opA) v = frand(seed);
        for (auto &v : opB) v = frand(seed);
        for (auto &v : C0) v = frand(seed);
        size_t es = use_bf16 ? 2 : 4;
        std::vector<char> A(sa * batch * es), B(sb * batch * es);
        std::vector<float> C(sc * batch, NAN);
        if (use_bf16) { std::fill((uint16_t *)A.data(), (uint16_t *)A.data() + sa * batch, 0x7fc1); std::fill((uint16_t *)B.data(), (uint16_t *)B.data() + sb * batch, 0x7fc1); }
        else { std::fill((float *)A.data(), (float *)A.data() + sa * batch, NAN); std::fill((float *)B.data(), (float *)B.data() + sb * batch, NAN); }
        auto put = [&](std::vector<char> &buf, long long idx, float v) {
            if (use_bf16) ((uint16_t *)buf.data())[idx] = bf16(v); else ((float *)buf.data())[idx] = v; };
        auto rounded = [&](float v) { return use_bf16 ? from_bf16(bf16(v)) : v; };
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < m; i++)
                for (int l = 0; l < k; l++) {
                    float v = opA[(b * m + i) * k + l];
                    // stored A: column-major; op T means the stored matrix is opA's transpose
                    put(A, b * sa + (ta == CUBLAS_OP_N ? i + (long long)l * lda : l + (long long)i * lda), v);
                }
            for (int l = 0; l < k; l++)
                for (int j = 0; j < n; j++) {
                    float v = opB[(b * k + l) * n + j];
                    put(B, b * sb + (tb == CUBLAS_OP_N ? l + (long long)j * ldb : j + (long long)l * ldb), v);
                }
            if (beta != 0)
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) C[b * sc + i + (long long)j * ldc] = C0[(b * m + i) * n + j];
        }
        cudaDataType t = use_bf16 ? CUDA_R_16BF : CUDA_R_32F;
        char *dA = D(A.data(), A.size()), *dB = D(B.data(), B.size());
        float *dC = D(C.data(), C.size());
        cublasStatus_t st = batch == 1 && trial % 2
            ? cublasGemmEx(h, ta, tb, m, n, k, &alpha, dA, t, lda, dB, t, ldb, &beta, dC, CUDA_R_32F,
                           ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)
            : cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, &alpha, dA, t, lda, sa, dB, t, ldb, sb, &beta,
                                         dC, CUDA_R_32F, ldc, sc, batch, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT);
        CHECK(st == CUBLAS_STATUS_SUCCESS, "trial %d status %d", trial, (int)st);
        C = H(dC, C.size());
        cudaFree(dA);
        cudaFree(dB);
        cudaFree(dC);
        int done = batch == 1 && trial % 2 ? 1 : batch;
        for (int b = 0; b < batch; b++)
            for (long long x = 0; x < sc; x++) {
                long long i = x % ldc, j = x / ldc;
                float got = C[b * sc + x];
                if (b < done && i < m && j < n) {
                    double want = beta * (double)C0[(b * m + i) * n + j];
                    double dot = 0;
                    for (int l = 0; l < k; l++) dot += (double)rounded(opA[(b * m + i) * k + l]) * rounded(opB[(b * k + l) * n + j]);
                    want += alpha * dot;
                    CHECK(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "trial %d b %d C(%lld,%lld) %g want %g", trial, b, i, j, got, want);
                } else {
                    CHECK(std::isnan(got), "trial %d: C padding (%lld,%lld) of batch %d written", trial, i, j, b);
                }
            }
    }
    float ha[4] = {0}, *a = D(ha, 4), *c = D(ha, 4);
    // A product reaching past its allocation (B one column short) must stop the run.
    pid_t pid = fork();
    if (!pid) {
        freopen("/dev/null", "w", stderr); // the abort message is expected
        cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 3, 2, &one, a, CUDA_R_32F, 2, a, CUDA_R_32F, 2, &zero, c,
                     CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        _exit(0);
    }
    int wst;
    waitpid(pid, &wst, 0);
    CHECK(!(WIFEXITED(wst) && WEXITSTATUS(wst) == 0), "out-of-allocation product not caught");
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, CUDA_R_32F, 1, a, CUDA_R_32F, 2, &zero, c,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE, "lda < m");
    CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 3, &one, a, CUDA_R_32F, 2, a, CUDA_R_32F, 3, &zero, c,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE, "lda < k for op T");
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, 2, 3, 2, &one, a, CUDA_R_32F, 2, a, CUDA_R_32F, 2, &zero, c,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE, "ldb < n for op T");
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, CUDA_R_32F, 2, a, CUDA_R_32F, 2, &zero, c,
                       CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE, "ldc < m");
    CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, CUDA_R_32F, 2, a, CUDA_R_16BF, 2, &zero, c,
                       CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED, "mixed types");
    cublasDestroy_v2(h);
    printf("gemm_check: %s (%d failures)\n", failures ? "FAILED" : "ok", failures);
    return failures != 0;
}
