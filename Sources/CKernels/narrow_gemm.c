// Products with one narrow side, the shapes of a rank-r adapter: z = x·Aᵀ, ∂z = G·B [N, r] and
// ∂A = ∂zᵀ·x, ∂B = Gᵀ·z [r, features]. OpenBLAS runs these at 27–40 GFLOP/s (against 290 on
// the frozen layers' products; measured per shape through an LD_PRELOAD shim on cblas_sgemm),
// packing the long operand before its kernel runs; these read it once, in place, in 16-float
// vectors (one AVX-512 register, two AVX2 ones, four SSE ones). Products whose inner side is the
// rank (the merged weight W0 + s·B·A [out, in], s·z·Bᵀ [N, out], ∂z·A [N, in]) ran at 5–20
// GFLOP/s there, a few milliseconds for a pass over their output; here each output row is written
// once from the k rows of B, which stay in the L1 cache.
//
// A dot product (x·Aᵀ, G·B) keeps 16 partial sums, one per lane, combined in a fixed tree; a sum
// over the long side (∂zᵀ·x, Gᵀ·z) or over the rank adds each term in order into its own element.
// So a result does not depend on the vector width. Products and sums contract into FMA where the
// CPU has it: the AVX2 and AVX-512 builds give the same bits, the baseline build (no FMA) rounds
// differently.
#include "ckernels.h"
#include "cpu_level.h"
#include "vec16.h"

#pragma STDC FP_CONTRACT ON

static inline __attribute__((always_inline)) float blend(float alpha, float sum, float beta, const float *old) {
    return beta == 0.0f ? alpha * sum : alpha * sum + beta * *old;
}

// Dot products of one row of A with `width` (8, 4 or 1) rows of Bᵀ, the row's vectors loaded
// once; eight independent sums keep both FMA pipes busy through their four-cycle latency.
#define DOTS(width)                                                                         \
    static inline __attribute__((always_inline))                                            \
    void dots##width(const float *row, const float *bt, size_t ldbt, size_t k, float *sums) { \
        vec16 acc[width];                                                                   \
        for (int j = 0; j < width; j++) acc[j] = 0;                                         \
        const size_t whole = k - k % lanes;                                                 \
        for (size_t p = 0; p < whole; p += lanes) {                                         \
            const vec16 x = load16(row + p);                                                \
            for (int j = 0; j < width; j++) acc[j] += x * load16(bt + j * ldbt + p);        \
        }                                                                                   \
        if (whole < k) {                                                                    \
            const vec16 x = loadTail(row + whole, k - whole);                               \
            for (int j = 0; j < width; j++) acc[j] += x * loadTail(bt + j * ldbt + whole, k - whole); \
        }                                                                                   \
        for (int j = 0; j < width; j++) sums[j] = sumLanes(acc[j]);                         \
    }
DOTS(8)
DOTS(4)
DOTS(1)

// dots8 for two rows of A at once: each vector of Bᵀ, loaded once, meets both rows, which halves
// the traffic from Bᵀ (eight rows of 1,536 floats fill the L1 cache on their own).
static inline __attribute__((always_inline))
void dots8x2(const float *row0, const float *row1, const float *bt, size_t ldbt, size_t k, float *sums0, float *sums1) {
    vec16 acc0[8], acc1[8];
    for (int j = 0; j < 8; j++) acc0[j] = acc1[j] = 0;
    const size_t whole = k - k % lanes;
    for (size_t p = 0; p < whole; p += lanes) {
        const vec16 x0 = load16(row0 + p), x1 = load16(row1 + p);
        for (int j = 0; j < 8; j++) {
            const vec16 b = load16(bt + j * ldbt + p);
            acc0[j] += x0 * b;
            acc1[j] += x1 * b;
        }
    }
    if (whole < k) {
        const vec16 x0 = loadTail(row0 + whole, k - whole), x1 = loadTail(row1 + whole, k - whole);
        for (int j = 0; j < 8; j++) {
            const vec16 b = loadTail(bt + j * ldbt + whole, k - whole);
            acc0[j] += x0 * b;
            acc1[j] += x1 * b;
        }
    }
    for (int j = 0; j < 8; j++) {
        sums0[j] = sumLanes(acc0[j]);
        sums1[j] = sumLanes(acc1[j]);
    }
}

