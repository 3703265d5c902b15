// Rotary position embedding over rows of heads, in place, compiled once per vector width and
// picked per call (cpu_level.h). Each element is one product pair and a sum or difference, no
// contraction, so every build gives the bits of RoPEKernelTests' Swift reference loop.
#include "ckernels.h"
#include "cpu_level.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline __attribute__((always_inline))
void rope_rows(size_t rowStart, size_t rowEnd, size_t heads, size_t headSize, float *restrict x, size_t stride,
               const float *restrict cosines, const float *restrict sines, float sineSign) {
    const size_t half = headSize / 2;
    for (size_t r = rowStart; r < rowEnd; r++) {
        const float *c = cosines + r * half, *s = sines + r * half;
        for (size_t h = 0; h < heads; h++) {
            float *first = x + r * stride + h * headSize, *second = first + half;
            for (size_t j = 0; j < half; j++) {
                const float x1 = first[j], x2 = second[j], sine = sineSign * s[j];
                first[j] = x1 * c[j] - x2 * sine;
                second[j] = x2 * c[j] + x1 * sine;
            }
        }
    }
}

LORABENCH_DISPATCH(lorabench_rope_rows, rope_rows,
                   (size_t rowStart, size_t rowEnd, size_t heads, size_t headSize, float *restrict x, size_t stride,
                    const float *restrict cosines, const float *restrict sines, float sineSign),
                   (rowStart, rowEnd, heads, headSize, x, stride, cosines, sines, sineSign))
