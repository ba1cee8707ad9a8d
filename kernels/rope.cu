// Rotary position embedding (Hugging Face's rotate_half layout), in place on the q and k heads of a fused qkv. One
// thread per (row t, pair i): it computes the angle t * inv_freq[i] and its sine and cosine once, then turns pair i of
// every q and k head of the row, so consecutive threads touch consecutive columns of each head.
//
// Numerics as the CPU reference: the angle is one fp32 product (Hugging Face's fp32 matmul of inv_freq by positions);
// the rotation is x1 c - x2 s and x2 c + x1 s (nvcc may fuse a product into an FMA, as in every kernel here, which
// skips one product's rounding). The sine and cosine of that float angle, which reaches 1e5 rad in long prompts
// (where __sinf's error is of order 1), are correctly rounded: the angle is reduced in double, to angle / pi = n + f
// with |f| <= 1/2, and sincospi(f) needs no further reduction; the CPU reference rounds double cos / sin once, the
// same values. (CUDA's sinf / cosf, within 2 ulp, would be close, but their large-argument reduction keeps a table in
// local memory, which the build refuses.) Never build this file with fast math.
#include "cuda_check.cuh"
#include "rope.cuh"

// sin and cos of ANGLE rounded to float: the double reduction and sincospi err by about 1e-11 rad at angles of 1e5,
// far below float's half ulp, so the result is the correctly rounded one but for values within that of a tie.
__device__ __forceinline__ void rope_sincos(float angle, float *s, float *c) {
    const double inv_pi = 0.318309886183790671537767526745;
    double x = (double)angle * inv_pi, n = rint(x), sd, cd;
    sincospi(x - n, &sd, &cd);
    if ((long long)n & 1) { // a turn by an odd multiple of pi flips both
        sd = -sd;
        cd = -cd;
    }
    *s = (float)sd;
    *c = (float)cd;
}

// qkv (T, (NH + 2 NKV) HS); inv_freq (HS / 2)
__global__ void rope_kernel(float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS) {
    int half = HS / 2, heads = NH + NKV; // the q heads, then the k heads right after them
    size_t row_stride = (size_t)(NH + 2 * NKV) * HS, n = (size_t)T * half;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        int t = (int)(idx / half), i = (int)(idx % half);
        float s, c;
        rope_sincos((float)t * inv_freq[i], &s, &c);
        float *row = qkv + (size_t)t * row_stride;
        for (int h = 0; h < heads; h++) {
            float *x = row + (size_t)h * HS;
            float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * c - x2 * s;
            x[i + half] = x2 * c + x1 * s;
        }
    }
}

extern "C" av_status av_rope_cuda(float *qkv, const float *inv_freq, int T, int NH, int NKV, int HS,
                                  cudaStream_t stream) {
    size_t n = (size_t)T * (HS / 2);
    if (n == 0) return AV_SUCCESS;
    const unsigned int threads = 256;
    rope_kernel<<<av_cuda_blocks(n, threads), threads, 0, stream>>>(qkv, inv_freq, T, NH, NKV, HS);
    AV_CUDA_CHECK_LAUNCH("rope_kernel");
    return AV_SUCCESS;
}
