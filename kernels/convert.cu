// fp32 -> bf16 with round-to-nearest-even (__float2bfloat16_rn), the rounding the host uses for the weights; bf16 ->
// fp32 is exact.
#include <cuda_bf16.h>

#include "convert.cuh"
#include "cuda_check.cuh"

__device__ __forceinline__ void convert_element(__nv_bfloat16 *out, float x) { *out = __float2bfloat16_rn(x); }
__device__ __forceinline__ void convert_element(float *out, __nv_bfloat16 x) { *out = __bfloat162float(x); }

// out (N) Out, inp (N) In
template <typename Out, typename In> __global__ void convert_kernel(Out *out, const In *inp, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x)
        convert_element(out + i, inp[i]);
}

template <typename Out, typename In>
static av_status launch_convert(Out *out, const In *inp, size_t N, cudaStream_t stream) {
    if (N == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    convert_kernel<Out, In><<<av_cuda_blocks(N, threads), threads, 0, stream>>>(out, inp, N);
    AV_CUDA_CHECK_LAUNCH("convert_kernel");
    return AV_SUCCESS;
}

extern "C" av_status av_f32_to_bf16_cuda(uint16_t *out, const float *inp, size_t N, cudaStream_t stream) {
    return launch_convert((__nv_bfloat16 *)out, inp, N, stream);
}

extern "C" av_status av_bf16_to_f32_cuda(float *out, const uint16_t *inp, size_t N, cudaStream_t stream) {
    return launch_convert(out, (const __nv_bfloat16 *)inp, N, stream);
}
