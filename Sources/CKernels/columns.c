// Sums down the rows of [rows, cols] matrices, for the column range [first, last): the bias
// gradient (Σ_r G[r, c]) and DoRA's magnitude gradient (Σ_r A[r, c]·B[r, c], or
// Σ_r A[r, c]·(B[r, c] − o[c]) when B is DoRA's output with its bias o). Each column's sum
// runs over the rows in order, a product rounded before its sum (no contraction into FMA), so
// every build, and a split of the columns over threads, gives the bits of the plain loop.
#include "ckernels.h"
#include "cpu_level.h"

#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static inline __attribute__((always_inline))
void add_column_dots(size_t rows, size_t cols, size_t first, size_t last, const float *restrict a,
                     const float *restrict b, float *restrict acc) {
    for (size_t r = 0; r < rows; r++) {
        const float *rowA = a + r * cols, *rowB = b + r * cols;
        for (size_t c = first; c < last; c++) acc[c] += rowA[c] * rowB[c];
    }
}

LORABENCH_DISPATCH(lorabench_add_column_dots, add_column_dots,
                   (size_t rows, size_t cols, size_t first, size_t last, const float *restrict a,
                    const float *restrict b, float *restrict acc),
                   (rows, cols, first, last, a, b, acc))

static inline __attribute__((always_inline))
void add_column_dots_offset(size_t rows, size_t cols, size_t first, size_t last, const float *restrict a,
                            const float *restrict b, const float *restrict offset, float *restrict acc) {
    for (size_t r = 0; r < rows; r++) {
        const float *rowA = a + r * cols, *rowB = b + r * cols;
        for (size_t c = first; c < last; c++) acc[c] += rowA[c] * (rowB[c] - offset[c]);
    }
}

LORABENCH_DISPATCH(lorabench_add_column_dots_offset, add_column_dots_offset,
                   (size_t rows, size_t cols, size_t first, size_t last, const float *restrict a,
                    const float *restrict b, const float *restrict offset, float *restrict acc),
                   (rows, cols, first, last, a, b, offset, acc))

static inline __attribute__((always_inline))
void add_column_sums(size_t rows, size_t cols, size_t first, size_t last, const float *restrict g, float *restrict acc) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = g + r * cols;
        for (size_t c = first; c < last; c++) acc[c] += row[c];
    }
}

LORABENCH_DISPATCH(lorabench_add_column_sums, add_column_sums,
                   (size_t rows, size_t cols, size_t first, size_t last, const float *restrict g, float *restrict acc),
                   (rows, cols, first, last, g, acc))