static inline __attribute__((always_inline))
void rows_times_narrow(size_t rowStart, size_t rowEnd, size_t n, size_t k, float alpha,
                       const float *restrict a, size_t lda, const float *restrict bt, size_t ldbt,
                       float beta, float *restrict c, size_t ldc) {
    size_t i = rowStart;
    if (n % 8 == 0) {
        for (; i + 2 <= rowEnd; i += 2) {
            float *out0 = c + i * ldc, *out1 = out0 + ldc;
            for (size_t j = 0; j < n; j += 8) {
                float sums0[8], sums1[8];
                dots8x2(a + i * lda, a + (i + 1) * lda, bt + j * ldbt, ldbt, k, sums0, sums1);
                for (int q = 0; q < 8; q++) {
                    out0[j + q] = blend(alpha, sums0[q], beta, out0 + j + q);
                    out1[j + q] = blend(alpha, sums1[q], beta, out1 + j + q);
                }
            }
        }
    }
    for (; i < rowEnd; i++) {
        const float *row = a + i * lda;
        float *out = c + i * ldc;
        float sums[8];
        size_t j = 0;
        for (; j + 8 <= n; j += 8) {
            dots8(row, bt + j * ldbt, ldbt, k, sums);
            for (int q = 0; q < 8; q++) out[j + q] = blend(alpha, sums[q], beta, out + j + q);
        }
        for (; j + 4 <= n; j += 4) {
            dots4(row, bt + j * ldbt, ldbt, k, sums);
            for (int q = 0; q < 4; q++) out[j + q] = blend(alpha, sums[q], beta, out + j + q);
        }
        for (; j < n; j++) {
            dots1(row, bt + j * ldbt, ldbt, k, sums);
            out[j] = blend(alpha, sums[0], beta, out + j);
        }
    }
}

LORABENCH_DISPATCH(lorabench_rows_times_narrow, rows_times_narrow,
                   (size_t rowStart, size_t rowEnd, size_t n, size_t k, float alpha, const float *restrict a, size_t lda,
                    const float *restrict bt, size_t ldbt, float beta, float *restrict c, size_t ldc),
                   (rowStart, rowEnd, n, k, alpha, a, lda, bt, ldbt, beta, c, ldc))

// alpha·Σ_p a[p]·B[p, col..col+16) + beta·old over the k ≤ 16 rows of B, p in order: each
// lane sums the same products in the same order whether its vector is whole or a zero-padded
// edge, so an element's bits do not depend on where it falls.
static inline __attribute__((always_inline))
vec16 combination16(const float *a, size_t k, const float *b, size_t ldb, size_t col, size_t count,
                    float alpha, float beta, vec16 old) {
    vec16 acc = 0;
    for (size_t p = 0; p < k; p++) acc += a[p] * (count == lanes ? load16(b + p * ldb + col) : loadTail(b + p * ldb + col, count));
    return beta == 0.0f ? alpha * acc : alpha * acc + beta * old;
}

static inline __attribute__((always_inline))
void rows_times_short_inner(size_t rowStart, size_t rowEnd, size_t n, size_t k, float alpha,
                            const float *restrict a, size_t lda, const float *restrict b, size_t ldb,
                            float beta, float *restrict c, size_t ldc) {
    for (size_t i = rowStart; i < rowEnd; i++) {
        const float *row = a + i * lda;
        float *out = c + i * ldc;
        size_t col = 0;
        // Four whole vectors of a row at a time, four independent sums over the loaded weights of A
        // (the edge loop below alone took twice the samples: 1.1–1.3 % of a step against 0.5 %).
        for (; col + 4 * lanes <= n; col += 4 * lanes) {
            for (int v = 0; v < 4; v++) {
                float *at = out + col + v * lanes;
                store16(at, combination16(row, k, b, ldb, col + v * lanes, lanes, alpha, beta, beta == 0.0f ? 0 : load16(at)));
            }
        }
        for (; col < n; col += lanes) {
            const size_t count = n - col < lanes ? n - col : lanes;
            float *at = out + col;
            const vec16 old = beta == 0.0f ? 0 : (count == lanes ? load16(at) : loadTail(at, count));
            const vec16 result = combination16(row, k, b, ldb, col, count, alpha, beta, old);
            if (count == lanes) store16(at, result); else storeTail(at, result, count);
        }
    }
}

