#ifndef LORABENCH_CKERNELS_H
#define LORABENCH_CKERNELS_H

#include <stddef.h>

/// GELU(x) = x·Φ(x) from `input` into `output` over `count` floats, and its derivative
/// Φ(x) + x·φ(x) into `derivative` (three distinct buffers), bit for bit as the Swift SIMD8
/// reference in Tests/KernelsTests/GELUKernelTests.swift.
void lorabench_gelu_forward(const float *restrict input, float *restrict output, float *restrict derivative, size_t count);

/// The instruction set level the kernels run at on this CPU: 4 for x86-64-v4 (AVX-512), 3 for
/// x86-64-v3 (AVX2 and FMA), 1 for the baseline.
int lorabench_cpu_level(void);

/// C[i, j] = alpha·Σ_p A[i, p]·Bt[j, p] + beta·C[i, j] for rows i in [rowStart, rowEnd) and j < n:
/// A [·, k] and Bt [n, k] with row strides lda and ldbt, C with row stride ldc. With beta = 0, C
/// is only written.
void lorabench_rows_times_narrow(size_t rowStart, size_t rowEnd, size_t n, size_t k, float alpha,
                                 const float *restrict a, size_t lda, const float *restrict bt, size_t ldbt,
                                 float beta, float *restrict c, size_t ldc);

/// C[i, :] = alpha·Σ_{p<k} A[i, p]·B[p, :] + beta·C[i, :] for rows i in [rowStart, rowEnd) and n
/// columns, k at most 16: A [·, k] and B [k, n] with row strides lda and ldb, C with row stride
/// ldc. With beta = 0, C is only written.
void lorabench_rows_times_short_inner(size_t rowStart, size_t rowEnd, size_t n, size_t k, float alpha,
                                      const float *restrict a, size_t lda, const float *restrict b, size_t ldb,
                                      float beta, float *restrict c, size_t ldc);

/// partial[j, col] += Σ_{i in [kStart, kEnd)} A[i, j]·B[i, col] for j < m, col < n: A [k, m] and
/// B [k, n] with row strides lda and ldb, partial dense [m, n].
void lorabench_accumulate_narrow_outer(size_t kStart, size_t kEnd, size_t m, size_t n, const float *restrict a, size_t lda,
                                       const float *restrict b, size_t ldb, float *restrict partial);

/// Over rows i in [kStart, kEnd) of G [·, n]: partial[j, col] += Σ_i Z[i, j]·G[i, col] as
/// lorabench_accumulate_narrow_outer (Z [·, m], partial dense [m, n]), and Rows[i, j] =
/// alpha·Σ_col G[i, col]·Wt[j, col] as lorabench_rows_times_narrow with beta = 0 (Wt [m, n]),
/// with the same bits as those two calls; G is read from memory once. Row strides ldz, ldg, ldwt, ldrows.
void lorabench_narrow_outer_and_rows(size_t kStart, size_t kEnd, size_t m, size_t n, const float *restrict z, size_t ldz,
                                     const float *restrict g, size_t ldg, float *restrict partial, float alpha,
                                     const float *restrict wt, size_t ldwt, float *restrict rows, size_t ldrows);

/// C[j, col] = alpha·Σ_w partials[w][j, col] + beta·C[j, col] over `count` dense [m, n]
/// partials in a row, summed in order; C's element (j, col) is at j·rowStride + col·columnStride.
void lorabench_combine_partials(size_t count, const float *partials, size_t m, size_t n, float alpha, float beta,
                                float *c, size_t rowStride, size_t columnStride);

/// acc[c] += Σ_r A[r, c]·B[r, c] for columns c in [first, last) of dense [rows, cols] A and B,
/// row by row, each product rounded before it is added.
void lorabench_add_column_dots(size_t rows, size_t cols, size_t first, size_t last, const float *restrict a,
                               const float *restrict b, float *restrict acc);

/// acc[c] += Σ_r A[r, c]·(B[r, c] − offset[c]) for columns c in [first, last), as above, each
/// difference and product rounded before the sum.
void lorabench_add_column_dots_offset(size_t rows, size_t cols, size_t first, size_t last, const float *restrict a,
                                      const float *restrict b, const float *restrict offset, float *restrict acc);

/// acc[c] += Σ_r G[r, c] for columns c in [first, last) of a dense [rows, cols] G, row by row.
void lorabench_add_column_sums(size_t rows, size_t cols, size_t first, size_t last, const float *restrict g, float *restrict acc);

/// Softmax in place over each row of a [rows, rows] block of scores S, with keyBias [rows] added
/// first: P_ij = exp(s_ij − max_j s_ij)/Σ_j exp(s_ij − max), s_ij = S_ij + keyBias_j.
void lorabench_masked_softmax_rows(float *restrict scores, size_t rows, const float *restrict keyBias);

/// ∂P → ∂S in place over a [rows, rows] block: ∂S_ij = P_ij·(∂P_ij − Σ_k P_ik·∂P_ik).
void lorabench_softmax_backward_rows(float *restrict grad, const float *restrict probabilities, size_t rows);

