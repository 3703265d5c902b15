// Attention's row-wise softmax over one head's [T, T] scores, forward (with the padding mask) and
// backward, compiled once per vector width and picked per call (cpu_level.h), as GELU. Each row
// runs its eight-lane maxima and sums as the Swift SIMD8 loops these replaced (kept as the
// reference of SoftmaxKernelTests): the same IEEE operations in the same order, no contraction,
// so every build gives their bits.
#include "ckernels.h"
#include "cpu_level.h"
#include "cephes_exp.h"
#include "simd8_sum.h"
#include <math.h>

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline __attribute__((always_inline))
void masked_softmax_rows(float *restrict scores, size_t rows, const float *restrict keyBias) {
    const size_t vectorized = rows - rows % simd8Lanes;
    for (size_t i = 0; i < rows; i++) {
        float *row = scores + i * rows;
        float maxima[simd8Lanes];
        for (int lane = 0; lane < simd8Lanes; lane++) maxima[lane] = -__builtin_inff();
        for (size_t j = 0; j < vectorized; j += simd8Lanes) {
            for (int lane = 0; lane < simd8Lanes; lane++) {
                const float s = row[j + lane] + keyBias[j + lane];
                row[j + lane] = s;
                maxima[lane] = s > maxima[lane] ? s : maxima[lane];
            }
        }
        float maximum = -__builtin_inff();
        for (int lane = 0; lane < simd8Lanes; lane++) if (maxima[lane] > maximum) maximum = maxima[lane];
        for (size_t j = vectorized; j < rows; j++) {
            row[j] += keyBias[j];
            if (row[j] > maximum) maximum = row[j];
        }
        float sums[simd8Lanes] = {0};
        for (size_t j = 0; j < vectorized; j += simd8Lanes) {
            for (int lane = 0; lane < simd8Lanes; lane++) {
                const float e = cephesExp(row[j + lane] - maximum);
                row[j + lane] = e;
                sums[lane] += e;
            }
        }
        float sum = simd8Sum(sums);
        for (size_t j = vectorized; j < rows; j++) {
            row[j] = expf(row[j] - maximum);
            sum += row[j];
        }
        const float inverse = 1 / sum;
        for (size_t j = 0; j < rows; j++) row[j] *= inverse;
    }
}

LORABENCH_DISPATCH(lorabench_masked_softmax_rows, masked_softmax_rows,
                   (float *restrict scores, size_t rows, const float *restrict keyBias), (scores, rows, keyBias))

static inline __attribute__((always_inline))
void softmax_backward_rows(float *restrict grad, const float *restrict probabilities, size_t rows) {
    for (size_t i = 0; i < rows; i++) {
        float *g = grad + i * rows;
        const float *p = probabilities + i * rows;
        float weighted;
        SIMD8_LANE_SUM(rows, p[c] * g[c], weighted);
        for (size_t j = 0; j < rows; j++) g[j] = p[j] * (g[j] - weighted);
    }
}

LORABENCH_DISPATCH(lorabench_softmax_backward_rows, softmax_backward_rows,
                   (float *restrict grad, const float *restrict probabilities, size_t rows), (grad, probabilities, rows))
