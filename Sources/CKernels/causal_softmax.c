// The decoder's causal softmax over one head's scores, forward and backward, compiled once per
// vector width and picked per call (cpu_level.h). Row i of a block sees the keys 0…lastVisible + i
// only, so it reads and sums those alone and writes zeros over the rest of its row: the products
// that follow read the visible part, and never a masked entry's garbage. Sums are eight-lane sums
// added in index order (simd8_sum.h), the exponential Cephes' (cephes_exp.h), no contraction: every
// build gives the bits of CausalSoftmaxKernelTests' Swift reference loops.
#include "ckernels.h"
#include "cpu_level.h"
#include "cephes_exp.h"
#include "lane_max.h"
#include "simd8_sum.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline size_t visibleCount(size_t lastVisible, size_t row, size_t stride) {
    const size_t count = lastVisible + row + 1;
    return count < stride ? count : stride;
}

static inline __attribute__((always_inline))
void causal_softmax_rows(float *restrict scores, size_t rows, size_t stride, size_t lastVisible, const float *restrict keyBias) {
    for (size_t i = 0; i < rows; i++) {
        float *row = scores + i * stride;
        const size_t count = visibleCount(lastVisible, i, stride);
        for (size_t j = 0; j < count; j++) row[j] += keyBias[j];
        const float maximum = laneMaximum(row, count);
        if (maximum == -__builtin_inff()) {
            // Every visible key is padding: a zero row, so that the query's context is zero.
            for (size_t j = 0; j < stride; j++) row[j] = 0;
            continue;
        }
        float sum;
        SIMD8_LANE_SUM(count, (row[c] = cephesExp(row[c] - maximum)), sum);
        const float inverse = 1 / sum;
        for (size_t j = 0; j < count; j++) row[j] *= inverse;
        for (size_t j = count; j < stride; j++) row[j] = 0;
    }
}

LORABENCH_DISPATCH(lorabench_causal_softmax_rows, causal_softmax_rows,
                   (float *restrict scores, size_t rows, size_t stride, size_t lastVisible, const float *restrict keyBias),
                   (scores, rows, stride, lastVisible, keyBias))

static inline __attribute__((always_inline))
void causal_softmax_backward_rows(float *restrict grad, const float *restrict probabilities, size_t rows, size_t stride,
                                  size_t lastVisible) {
    for (size_t i = 0; i < rows; i++) {
        float *g = grad + i * stride;
        const float *p = probabilities + i * stride;
        const size_t count = visibleCount(lastVisible, i, stride);
        float weighted;
        SIMD8_LANE_SUM(count, p[c] * g[c], weighted);
        for (size_t j = 0; j < count; j++) g[j] = p[j] * (g[j] - weighted);
        for (size_t j = count; j < stride; j++) g[j] = 0;
    }
}

LORABENCH_DISPATCH(lorabench_causal_softmax_backward_rows, causal_softmax_backward_rows,
                   (float *restrict grad, const float *restrict probabilities, size_t rows, size_t stride, size_t lastVisible),
                   (grad, probabilities, rows, stride, lastVisible))
