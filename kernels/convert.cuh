// fp32 <-> bf16 on the GPU: the activation operand of a bf16 product (the weights are stored as bf16 at upload), and
// the bf16 inputs and output of the flash attention path.
#ifndef AV_CONVERT_CUH
#define AV_CONVERT_CUH

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "attnviz.h"

#ifdef __cplusplus
extern "C" {
#endif

// out (N) bf16 bit patterns = round-to-nearest-even(inp (N)). Device memory.
av_status av_f32_to_bf16_cuda(uint16_t *out, const float *inp, size_t N, cudaStream_t stream);
// out (N) = inp (N) bf16 bit patterns, exactly. Device memory.
av_status av_bf16_to_f32_cuda(float *out, const uint16_t *inp, size_t N, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
