// Sums as the Swift SIMD8 loops that softmax.c and layer_norm.c replaced computed them, so that
// the C keeps their bits: eight partial sums over the whole groups of eight (lane l takes terms
// l, l + 8, …), added in lane order from −0 (SIMD8<Float>.sum()), then the remaining terms one
// by one (`laneSum`, kept in the tests' SIMD8Reference.swift). The including file turns
// contraction off.
#ifndef LORABENCH_SIMD8_SUM_H
#define LORABENCH_SIMD8_SUM_H

#include <stddef.h>

enum { simd8Lanes = 8 };

// The eight lanes added in index order from −0: SIMD8<Float>.sum().
static inline __attribute__((always_inline)) float simd8Sum(const float *lanes) {
    float sum = -0.0f;
    for (int lane = 0; lane < simd8Lanes; lane++) sum += lanes[lane];
    return sum;
}

// result = Σ_{c < count} term, `term` an expression of the index c, as `laneSum(count) { term }`.
#define SIMD8_LANE_SUM(count, term, result)                                                        \
    do {                                                                                           \
        float lanes_[simd8Lanes] = {0};                                                            \
        const size_t whole_ = (count) - (count) % simd8Lanes;                                      \
        for (size_t c0_ = 0; c0_ < whole_; c0_ += simd8Lanes)                                      \
            for (int l_ = 0; l_ < simd8Lanes; l_++) { const size_t c = c0_ + l_; lanes_[l_] += (term); } \
        float sum_ = simd8Sum(lanes_);                                                             \
        for (size_t c = whole_; c < (count); c++) sum_ += (term);                                  \
        (result) = sum_;                                                                           \
    } while (0)

#endif
