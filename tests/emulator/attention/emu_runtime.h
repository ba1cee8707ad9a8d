// Force-included into tests/test_cuda_attention.c: device memory is host memory, the device always exists.
#include <cuda_runtime.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
static inline cudaError_t emu_cuda_malloc(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
#define cudaMalloc(p, n) emu_cuda_malloc((void **)(p), (n))
#define cudaFree(p) (free(p), cudaSuccess)
#define cudaMemset(p, v, n) (memset((p), (v), (n)), cudaSuccess)
#define cudaMemcpy(d, s, n, k) (memcpy((d), (s), (n)), cudaSuccess)
#define cudaDeviceSynchronize() cudaSuccess
#define backend_cuda_available emu_backend_cuda_available
