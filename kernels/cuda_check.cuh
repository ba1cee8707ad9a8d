// Checked CUDA and cuBLAS calls, usable from .cu and .c files alike. A failing call records one line naming the
// statement, the file, the line, the function and the error (av_fail), and the enclosing function returns
// AV_ERROR_CUDA, so a device error reaches the CLI as an ordinary av_status.
//
//   AV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
//   my_kernel<<<grid, block, 0, stream>>>(...);
//   AV_CUDA_CHECK_LAUNCH("my_kernel");
#ifndef AV_CUDA_CHECK_CUH
#define AV_CUDA_CHECK_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "internal.h"
// Records a failed cuBLAS call (host/cublas_loader.c: the status is named through the loaded library).
av_status av_cublas_fail(cublasStatus_t err, const char *statement, const char *file, int line, const char *function);
#ifdef __cplusplus
}
#endif

static inline av_status av_cuda_fail(cudaError_t err, const char *statement, const char *file, int line,
                                     const char *function) {
    return av_fail(AV_ERROR_CUDA, "%s:%d: %s: %s failed: %s (%s)", file, line, function, statement,
                   cudaGetErrorName(err), cudaGetErrorString(err));
}

#define AV_CUDA_CHECK(call)                                                               \
    do {                                                                                  \
        cudaError_t av_cuda_err_ = (call);                                                \
        if (av_cuda_err_ != cudaSuccess)                                                  \
            return av_cuda_fail(av_cuda_err_, #call, __FILE__, __LINE__, __func__);       \
    } while (0)

#define AV_CUBLAS_CHECK(call)                                                             \
    do {                                                                                  \
        cublasStatus_t av_cublas_err_ = (call);                                           \
        if (av_cublas_err_ != CUBLAS_STATUS_SUCCESS)                                      \
            return av_cublas_fail(av_cublas_err_, #call, __FILE__, __LINE__, __func__);   \
    } while (0)

// After every kernel launch: a bad configuration is reported here, a fault inside the kernel by the next
// synchronizing call.
#define AV_CUDA_CHECK_LAUNCH(kernel_name)                                                 \
    do {                                                                                  \
        cudaError_t av_cuda_err_ = cudaGetLastError();                                    \
        if (av_cuda_err_ != cudaSuccess)                                                  \
            return av_cuda_fail(av_cuda_err_, "launch of " kernel_name, __FILE__, __LINE__, __func__); \
    } while (0)

// Blocks of THREADS threads covering N items, capped so that grid-stride loops take the rest.
static inline unsigned int av_cuda_blocks(size_t n, unsigned int threads) {
    size_t blocks = (n + threads - 1) / threads;
    const size_t cap = 65535u * 8u;
    if (blocks > cap) blocks = cap;
    return blocks ? (unsigned int)blocks : 1u;
}

#endif
