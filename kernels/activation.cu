// GELU (tanh approximation, as GPT-2's gelu_new; and the exact erf form, as BERT's gelu), ReLU and SiLU. The formulas are
// the CPU reference's, term for term, with the library tanhf/erff (no fast-math), so the two agree to a few ulp.
#include "activation.cuh"
#include "cuda_check.cuh"

__device__ __forceinline__ float gelu_tanh(float x) {
    const float sqrt_2_over_pi = 0.7978845608028654f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

__device__ __forceinline__ float relu(float x) { return x > 0.0f ? x : 0.0f; }

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

// out (N), inp (N). One kernel per activation keeps the switch out of the loop.
template <float (*ACT)(float)>
__global__ void activation_kernel(float *out, const float *inp, size_t N) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < N; i += (size_t)gridDim.x * blockDim.x)
        out[i] = ACT(inp[i]);
}

extern "C" av_status av_activation_cuda(float *out, const float *inp, size_t N, av_activation act,
                                        cudaStream_t stream) {
    if (N == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    unsigned int blocks = av_cuda_blocks(N, threads);
    switch (act) {
    case AV_ACT_GELU_TANH: activation_kernel<gelu_tanh><<<blocks, threads, 0, stream>>>(out, inp, N); break;
    case AV_ACT_GELU_ERF: activation_kernel<gelu_erf><<<blocks, threads, 0, stream>>>(out, inp, N); break;
    case AV_ACT_RELU: activation_kernel<relu><<<blocks, threads, 0, stream>>>(out, inp, N); break;
    case AV_ACT_SILU: activation_kernel<silu><<<blocks, threads, 0, stream>>>(out, inp, N); break;
    default: return av_fail(AV_ERROR_INTERNAL, "av_activation_cuda: unknown activation %d", (int)act);
    }
    AV_CUDA_CHECK_LAUNCH("activation_kernel");
    return AV_SUCCESS;
}
