// Warp-wide reductions shared by the row kernels (layernorm, rmsnorm, softmax).
#ifndef AV_WARP_CUH
#define AV_WARP_CUH

#define AV_WARP_SIZE 32

__device__ __forceinline__ float av_warp_sum(float x) {
    for (int offset = AV_WARP_SIZE / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

// The norms sum their row statistics in double (layernorm.cu, rmsnorm.cu say why).
__device__ __forceinline__ double av_warp_sum_double(double x) {
    for (int offset = AV_WARP_SIZE / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}

__device__ __forceinline__ float av_warp_max(float x) {
    for (int offset = AV_WARP_SIZE / 2; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

#endif
