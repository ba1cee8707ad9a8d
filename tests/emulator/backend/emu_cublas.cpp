// A CPU stand-in for the eight cuBLAS entry points attnviz loads (host/cublas_loader.h), built as libcublas.so.13
// and put first on LD_LIBRARY_PATH so the real loader dlopen's it. Semantics as cuBLAS documents them: column-major
// C (m x n) = alpha op(A) (m x k) op(B) (k x n) + beta C; A(i,l) at A[i + l*lda] (op N) or A[l + i*lda] (op T/C);
// batch b offset by b*stride; C not read when beta == 0; argument checks of the cuBLAS docs (INVALID_VALUE);
// CUDA_R_32F or CUDA_R_16BF inputs (both the same), CUDA_R_32F output, CUBLAS_COMPUTE_32F; fp32 accumulation.
// The product is queued on the handle's stream through the emulated runtime (emu_enqueue, exported by the test).
#include <cublas_v2.h>
#include <cstdint>
#include <cstring>
#include <functional>

extern "C" void emu_enqueue(cudaStream_t stream, std::function<void()> *op);
extern "C" void emu_check_device_range(const void *p, size_t bytes, const char *what);

struct cublasContext {
    cudaStream_t stream;
};

namespace {
float load(const void *base, cudaDataType type, long long index) {
    if (type == CUDA_R_32F) return ((const float *)base)[index];
    uint32_t u = (uint32_t)((const uint16_t *)base)[index] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
long long at(cublasOperation_t op, int row, int col, int ld) {
    return op == CUBLAS_OP_N ? row + (long long)col * ld : col + (long long)row * ld;
}
struct gemm_args {
    cublasOperation_t ta, tb;
    int m, n, k;
    float alpha, beta;
    const void *A;
    cudaDataType at_;
    int lda;
    long long sa;
    const void *B;
    cudaDataType bt;
    int ldb;
    long long sb;
    void *C;
    int ldc;
    long long sc;
    int batch;
};
void run(const gemm_args &g) {
    size_t ea = g.at_ == CUDA_R_32F ? 4 : 2;
    for (int b = 0; b < g.batch; b++) {
        const char *A = (const char *)g.A + (size_t)(b * g.sa) * ea;
        const char *B = (const char *)g.B + (size_t)(b * g.sb) * ea;
        float *C = (float *)g.C + b * g.sc;
        for (int j = 0; j < g.n; j++)
            for (int i = 0; i < g.m; i++) {
                float acc = 0.0f;
                for (int l = 0; l < g.k; l++)
                    acc += load(A, g.at_, at(g.ta, i, l, g.lda)) * load(B, g.bt, at(g.tb, l, j, g.ldb));
                float *c = &C[i + (long long)j * g.ldc];
                *c = g.beta == 0.0f ? g.alpha * acc : g.alpha * acc + g.beta * *c;
            }
    }
}
bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }
int max1(int x) { return x > 1 ? x : 1; }
cublasStatus_t gemm(cublasHandle_t h, gemm_args g, const void *alpha, const void *beta, cudaDataType ct,
                    cublasComputeType_t compute) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_op(g.ta) || !valid_op(g.tb) || g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0 ||
        g.lda < max1(g.ta == CUBLAS_OP_N ? g.m : g.k) || g.ldb < max1(g.tb == CUBLAS_OP_N ? g.k : g.n) ||
        g.ldc < max1(g.m) || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (compute != CUBLAS_COMPUTE_32F || ct != CUDA_R_32F || g.at_ != g.bt ||
        (g.at_ != CUDA_R_32F && g.at_ != CUDA_R_16BF))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!g.m || !g.n || !g.batch) return CUBLAS_STATUS_SUCCESS;
    // Every byte the product touches (last batch, last column, last row) must be inside one device allocation.
    size_t e = g.at_ == CUDA_R_32F ? 4 : 2;
    int ar = g.ta == CUBLAS_OP_N ? g.m : g.k, ac = g.ta == CUBLAS_OP_N ? g.k : g.m;
    int br = g.tb == CUBLAS_OP_N ? g.k : g.n, bc = g.tb == CUBLAS_OP_N ? g.n : g.k;
    long long last = g.batch - 1;
    if (g.k) {
        emu_check_device_range(g.A, (size_t)(last * g.sa + (long long)(ac - 1) * g.lda + ar) * e, "cuBLAS A");
        emu_check_device_range(g.B, (size_t)(last * g.sb + (long long)(bc - 1) * g.ldb + br) * e, "cuBLAS B");
    }
    emu_check_device_range(g.C, (size_t)(last * g.sc + (long long)(g.n - 1) * g.ldc + g.m) * 4, "cuBLAS C");
    g.alpha = *(const float *)alpha; // host pointer mode: read at the call
    g.beta = *(const float *)beta;
    std::function<void()> op = [g] { run(g); };
    emu_enqueue(h->stream, &op);
    return CUBLAS_STATUS_SUCCESS;
}
} // namespace

extern "C" {
cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    *handle = new cublasContext{nullptr};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    gemm_args g{transa, transb, m, n, k, 0, 0, A, Atype, lda, 0, B, Btype, ldb, 0, C, ldc, 0, 1};
    return gemm(handle, g, alpha, beta, Ctype, computeType);
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                                          int lda, long long strideA, const void *B, cudaDataType Btype, int ldb,
                                          long long strideB, const void *beta, void *C, cudaDataType Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
    gemm_args g{transa, transb, m, n, k, 0, 0, A, Atype, lda, strideA, B, Btype, ldb, strideB, C, ldc, strideC,
                batchCount};
    return gemm(handle, g, alpha, beta, Ctype, computeType);
}
const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
#define NAME(x) case x: return #x;
    NAME(CUBLAS_STATUS_SUCCESS) NAME(CUBLAS_STATUS_NOT_INITIALIZED) NAME(CUBLAS_STATUS_ALLOC_FAILED)
    NAME(CUBLAS_STATUS_INVALID_VALUE) NAME(CUBLAS_STATUS_ARCH_MISMATCH) NAME(CUBLAS_STATUS_MAPPING_ERROR)
    NAME(CUBLAS_STATUS_EXECUTION_FAILED) NAME(CUBLAS_STATUS_INTERNAL_ERROR) NAME(CUBLAS_STATUS_NOT_SUPPORTED)
    NAME(CUBLAS_STATUS_LICENSE_ERROR)
#undef NAME
    }
    return "<unknown>";
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "an error occurred (emulated cuBLAS)";
    }
}
}
