// SwiGLU, Llama's MLP gate: out = silu(gate) * up, gate and up side by side in each row of the fused projection. The
// formula is the CPU reference's, term for term, with the library expf (no fast math), so the two agree to a few ulp.
#include "cuda_check.cuh"
#include "swiglu.cuh"

// out (T, I); inp (T, 2I): gate (T, I) | up (T, I) per row
__global__ void swiglu_kernel(float *out, const float *inp, int T, int I) {
    size_t n = (size_t)T * I;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        size_t t = idx / I, j = idx % I;
        const float *row = inp + t * 2 * I;
        float gate = row[j];
        out[idx] = gate / (1.0f + expf(-gate)) * row[I + j];
    }
}

extern "C" av_status av_swiglu_cuda(float *out, const float *inp, int T, int I, cudaStream_t stream) {
    size_t n = (size_t)T * I;
    if (n == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    swiglu_kernel<<<av_cuda_blocks(n, threads), threads, 0, stream>>>(out, inp, T, I);
    AV_CUDA_CHECK_LAUNCH("swiglu_kernel");
    return AV_SUCCESS;
}
