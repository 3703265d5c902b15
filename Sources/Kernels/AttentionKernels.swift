import CKernels

// One attention head's products and softmax, over blocks of the [tokens, hidden] buffers addressed
// by stride: CKernels loops built per vector width and picked per call for the CPU.

/// C = alpha·op(A)·B for one attention head: op(A) [m, k] (`.t` reads A as stored [k, m]), B [k, n]
/// as stored, every operand a block inside a larger buffer with the given row stride; C is only
/// written. Register-blocked combinations of B's rows (small_product.c), where cblas_sgemm spent a
/// call's checks and dispatch on each of these few-microsecond products.
@inline(__always)
public func smallProduct(_ opA: Op, m: Int, n: Int, k: Int, alpha: Float, _ a: UnsafePointer<Float>, lda: Int,
                         _ b: UnsafePointer<Float>, ldb: Int, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    let (rowStride, columnStride) = opA == .n ? (lda, 1) : (1, lda)
    lorabench_small_product(m, n, k, alpha, a, rowStride, columnStride, b, ldb, c, ldc)
}

/// destination [cols, rows] (dense) ← the transpose of the [rows, cols] block at `source` with row stride `stride`.
@inline(__always)
public func transpose(rows: Int, cols: Int, _ source: UnsafePointer<Float>, stride: Int, into destination: UnsafeMutablePointer<Float>) {
    lorabench_transpose(rows, cols, source, stride, destination)
}

/// Row-wise softmax of S + bias in place over a [rows, rows] block: p_j = exp(s_j − max)/Σ exp(s_k − max),
/// with s_j = S[i, j] + bias[j], added in Float before the max as torch does.
@inline(__always)
public func maskedSoftmaxRows(_ scores: UnsafeMutablePointer<Float>, rows: Int, keyBias: UnsafePointer<Float>) {
    lorabench_masked_softmax_rows(scores, rows, keyBias)
}

/// ∂P → ∂S in place for one [rows, rows] softmax block: ∂S_ij = P_ij·(∂P_ij − Σ_k P_ik ∂P_ik).
@inline(__always)
public func softmaxBackwardRows(_ grad: UnsafeMutablePointer<Float>, probabilities: UnsafePointer<Float>, rows: Int) {
    lorabench_softmax_backward_rows(grad, probabilities, rows)
}
