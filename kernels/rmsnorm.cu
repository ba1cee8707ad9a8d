// RMSNorm (Llama's LlamaRMSNorm): one warp per row, as layernorm.cu. The mean square is summed in double, its error
// far below float's rounding, so the two backends agree to an ulp or two whatever order the CPU reference sums in; the
// output is Hugging Face's order, x * rsqrt(mean(x^2) + eps) first, then times weight.
#include "cuda_check.cuh"
#include "rmsnorm.cuh"
#include "warp.cuh"

#define RMSNORM_WARPS 8

// out (T, C); inp (T, C); weight (C)
__global__ void rmsnorm_kernel(float *out, const float *inp, const float *weight, int T, int C, float eps) {
    int lane = threadIdx.x % AV_WARP_SIZE;
    int row = blockIdx.x * RMSNORM_WARPS + threadIdx.x / AV_WARP_SIZE;
    if (row >= T) return;
    const float *x = inp + (size_t)row * C;
    float *o = out + (size_t)row * C;

    double squares = 0.0;
    for (int c = lane; c < C; c += AV_WARP_SIZE) squares += (double)x[c] * x[c];
    float rstd = (float)(1.0 / sqrt(av_warp_sum_double(squares) / C + eps));

    // Each lane writes only the elements it read, after the whole warp has the statistic: out may alias inp.
    for (int c = lane; c < C; c += AV_WARP_SIZE) o[c] = weight[c] * (x[c] * rstd);
}

extern "C" av_status av_rmsnorm_cuda(float *out, const float *inp, const float *weight, int T, int C, float eps,
                                     cudaStream_t stream) {
    if (T == 0) return AV_SUCCESS;
    unsigned int blocks = (unsigned int)((T + RMSNORM_WARPS - 1) / RMSNORM_WARPS);
    rmsnorm_kernel<<<blocks, RMSNORM_WARPS * AV_WARP_SIZE, 0, stream>>>(out, inp, weight, T, C, eps);
    AV_CUDA_CHECK_LAUNCH("rmsnorm_kernel");
    return AV_SUCCESS;
}
