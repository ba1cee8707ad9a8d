// LayerNorm: one warp per row. The statistics are the CPU reference's, in double: two passes over the row (mean,
// then the sum of squared deviations, which does not cancel when |mean| >> std), and the output formula term for
// term, so the two backends agree to an ulp or two. The row stays in L1/L2 between passes; rows are short (C floats)
// and double adds on a few hundred values per lane cost little next to the reads.
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

    double sum = 0.0;
    for (int c = lane; c < C; c += AV_WARP_SIZE) sum += x[c];
    double mean = av_warp_sum_double(sum) / C;

    double squares = 0.0;
    for (int c = lane; c < C; c += AV_WARP_SIZE) squares += (x[c] - mean) * (x[c] - mean);
    float rstd = (float)(1.0 / sqrt(av_warp_sum_double(squares) / C + eps));

    // Each lane writes only the elements it read, after the whole warp has its statistics: out may alias inp.
    for (int c = lane; c < C; c += AV_WARP_SIZE) o[c] = ((float)(x[c] - mean) * rstd) * weight[c] + bias[c];
}

extern "C" av_status av_layernorm_cuda(float *out, const float *inp, const float *weight, const float *bias, int T,
                                       int C, float eps, cudaStream_t stream) {
    if (T == 0) return AV_SUCCESS;
    unsigned int blocks = (unsigned int)((T + LAYERNORM_WARPS - 1) / LAYERNORM_WARPS);
    layernorm_kernel<<<blocks, LAYERNORM_WARPS * AV_WARP_SIZE, 0, stream>>>(out, inp, weight, bias, T, C, eps);
    AV_CUDA_CHECK_LAUNCH("layernorm_kernel");
    return AV_SUCCESS;
}
