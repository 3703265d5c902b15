// The per-head products of attention, S = Q·Kᵀ, O = P·V and their gradients: [T, T] or [T, d]
// results (T the sequence length, d the head width; 64 and 32 in the benchmark's step), 2,304 of
// each per step there (6 layers × 32 sequences × 12 heads), each small enough to stay in the L1
// and L2 caches. Through cblas_sgemm they ran at 30–43 GFLOP/s per thread (OpenBLAS's
// small-matrix kernels behind a call's checks and dispatch). Here an output row is a combination
// of B's rows, held in registers over blocks of 2 rows × 64 columns (4 × 32, 8 × 16 for narrower
// results): eight independent sums cover the FMA latency, and each loaded vector of B serves every
// row of the block.
//
// Every element sums its k products in order, p = 0, 1, …, contracted into FMA where the CPU has
// it, in whichever block it falls: its bits do not depend on the blocking, the thread or the
// vector width (the AVX2 and AVX-512 builds agree); the baseline build (no FMA) rounds differently.
#include "ckernels.h"
#include "cpu_level.h"
#include "vec16.h"

#pragma STDC FP_CONTRACT ON

// C[i0 + r, col + 16·v + lane] for r < rows, v < vectors, all vectors whole.
#define BLOCK(rows, vectors)                                                                                 \
    static inline __attribute__((always_inline))                                                             \
    void block##rows##x##vectors(size_t i0, size_t col, size_t k, float alpha, const float *a,               \
                                 size_t rowStride, size_t columnStride, const float *b, size_t ldb,          \
                                 float *c, size_t ldc) {                                                     \
        vec16 acc[rows][vectors];                                                                            \
        for (int r = 0; r < rows; r++)                                                                       \
            for (int v = 0; v < vectors; v++) acc[r][v] = 0;                                                 \
        for (size_t p = 0; p < k; p++) {                                                                     \
            vec16 x[vectors];                                                                                \
            for (int v = 0; v < vectors; v++) x[v] = load16(b + p * ldb + col + v * lanes);                  \
            for (int r = 0; r < rows; r++) {                                                                 \
                const float f = a[(i0 + r) * rowStride + p * columnStride];                                  \
                for (int v = 0; v < vectors; v++) acc[r][v] += f * x[v];                                     \
            }                                                                                                \
        }                                                                                                    \
        for (int r = 0; r < rows; r++)                                                                       \
            for (int v = 0; v < vectors; v++) store16(c + (i0 + r) * ldc + col + v * lanes, alpha * acc[r][v]); \
    }
BLOCK(2, 4)
BLOCK(1, 4)
BLOCK(4, 2)
BLOCK(1, 2)
BLOCK(8, 1)
BLOCK(1, 1)

// The last `count` (< 16) columns of row i, through zero-padded vectors.
static inline __attribute__((always_inline))
void tailOfRow(size_t i, size_t col, size_t count, size_t k, float alpha, const float *a, size_t rowStride,
               size_t columnStride, const float *b, size_t ldb, float *c, size_t ldc) {
    vec16 acc = 0;
    for (size_t p = 0; p < k; p++) acc += a[i * rowStride + p * columnStride] * loadTail(b + p * ldb + col, count);
    storeTail(c + i * ldc + col, alpha * acc, count);
}

// One strip of columns [col, col + 16·vectors) over all m rows: blocks of `rows`, then single rows.
#define STRIP(rows, vectors)                                                                                 \
    for (; col + (vectors) * lanes <= n; col += (vectors) * lanes) {                                         \
        size_t i = 0;                                                                                        \
        for (; i + (rows) <= m; i += (rows)) block##rows##x##vectors(i, col, k, alpha, a, rowStride, columnStride, b, ldb, c, ldc); \
        for (; i < m; i++) block1x##vectors(i, col, k, alpha, a, rowStride, columnStride, b, ldb, c, ldc);   \
    }

static inline __attribute__((always_inline))
void small_product(size_t m, size_t n, size_t k, float alpha, const float *restrict a, size_t rowStride,
                   size_t columnStride, const float *restrict b, size_t ldb, float *restrict c, size_t ldc) {
    size_t col = 0;
    STRIP(2, 4)
    STRIP(4, 2)
    STRIP(8, 1)
    if (col < n) {
        for (size_t i = 0; i < m; i++) tailOfRow(i, col, n - col, k, alpha, a, rowStride, columnStride, b, ldb, c, ldc);
    }
}

LORABENCH_DISPATCH(lorabench_small_product, small_product,
                   (size_t m, size_t n, size_t k, float alpha, const float *restrict a, size_t rowStride,
                    size_t columnStride, const float *restrict b, size_t ldb, float *restrict c, size_t ldc),
                   (m, n, k, alpha, a, rowStride, columnStride, b, ldb, c, ldc))

// Row by row of the destination, so that its writes are sequential.
static inline __attribute__((always_inline))
void transpose(size_t rows, size_t cols, const float *restrict source, size_t sourceStride, float *restrict destination) {
    for (size_t j = 0; j < cols; j++)
        for (size_t i = 0; i < rows; i++) destination[j * rows + i] = source[i * sourceStride + j];
}

LORABENCH_DISPATCH(lorabench_transpose, transpose,
                   (size_t rows, size_t cols, const float *restrict source, size_t sourceStride, float *restrict destination),
                   (rows, cols, source, sourceStride, destination))
