// Helpers of the GPU tests (they still compile and link without a device, and skip at run time).
#ifndef AV_TEST_SUPPORT_CUDA_H
#define AV_TEST_SUPPORT_CUDA_H

#include "backend.h"
#include "half.h"
#include "support.h"

#include <criterion/criterion.h>
#include <cuda_runtime.h>

#define CUDA_OK(call)                                                                                                 \
    do {                                                                                                              \
        cudaError_t err_ = (call);                                                                                    \
        cr_assert_eq(err_, cudaSuccess, "%s failed: %s", #call, cudaGetErrorString(err_));                            \
    } while (0)

#define NEED_DEVICE()                                                                                                 \
    do {                                                                                                              \
        if (!backend_cuda_available()) cr_skip_test("no CUDA device");                                                \
    } while (0)

// x rounded to bf16 (nearest even) and back: the operands a bf16 product sees.
static inline float av_round_bf16(float x) { return av_bf16_to_f32(av_f32_to_bf16(x)); }

#endif
