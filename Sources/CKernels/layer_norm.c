// LayerNorm's rows, forward (with the residual added first) and backward, compiled once per vector
// width and picked per call (cpu_level.h), as GELU and softmax. A row's mean and variance are
// eight-lane sums added in index order, as the Swift `laneSum` loops these replaced (kept as the
// reference of LayerNormKernelTests): the same IEEE operations in the same order, no
// contraction, so every build gives their bits.
#include "ckernels.h"
#include "cpu_level.h"
#include "simd8_sum.h"
#include <math.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline __attribute__((always_inline))
void layer_norm_forward(size_t rowStart, size_t rowEnd, size_t width, const float *restrict input,
                        const float *restrict residual, const float *restrict gains, const float *restrict shifts,
                        float epsilon, float *restrict normalized, float *restrict output, float *restrict inverses) {
    for (size_t r = rowStart; r < rowEnd; r++) {
        // The row's sum x + residual, staged in x̂'s row and normalized in place.
        float *row = normalized + r * width;
        const float *x = input + r * width;
        if (residual) {
            const float *added = residual + r * width;
            for (size_t c = 0; c < width; c++) row[c] = x[c] + added[c];
        } else {
            memcpy(row, x, width * sizeof(float));
        }
        float mean, variance;
        SIMD8_LANE_SUM(width, row[c], mean);
        mean = mean / (float)width;
        SIMD8_LANE_SUM(width, (row[c] - mean) * (row[c] - mean), variance);
        variance = variance / (float)width;
        const float inverse = 1 / sqrtf(variance + epsilon);
        inverses[r] = inverse;
        float *out = output + r * width;
        for (size_t c = 0; c < width; c++) {
            const float value = (row[c] - mean) * inverse;
            row[c] = value;
            out[c] = value * gains[c] + shifts[c];
        }
    }
}

LORABENCH_DISPATCH(lorabench_layer_norm_forward, layer_norm_forward,
                   (size_t rowStart, size_t rowEnd, size_t width, const float *restrict input, const float *restrict residual,
                    const float *restrict gains, const float *restrict shifts, float epsilon, float *restrict normalized,
                    float *restrict output, float *restrict inverses),
                   (rowStart, rowEnd, width, input, residual, gains, shifts, epsilon, normalized, output, inverses))

static inline __attribute__((always_inline))
void layer_norm_backward(size_t rowStart, size_t rowEnd, size_t width, float *restrict gradient,
                         const float *restrict normalized, const float *restrict gains, const float *restrict inverses) {
    for (size_t r = rowStart; r < rowEnd; r++) {
        float *g = gradient + r * width;
        const float *n = normalized + r * width;
        float meanG, meanGX;
        SIMD8_LANE_SUM(width, g[c] * gains[c], meanG);
        meanG = meanG / (float)width;
        SIMD8_LANE_SUM(width, g[c] * gains[c] * n[c], meanGX);
        meanGX = meanGX / (float)width;
        const float inverse = inverses[r];
        for (size_t c = 0; c < width; c++) g[c] = inverse * (g[c] * gains[c] - meanG - n[c] * meanGX);
    }
}

LORABENCH_DISPATCH(lorabench_layer_norm_backward, layer_norm_backward,
                   (size_t rowStart, size_t rowEnd, size_t width, float *restrict gradient, const float *restrict normalized,
                    const float *restrict gains, const float *restrict inverses),
                   (rowStart, rowEnd, width, gradient, normalized, gains, inverses))
