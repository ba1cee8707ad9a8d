// LayerNorm: one warp per row. Two passes over the row for the statistics (mean, then the sum of squared
// deviations) rather than E[x^2] - mean^2, which cancels badly when |mean| >> std; the row stays in L1/L2 between
// passes. All statistics in fp32.
#include "cuda_check.cuh"
#include "layernorm.cuh"
#include "warp.cuh"

#define LAYERNORM_WARPS 8

// out (T, C); inp (T, C); weight, bias (C)
__global__ void layernorm_kernel(float *out, const float *inp, const float *weight, const float *bias, int T, int C,
                                 float eps) {
    int lane = threadIdx.x % AV_WARP_SIZE;
    int row = blockIdx.x * LAYERNORM_WARPS + threadIdx.x / AV_WARP_SIZE;
    if (row >= T) return;
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;

    float sum = 0.0f;
    for (int c = lane; c < C; c += AV_WARP_SIZE) sum += x[c];
    float mean = av_warp_sum(sum) / C;

    float squares = 0.0f;
    for (int c = lane; c < C; c += AV_WARP_SIZE) {
        float d = x[c] - mean;
        squares += d * d;
    }
    // IEEE sqrt and division (no fast-math), as close to the CPU's double-precision statistics as fp32 gets.
    float rstd = 1.0f / sqrtf(av_warp_sum(squares) / C + eps);

    // Every lane has read the whole row's statistics before any lane writes, so out may alias inp.
    for (int c = lane; c < C; c += AV_WARP_SIZE) o[c] = ((x[c] - mean) * rstd) * weight[c] + bias[c];
}

extern "C" av_status av_layernorm_cuda(float *out, const float *inp, const float *weight, const float *bias, int T,
                                       int C, float eps, cudaStream_t stream) {
    if (T == 0) return AV_SUCCESS;
    unsigned int blocks = (unsigned int)((T + LAYERNORM_WARPS - 1) / LAYERNORM_WARPS);
    layernorm_kernel<<<blocks, LAYERNORM_WARPS * AV_WARP_SIZE, 0, stream>>>(out, inp, weight, bias, T, C, eps);
    AV_CUDA_CHECK_LAUNCH("layernorm_kernel");
    return AV_SUCCESS;
}