/// LayerNorm of rows [rowStart, rowEnd) of [·, width] input (+ residual, when not null):
/// normalized ← x̂ = (x − μ)/σ, output ← x̂·gains + shifts, inverses[r] ← 1/σ, σ = √(var + epsilon).
void lorabench_layer_norm_forward(size_t rowStart, size_t rowEnd, size_t width, const float *restrict input,
                                  const float *restrict residual, const float *restrict gains, const float *restrict shifts,
                                  float epsilon, float *restrict normalized, float *restrict output, float *restrict inverses);

/// ∂y → ∂x in place for rows [rowStart, rowEnd): ∂x = (1/σ)·(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)), g = gains ⊙ ∂y.
void lorabench_layer_norm_backward(size_t rowStart, size_t rowEnd, size_t width, float *restrict gradient,
                                   const float *restrict normalized, const float *restrict gains, const float *restrict inverses);

/// C[i, j] = alpha·Σ_{p<k} A(i, p)·B[p, j] for i < m, j < n, with A(i, p) = a[i·rowStride +
/// p·columnStride] (a row-major A, or a transposed one read in place), B [k, n] with row stride
/// ldb and C (written, never read) with row stride ldc: one attention head's products.
void lorabench_small_product(size_t m, size_t n, size_t k, float alpha, const float *restrict a, size_t rowStride,
                             size_t columnStride, const float *restrict b, size_t ldb, float *restrict c, size_t ldc);

/// destination [cols, rows] (dense) = the transpose of a [rows, cols] block with row stride sourceStride.
void lorabench_transpose(size_t rows, size_t cols, const float *restrict source, size_t sourceStride,
                         float *restrict destination);

/// RMSNorm of rows [rowStart, rowEnd) of a [·, width] input: inverses[r] ← 1/√(mean(x²) + epsilon),
/// output ← weight ⊙ (x·inverses[r]).
void lorabench_rms_norm_forward(size_t rowStart, size_t rowEnd, size_t width, const float *restrict input, const float *restrict weight,
                                float epsilon, float *restrict output, float *restrict inverses);

/// RMSNorm's ∂y → ∂x for rows [rowStart, rowEnd), with s = inverses[r] and g' = ∂y ⊙ weight:
/// ∂x = s·g' − s³·x·(Σ g'·x)/width, stored into gradInput or, when accumulate is non-zero, added to it.
void lorabench_rms_norm_backward(size_t rowStart, size_t rowEnd, size_t width, const float *restrict gradOutput,
                                 const float *restrict input, const float *restrict weight, const float *restrict inverses,
                                 int accumulate, float *restrict gradInput);

/// Rotates in place each of `heads` heads of headSize floats in rows [rowStart, rowEnd) of x (row
/// stride `stride`): with j < headSize/2 and the row's cosines and sines [·, headSize/2],
/// x_j' = x_j·cos_j − x_{j+half}·(sign·sin_j), x_{j+half}' = x_{j+half}·cos_j + x_j·(sign·sin_j).
void lorabench_rope_rows(size_t rowStart, size_t rowEnd, size_t heads, size_t headSize, float *restrict x, size_t stride,
                         const float *restrict cosines, const float *restrict sines, float sineSign);

/// output = SiLU(gate) ⊙ up over count floats, SiLU(g) = g·σ(g).
void lorabench_swiglu_forward(const float *restrict gate, const float *restrict up, float *restrict output, size_t count);

/// SwiGLU's ∂out → ∂up = ∂out ⊙ g·σ(g) and ∂gate = ∂out ⊙ up ⊙ σ(g)·(1 + g·(1 − σ(g))), g = gate.
void lorabench_swiglu_backward(const float *restrict gradOutput, const float *restrict gate, const float *restrict up,
                               float *restrict gradGate, float *restrict gradUp, size_t count);

/// Softmax in place over `rows` rows of scores with row stride `stride`, row i over its keys
/// 0…lastVisible + i (at most stride) with keyBias (0, or −∞ for padding) added first; the rest of
/// the row is set to 0, and so is a row whose visible keys are all padding.
void lorabench_causal_softmax_rows(float *restrict scores, size_t rows, size_t stride, size_t lastVisible,
                                   const float *restrict keyBias);

/// ∂P → ∂S in place over the rows of lorabench_causal_softmax_rows: ∂S_ij = P_ij·(∂P_ij − Σ_k P_ik·∂P_ik)
/// over the row's visible keys, 0 after them.
void lorabench_causal_softmax_backward_rows(float *restrict grad, const float *restrict probabilities, size_t rows, size_t stride,
                                            size_t lastVisible);

/// Cross-entropy of logit rows [rowStart, rowEnd) of [·, vocabulary] against targets: losses[r] ←
/// log Σ_j e^(z_j) − z_target, and the row overwritten by (softmax(z) − onehot(target))/totalRows.
void lorabench_cross_entropy_rows(size_t rowStart, size_t rowEnd, size_t vocabulary, float *restrict logits,
                                  const size_t *restrict targets, size_t totalRows, double *restrict losses);

/// NF4 codes of `count` floats in blocks of `blockSize`: each block's absmax into `absmax`, each
/// value the number of the fifteen `midpoints` strictly below it after scaling into [−1, 1], two
/// codes a byte into `packed` (high nibble first; an odd count pads with the code of 0.0). Returns 0,
/// with the outputs partly written, at the first value that is not finite, else 1.
int lorabench_nf4_quantize(const float *restrict values, size_t count, size_t blockSize, const float *restrict midpoints,
                           float smallestScale, float *restrict absmax, unsigned char *restrict packed);

#endif
