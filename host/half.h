// Half-precision conversions shared by the loaders, the CUDA glue and the tiled mirrors.
#ifndef AV_HALF_H
#define AV_HALF_H

#include <stdint.h>

// Round to nearest even; NaN stays NaN, overflow becomes infinity.
uint16_t av_f32_to_f16(float x);
uint16_t av_f32_to_bf16(float x);
// Exact (every half and bfloat16 value is a float).
float av_f16_to_f32(uint16_t h);
float av_bf16_to_f32(uint16_t h);

#endif
