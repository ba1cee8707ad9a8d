// Runs the attnviz attention kernels on this program's own device buffers: the forward (O and LSE), then exact
// probabilities of the last query row, the attention each key receives, and an 8 x 8-pooled map of every head.
// Build: see CMakeLists.txt here, or
//   cc attention_example.c $(pkg-config --cflags --libs attnviz) -o attention_example
#include <attnviz_kernels.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 1, NH = 8, NKV = 2, T = 1000, D = 64, POOL = 8, NB = (T + POOL - 1) / POOL };

#define CHECK(call)                                                                                \
    do {                                                                                           \
        av_status st_ = (call);                                                                    \
        if (st_ != AV_SUCCESS) {                                                                   \
            fprintf(stderr, "%s: %s\n", #call, av_last_error());                                   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

// Random bf16 values in [-1, 1) on the device (the top 16 bits of a float are its bfloat16).
static void *random_bf16(size_t n, unsigned seed) {
    unsigned short *host = malloc(n * sizeof *host);
    srand(seed);
    for (size_t i = 0; i < n; i++) {
        float x = 2.0f * rand() / (float)RAND_MAX - 1.0f;
        unsigned bits;
        memcpy(&bits, &x, sizeof bits);
        host[i] = (unsigned short)(bits >> 16);
    }
    void *dev = NULL;
    cudaMalloc(&dev, n * sizeof *host);
    cudaMemcpy(dev, host, n * sizeof *host, cudaMemcpyHostToDevice);
    free(host);
    return dev;
}

int main(void) {
    if (cudaSetDevice(0) != cudaSuccess) {
        fprintf(stderr, "no CUDA device\n");
        return 1;
    }
    void *q = random_bf16((size_t)B * NH * T * D, 1), *k = random_bf16((size_t)B * NKV * T * D, 2),
         *v = random_bf16((size_t)B * NKV * T * D, 3), *o = NULL, *workspace = NULL;
    float *lse = NULL, *last_row = NULL, *received = NULL, *pooled = NULL;
    cudaMalloc(&o, (size_t)B * NH * T * D * 2);
    cudaMalloc((void **)&lse, (size_t)B * NH * T * sizeof(float));
    cudaMalloc((void **)&last_row, (size_t)B * NH * T * sizeof(float));
    cudaMalloc((void **)&received, (size_t)B * NH * T * sizeof(float));
    cudaMalloc((void **)&pooled, (size_t)B * NH * NB * NB * sizeof(float));

    // --- the attnviz kernel API ---
    av_attention_shape shape = {.batch = B, .n_heads = NH, .n_kv_heads = NKV, .seq_len = T, .head_dim = D,
                                .dtype = AV_DTYPE_BF16, .causal = 1};
    av_attention_tensor tq = {q, (int64_t)NH * T * D, (int64_t)T * D, D};
    av_attention_tensor tk = {k, (int64_t)NKV * T * D, (int64_t)T * D, D};
    av_attention_tensor tv = {v, (int64_t)NKV * T * D, (int64_t)T * D, D};
    av_attention_tensor to = {o, (int64_t)NH * T * D, (int64_t)T * D, D};
    CHECK(av_attention_forward(&shape, tq, tk, tv, to, lse, NULL));
    av_probs_request request = {.probs_dtype = AV_DTYPE_FP32,
                                .rows = last_row, .rows_begin = T - 1, .rows_end = T,
                                .colsum = received,
                                .pooled = pooled, .pool = POOL};
    size_t workspace_bytes = 0;
    CHECK(av_attention_probs_workspace(&shape, &request, &workspace_bytes));
    cudaMalloc(&workspace, workspace_bytes);
    CHECK(av_attention_probs(&shape, tq, tk, lse, &request, workspace, workspace_bytes, NULL));
    // --- end ---

    float *map = malloc((size_t)NB * NB * sizeof(float)), *row = malloc(T * sizeof(float));
    cudaMemcpy(map, pooled, (size_t)NB * NB * sizeof(float), cudaMemcpyDeviceToHost); // head 0
    cudaMemcpy(row, last_row, T * sizeof(float), cudaMemcpyDeviceToHost);
    if (cudaDeviceSynchronize() != cudaSuccess) {
        fprintf(stderr, "CUDA: %s\n", cudaGetErrorString(cudaGetLastError()));
        return 1;
    }
    double pooled_sum = 0.0, row_sum = 0.0;
    for (int j = 0; j < NB; j++) pooled_sum += map[(size_t)(NB - 1) * NB + j];
    for (int j = 0; j < T; j++) row_sum += row[j];
    printf("head 0: last pooled row sums to %.6f, last query row of P sums to %.6f, P[T-1][0] = %.3g\n",
           pooled_sum, row_sum, row[0]);
    return 0;
}
