// Half-precision conversions (IEEE binary16 and bfloat16), bit-exact with CUDA's __float2half_rn and
// __float2bfloat16_rn: checkpoints, the CUDA glue and the tiled mirrors all convert through these.
#include "half.h"

#include <math.h>
#include <string.h>

static uint32_t float_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float bits_float(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

uint16_t av_f32_to_f16(float x) {
    uint32_t u = float_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;                 // NaN stays NaN
    if (a >= 0x477ff000u) return sign | 0x7c00u;                // at or past the midpoint above 65504: inf
    if (a < 0x38800000u)                                        // below 2^-14: subnormal, units of 2^-24
        return sign | (uint16_t)rintf(bits_float(a) * 0x1p24f); // scaling by 2^24 is exact; rintf rounds to even
    uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
    return sign | (uint16_t)((rounded - 0x38000000u) >> 13);
}

float av_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) return bits_float(sign | 0x7f800000u | (mantissa << 13));
    return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t av_f32_to_bf16(float x) {
    uint32_t u = float_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float av_bf16_to_f32(uint16_t h) { return bits_float((uint32_t)h << 16); }
