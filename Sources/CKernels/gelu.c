// GELU's forward pass, the hottest elementwise loop of a BERT step, compiled once per vector
// width and picked per call for the CPU it runs on (cpu_level.h), so the build needs no AVX2
// and an AVX2 or AVX-512 CPU still gets its wide registers. Every build does the same IEEE
// operations in the same order as the Swift SIMD8 loop it replaced, kept as the reference of
// GELUKernelTests (no contraction into FMA, no reassociation), so all give the same bits.
#include "ckernels.h"
#include "cpu_level.h"
#include <stdint.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline float fromBits(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline uint32_t toBits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

// One element at a time, so that the compiler vectorises the loop at each clone's width (the
// selects and bit casts become vector blends and moves); no step depends on another lane.
static inline __attribute__((always_inline))
void gelu_forward(const float *restrict input, float *restrict output, float *restrict derivative, size_t count) {
    // Float(0.5).squareRoot() and 1 / Float(2 * Float.pi).squareRoot() as Swift rounds them
    // (Float.pi is π rounded toward zero).
    const float rootHalf = 0.70710677f;
    const float inverseRootTwoPi = 1.0f / __builtin_sqrtf(2.0f * 3.1415925f);
    const float lowest = -87.33654f, shifter = 12582912.0f;
    for (size_t i = 0; i < count; i++) {
        float x = input[i];
        float z = x * rootHalf;
        // e^(−z²) = √(2π)·φ(x) by vectorExp (SIMDMath.swift): Cephes' expf, exactly 0 below −87.34;
        // adding 1.5·2²³ leaves round(s/ln2) in the low mantissa bits.
        float s = -(z * z);
        float clamped = s < lowest ? lowest : s;
        float shifted = clamped * 1.44269504f + shifter;
        float n = shifted - shifter;
        float r = clamped - n * 0.693359375f + n * 2.1219444e-4f;
        float p = 1.98756915e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = p * (r * r) + r + 1.0f;
        // In unsigned arithmetic: the wrapping &- and &<< of the Swift version, defined in C.
        float twoToTheN = fromBits(((toBits(shifted) - toBits(shifter)) + 127u) << 23);
        float gaussian = s < lowest ? 0.0f : p * twoToTheN;
        // erf(z) by Abramowitz & Stegun 7.1.26: 1 − t·(a₁ + a₂t + … + a₅t⁴)·e^(−z²), t = 1/(1 + p|z|).
        float t = 1.0f / (1.0f + 0.3275911f * fromBits(toBits(z) & 0x7FFFFFFFu));
        float q = 1.061405429f;
        q = q * t - 1.453152027f;
        q = q * t + 1.421413741f;
        q = q * t - 0.284496736f;
        q = q * t + 0.254829592f;
        float positive = 1.0f - q * t * gaussian;
        float cdf = 0.5f * (1.0f + (z < 0.0f ? -positive : positive));
        output[i] = x * cdf;
        derivative[i] = cdf + x * gaussian * inverseRootTwoPi;
    }
}

LORABENCH_DISPATCH(lorabench_gelu_forward, gelu_forward,
                   (const float *restrict input, float *restrict output, float *restrict derivative, size_t count),
                   (input, output, derivative, count))
