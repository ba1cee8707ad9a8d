// Elementwise adds: the residual stream and the bias after a cuBLAS product (cuBLAS has no bias epilogue outside
// cublasLt).
#include "cuda_check.cuh"
#include "residual.cuh"

// out (N), a (N), b (N)
__global__ void residual_kernel(float *out, const float *a, const float *b, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x)
        out[i] = a[i] + b[i];
}

// out (T, OC), bias (OC)
__global__ void add_bias_kernel(float *out, const float *bias, int T, int OC) {
    size_t n = (size_t)T * OC;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] += bias[i % OC];
}

extern "C" av_status av_residual_cuda(float *out, const float *a, const float *b, size_t N, cudaStream_t stream) {
    if (N == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    residual_kernel<<<av_cuda_blocks(N, threads), threads, 0, stream>>>(out, a, b, N);
    AV_CUDA_CHECK_LAUNCH("residual_kernel");
    return AV_SUCCESS;
}

extern "C" av_status av_add_bias_cuda(float *out, const float *bias, int T, int OC, cudaStream_t stream) {
    size_t n = (size_t)T * OC;
    if (n == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    add_bias_kernel<<<av_cuda_blocks(n, threads), threads, 0, stream>>>(out, bias, T, OC);
    AV_CUDA_CHECK_LAUNCH("add_bias_kernel");
    return AV_SUCCESS;
}