LORABENCH_DISPATCH(lorabench_rows_times_short_inner, rows_times_short_inner,
                   (size_t rowStart, size_t rowEnd, size_t n, size_t k, float alpha, const float *restrict a, size_t lda,
                    const float *restrict b, size_t ldb, float beta, float *restrict c, size_t ldc),
                   (rowStart, rowEnd, n, k, alpha, a, lda, b, ldb, beta, c, ldc))

// acc[j] += factors[j]·(x0, x1) for the `width` rows of a strip's sums.
static inline __attribute__((always_inline))
void addOuter(int width, vec16 acc[][2], const float *factors, vec16 x0, vec16 x1) {
    for (int j = 0; j < width; j++) {
        acc[j][0] += factors[j] * x0;
        acc[j][1] += factors[j] * x1;
    }
}

// partial[j, col..col+32) += Σ_i A[i, j]·B[i, col..col+32) for `width` (8, 4 or 1) rows j from
// j0, the 2·width sums held in registers while every row i passes (no partial sum is loaded or
// stored inside the loop); `count` < 32 columns at the right edge go through zero-padded vectors.
#define OUTER(width)                                                                                 \
    static inline __attribute__((always_inline))                                                     \
    void outer##width(size_t kStart, size_t kEnd, size_t j0, size_t col, size_t count,               \
                      const float *restrict a, size_t lda, const float *restrict b, size_t ldb,      \
                      float *restrict partial, size_t n) {                                           \
        vec16 acc[width][2];                                                                         \
        for (int j = 0; j < width; j++) acc[j][0] = acc[j][1] = 0;                                   \
        if (count == 2 * lanes) {                                                                    \
            /* Whole strips in a loop of their own: with the edge's branches inside it, clang kept \
               the sums on the stack, a load and a store per vector per row (∂B of a 2,048 × 1,536 \
               G at rank 8 took 1.43 ms on one thread, 0.86 ms this way). */                     \
            for (size_t i = kStart; i < kEnd; i++) {                                                 \
                const float *row = b + i * ldb + col;                                                \
                addOuter(width, acc, a + i * lda + j0, load16(row), load16(row + lanes));            \
            }                                                                                        \
        } else {                                                                                     \
            const size_t second = count > lanes ? count - lanes : 0;                                 \
            for (size_t i = kStart; i < kEnd; i++) {                                                 \
                const float *row = b + i * ldb + col;                                                \
                addOuter(width, acc, a + i * lda + j0,                                               \
                         count >= lanes ? load16(row) : loadTail(row, count),                        \
                         second >= lanes ? load16(row + lanes) : loadTail(row + lanes, second));     \
            }                                                                                        \
        }                                                                                            \
        for (int j = 0; j < width; j++) {                                                            \
            float *p = partial + (j0 + j) * n + col;                                                 \
            if (count == 2 * lanes) {                                                                \
                store16(p, load16(p) + acc[j][0]);                                                   \
                store16(p + lanes, load16(p + lanes) + acc[j][1]);                                   \
                continue;                                                                            \
            }                                                                                        \
            float sums[2 * lanes];                                                                   \
            store16(sums, acc[j][0]);                                                                \
            store16(sums + lanes, acc[j][1]);                                                        \
            for (size_t q = 0; q < count; q++) p[q] += sums[q];                                      \
        }                                                                                            \
    }
