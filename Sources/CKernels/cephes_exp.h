// e^x for x ≤ 0 (softmax's s − max, GELU's −x²/2): Cephes' expf, x = n·ln2 + r with ln2 split
// in two parts, a degree-5 polynomial for e^r, and 2ⁿ assembled in the exponent bits; within
// ~1 ulp of libm, and exactly 0 below −87.34 (where e^x is no longer a normal float, as libm's
// result for a padded key's −3.4·10³⁸). One element at a time, so that a loop calling it
// vectorises at its clone's width; contraction is off inside it, so every build does the same IEEE
// operations in the same order as the Swift SIMD8 `vectorExp` it replaced (kept in the tests).
#ifndef LORABENCH_CEPHES_EXP_H
#define LORABENCH_CEPHES_EXP_H

#include <stdint.h>
#include <string.h>

static inline float cephesFromBits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline uint32_t cephesToBits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static inline __attribute__((always_inline)) float cephesExp(float x) {
#pragma clang fp contract(off)
    const float lowest = -87.33654f, shifter = 12582912.0f;
    const float clamped = x < lowest ? lowest : x;
    // Adding 1.5·2²³ leaves round(x/ln2) in the low mantissa bits.
    const float shifted = clamped * 1.44269504f + shifter;
    const float n = shifted - shifter;
    const float r = clamped - n * 0.693359375f + n * 2.1219444e-4f;
    float p = 1.98756915e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    // In unsigned arithmetic: the wrapping &- and &<< of the Swift version, defined in C.
    const float twoToTheN = cephesFromBits(((cephesToBits(shifted) - cephesToBits(shifter)) + 127u) << 23);
    return x < lowest ? 0.0f : p * twoToTheN;
}

#endif
