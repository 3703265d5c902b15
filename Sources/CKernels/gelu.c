// GELU's forward pass, the hottest elementwise loop of a BERT step, compiled once per vector
// width and picked per call for the CPU it runs on (cpu_level.h), so the build needs no AVX2
// and an AVX2 or AVX-512 CPU still gets its wide registers. Every build does the same IEEE
// operations in the same order as the Swift SIMD8 loop it replaced, kept as the reference of
// GELUKernelTests (no contraction into FMA, no reassociation), so all give the same bits.
#include "ckernels.h"
#include "cpu_level.h"
#include "cephes_exp.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

// One element at a time, so that the compiler vectorises the loop at each clone's width (the
// selects and bit casts become vector blends and moves); no step depends on another lane.
static inline __attribute__((always_inline))
void gelu_forward(const float *restrict input, float *restrict output, float *restrict derivative, size_t count) {
    // Float(0.5).squareRoot() and 1 / Float(2 * Float.pi).squareRoot() as Swift rounds them
    // (Float.pi is π rounded toward zero).
    const float rootHalf = 0.70710677f;
    const float inverseRootTwoPi = 1.0f / __builtin_sqrtf(2.0f * 3.1415925f);
    for (size_t i = 0; i < count; i++) {
        float x = input[i];
        float z = x * rootHalf;
        // e^(−z²) = √(2π)·φ(x).
        float gaussian = cephesExp(-(z * z));
        // erf(z) by Abramowitz & Stegun 7.1.26: 1 − t·(a₁ + a₂t + … + a₅t⁴)·e^(−z²), t = 1/(1 + p|z|).
        float t = 1.0f / (1.0f + 0.3275911f * cephesFromBits(cephesToBits(z) & 0x7FFFFFFFu));
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