OUTER(8)
OUTER(4)
OUTER(1)

enum { rowBlock = 32 };

static inline __attribute__((always_inline))
void accumulate_narrow_outer(size_t kStart, size_t kEnd, size_t m, size_t n, const float *restrict a, size_t lda,
                             const float *restrict b, size_t ldb, float *restrict partial) {
    // 32 rows of B at a time (at most a few hundred KB, in the L2 cache), walked left to right in
    // 32-column strips: sequential streams the prefetcher follows (16 rows measured 7 % slower,
    // 128 rows 65 % slower on 1,536 columns).
    for (size_t first = kStart; first < kEnd; first += rowBlock) {
        const size_t last = kEnd - first < rowBlock ? kEnd : first + rowBlock;
        for (size_t col = 0; col < n; col += 2 * lanes) {
            const size_t count = n - col < 2 * lanes ? n - col : 2 * lanes;
            size_t j = 0;
            for (; j + 8 <= m; j += 8) outer8(first, last, j, col, count, a, lda, b, ldb, partial, n);
            for (; j + 4 <= m; j += 4) outer4(first, last, j, col, count, a, lda, b, ldb, partial, n);
            for (; j < m; j++) outer1(first, last, j, col, count, a, lda, b, ldb, partial, n);
        }
    }
}

LORABENCH_DISPATCH(lorabench_accumulate_narrow_outer, accumulate_narrow_outer,
                   (size_t kStart, size_t kEnd, size_t m, size_t n, const float *restrict a, size_t lda,
                    const float *restrict b, size_t ldb, float *restrict partial),
                   (kStart, kEnd, m, n, a, lda, b, ldb, partial))

// A rank-r layer's backward reads its output gradient G [N, n] twice: ∂B's sums partial[j, col]
// += Σ_i z[i, j]·G[i, col] and ∂z = alpha·G·W [N, m]. Here both take one 32-row block of G at a
// time, so the second reads it from the L2 cache instead of memory (2,048 × 1,536 at rank 8, one
// thread: 1.11 ms against 1.64 for the two kernels); each result gets the bits of its own kernel
// (accumulate_narrow_outer's blocks start at kStart as here, and rows_times_narrow's rows are
// independent).
static inline __attribute__((always_inline))
void narrow_outer_and_rows(size_t kStart, size_t kEnd, size_t m, size_t n, const float *restrict z, size_t ldz,
                           const float *restrict g, size_t ldg, float *restrict partial, float alpha,
                           const float *restrict wt, size_t ldwt, float *restrict rows, size_t ldrows) {
    for (size_t first = kStart; first < kEnd; first += rowBlock) {
        const size_t last = kEnd - first < rowBlock ? kEnd : first + rowBlock;
        accumulate_narrow_outer(first, last, m, n, z, ldz, g, ldg, partial);
        rows_times_narrow(first, last, m, n, alpha, g, ldg, wt, ldwt, 0.0f, rows, ldrows);
    }
}

LORABENCH_DISPATCH(lorabench_narrow_outer_and_rows, narrow_outer_and_rows,
                   (size_t kStart, size_t kEnd, size_t m, size_t n, const float *restrict z, size_t ldz,
                    const float *restrict g, size_t ldg, float *restrict partial, float alpha,
                    const float *restrict wt, size_t ldwt, float *restrict rows, size_t ldrows),
                   (kStart, kEnd, m, n, z, ldz, g, ldg, partial, alpha, wt, ldwt, rows, ldrows))

void lorabench_combine_partials(size_t count, const float *partials, size_t m, size_t n, float alpha, float beta,
                                float *c, size_t rowStride, size_t columnStride) {
    for (size_t j = 0; j < m; j++) {
        for (size_t col = 0; col < n; col++) {
            float sum = partials[j * n + col];
            for (size_t w = 1; w < count; w++) sum += partials[w * m * n + j * n + col];
            float *out = c + j * rowStride + col * columnStride;
            *out = blend(alpha, sum, beta, out);
        }
    }
}
