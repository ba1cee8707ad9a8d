// fp32 -> bf16 with round-to-nearest-even (__float2bfloat16_rn), the rounding the host uses for the weights; bf16 ->
// fp32 is exact.
#include <cuda_bf16.h>

#include "convert.cuh"
#include "cuda_check.cuh"

// out (N) bf16, inp (N) fp32
__global__ void f32_to_bf16_kernel(__nv_bfloat16 *out, const float *inp, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(inp[i]);
}

extern "C" av_status av_f32_to_bf16_cuda(uint16_t *out, const float *inp, size_t N, cudaStream_t stream) {
    if (N == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    f32_to_bf16_kernel<<<av_cuda_blocks(N, threads), threads, 0, stream>>>((__nv_bfloat16 *)out, inp, N);
    AV_CUDA_CHECK_LAUNCH("f32_to_bf16_kernel");
    return AV_SUCCESS;
}

// out (N) fp32, inp (N) bf16
__global__ void bf16_to_f32_kernel(float *out, const __nv_bfloat16 *inp, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __bfloat162float(inp[i]);
}

extern "C" av_status av_bf16_to_f32_cuda(float *out, const uint16_t *inp, size_t N, cudaStream_t stream) {
    if (N == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    bf16_to_f32_kernel<<<av_cuda_blocks(N, threads), threads, 0, stream>>>(out, (const __nv_bfloat16 *)inp, N);
    AV_CUDA_CHECK_LAUNCH("bf16_to_f32_kernel");
    return AV_SUCCESS;
}
