// The Llama decoder's RMSNorm rows, forward and backward, compiled once per vector width and
// picked per call (cpu_level.h), as LayerNorm. A row's sums are eight-lane sums added in index
// order (simd8_sum.h), the order of RMSNormKernelTests' Swift reference loops: the same IEEE
// operations in the same order, no contraction, so every build gives their bits.
#include "ckernels.h"
#include "cpu_level.h"
#include "simd8_sum.h"
#include <math.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline __attribute__((always_inline))
void rms_norm_forward(size_t rowStart, size_t rowEnd, size_t width, const float *restrict input, const float *restrict weight,
                      float epsilon, float *restrict output, float *restrict inverses) {
    for (size_t r = rowStart; r < rowEnd; r++) {
        const float *x = input + r * width;
        float *y = output + r * width;
        float sumOfSquares;
        SIMD8_LANE_SUM(width, x[c] * x[c], sumOfSquares);
        const float inverse = 1 / sqrtf(sumOfSquares / (float)width + epsilon);
        inverses[r] = inverse;
        // transformers rounds x·rsqrt first, then multiplies by the weight.
        for (size_t c = 0; c < width; c++) y[c] = weight[c] * (x[c] * inverse);
    }
}

LORABENCH_DISPATCH(lorabench_rms_norm_forward, rms_norm_forward,
                   (size_t rowStart, size_t rowEnd, size_t width, const float *restrict input, const float *restrict weight,
                    float epsilon, float *restrict output, float *restrict inverses),
                   (rowStart, rowEnd, width, input, weight, epsilon, output, inverses))

static inline __attribute__((always_inline))
void rms_norm_backward(size_t rowStart, size_t rowEnd, size_t width, const float *restrict gradOutput, const float *restrict input,
                       const float *restrict weight, const float *restrict inverses, int accumulate, float *restrict gradInput) {
    for (size_t r = rowStart; r < rowEnd; r++) {
        const float *g = gradOutput + r * width, *x = input + r * width;
        float *out = gradInput + r * width;
        float projection;
        SIMD8_LANE_SUM(width, g[c] * weight[c] * x[c], projection);
        const float s = inverses[r];
        const float correction = s * s * s * projection / (float)width;
        // Two loops, so that neither holds a branch per element.
        if (accumulate) {
            for (size_t c = 0; c < width; c++) out[c] = out[c] + (s * g[c] * weight[c] - correction * x[c]);
        } else {
            for (size_t c = 0; c < width; c++) out[c] = s * g[c] * weight[c] - correction * x[c];
        }
    }
}

LORABENCH_DISPATCH(lorabench_rms_norm_backward, rms_norm_backward,
                   (size_t rowStart, size_t rowEnd, size_t width, const float *restrict gradOutput, const float *restrict input,
                    const float *restrict weight, const float *restrict inverses, int accumulate, float *restrict gradInput),
                   (rowStart, rowEnd, width, gradOutput, input, weight, inverses, accumulate, gradInput))
