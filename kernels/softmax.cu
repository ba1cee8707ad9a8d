// Attention softmax: one warp per query row. Pass 1 reads the visible scores once with an online max/sum per lane
// (the lanes' partials merged by shuffles); pass 2 writes P = exp(s*scale - max) / sum, in fp32 over the scores for
// P.V and, for a captured head, in the side buffer's dtype. Statistics stay fp32 whatever the storage.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_check.cuh"
#include "softmax.cuh"
#include "warp.cuh"

#define SOFTMAX_WARPS 8

template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

// scores (T, T) in/out; probs (T, T) or NULL
template <typename P>
__global__ void attention_softmax_kernel(float *scores, P *probs, int T, float scale, bool causal) {
    int lane = threadIdx.x % AV_WARP_SIZE;
    int row = blockIdx.x * SOFTMAX_WARPS + threadIdx.x / AV_WARP_SIZE;
    if (row >= T) return;
    float *s = scores + (size_t)row * T;
    int visible = causal ? row + 1 : T;

    float max = -INFINITY, sum = 0.0f;
    for (int j = lane; j < visible; j += AV_WARP_SIZE) {
        float v = s[j] * scale;
        if (v > max) {
            sum = sum * expf(max - v) + 1.0f;
            max = v;
        } else {
            sum += expf(v - max);
        }
    }
    float row_max = av_warp_max(max);
    // A lane that saw no visible key has max = -inf and sum = 0: its rescaled share is 0 * 0.
    float row_sum = av_warp_sum(sum * expf(max - row_max));
    float inv = 1.0f / row_sum;

    P *out = probs ? probs + (size_t)row * T : NULL;
    for (int j = lane; j < T; j += AV_WARP_SIZE) {
        float p = j < visible ? expf(s[j] * scale - row_max) * inv : 0.0f;
        s[j] = p;
        if (out) out[j] = from_float<P>(p);
    }
}

template <typename P>
static av_status launch_softmax(float *scores, void *probs, int T, float scale, bool causal, cudaStream_t stream) {
    unsigned int blocks = (unsigned int)((T + SOFTMAX_WARPS - 1) / SOFTMAX_WARPS);
    attention_softmax_kernel<P>
        <<<blocks, SOFTMAX_WARPS * AV_WARP_SIZE, 0, stream>>>(scores, (P *)probs, T, scale, causal);
    AV_CUDA_CHECK_LAUNCH("attention_softmax_kernel");
    return AV_SUCCESS;
}

extern "C" av_status av_attention_softmax_cuda(float *scores, void *probs, int T, float scale, bool causal,
                                               av_attn_dtype dtype, cudaStream_t stream) {
    if (T == 0) return AV_SUCCESS;
    switch (dtype) {
    case AV_ATTN_FP32: return launch_softmax<float>(scores, probs, T, scale, causal, stream);
    case AV_ATTN_FP16: return launch_softmax<__half>(scores, probs, T, scale, causal, stream);
    case AV_ATTN_BF16: return launch_softmax<__nv_bfloat16>(scores, probs, T, scale, causal, stream);
    }
    return av_fail(AV_ERROR_INTERNAL, "av_attention_softmax_cuda: unknown attention dtype %d", (int)dtype);
}
