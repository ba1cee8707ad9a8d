// Embedding lookup: one thread per output element, consecutive threads on consecutive channels so that the reads of
// a token's row and the writes are coalesced.
#include "cuda_check.cuh"
#include "embedding.cuh"

// out (T, C); ids (T); wte (V, C); wpe (P, C) or NULL (rotary models); wtt (C) or NULL
__global__ void embedding_kernel(float *out, const int32_t *ids, const float *wte, const float *wpe, const float *wtt,
                                 int T, int C) {
    size_t n = (size_t)T * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t t = i / C, c = i % C;
        // Same association as the CPU reference: (tok + pos) + type.
        float x = wte[(size_t)ids[t] * C + c];
        if (wpe) x += wpe[t * C + c];
        out[i] = wtt ? x + wtt[c] : x;
    }
}

extern "C" av_status av_embedding_cuda(float *out, const int32_t *ids, const float *wte, const float *wpe,
                                       const float *wtt, int T, int C, cudaStream_t stream) {
    const unsigned int threads = 256;
    embedding_kernel<<<av_cuda_blocks((size_t)T * C, threads), threads, 0, stream>>>(out, ids, wte, wpe, wtt, T, C);
    AV_CUDA_CHECK_LAUNCH("embedding_kernel");
    return AV_SUCCESS;
}
