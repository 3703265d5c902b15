import CBLAS

/// Whether a GEMM operand is used as stored or transposed (a BLAS flag, never a copy).
public enum Op: Sendable {
    case n, t
    package var cblas: CBLAS_TRANSPOSE { self == .n ? CblasNoTrans : CblasTrans }
}

/// C ← alpha · op(A) · op(B) + beta · C, through `cblas_sgemm` on row-major storage.
///
/// Shapes are checked here once, so callers never pass leading dimensions by hand.
public func gemm(_ a: Matrix, _ opA: Op = .n, _ b: Matrix, _ opB: Op = .n,
                 into c: inout Matrix, alpha: Float = 1, beta: Float = 0) {
    let (m, k) = opA == .n ? (a.rows, a.cols) : (a.cols, a.rows)
    let (kb, n) = opB == .n ? (b.rows, b.cols) : (b.cols, b.rows)
    precondition(k == kb, "gemm inner dimensions differ: op(A) is [\(m), \(k)], op(B) is [\(kb), \(n)]")
    if beta == 0 { c.ensureShapeForOverwrite(m, n) }
    precondition(c.rows == m && c.cols == n, "gemm output is [\(c.rows), \(c.cols)], expected [\(m), \(n)]")
    guard m > 0, n > 0 else { return }
    if k == 0 {
        if beta == 0 { c.fill(0) } else if beta != 1 { scale(&c, by: beta) }
        return
    }
    if NarrowProduct.multiply(a, opA, b, opB, into: &c, m: m, n: n, k: k, alpha: alpha, beta: beta) { return }
    a.storage.withUnsafeBufferPointer { pa in
        b.storage.withUnsafeBufferPointer { pb in
            c.storage.withUnsafeMutableBufferPointer { pc in
                cblas_sgemm(CblasRowMajor, opA.cblas, opB.cblas, Int32(m), Int32(n), Int32(k), alpha,
                            pa.baseAddress, Int32(a.cols), pb.baseAddress, Int32(b.cols), beta,
                            pc.baseAddress, Int32(n))
            }
        }
    }
}

/// The two products of a low-rank layer's backward that read its output gradient G [N, out]:
/// weightGradient ← alpha·Gᵀ·z + beta·weightGradient [out, r], for the up projection W [out, r]
/// applied to z [N, r], and projectedGradient ← projectedAlpha·G·W [N, r]. The numbers of
/// `gemm(g, .t, z, .n, …)` and `gemm(g, .n, w, .n, …)` bit for bit; at adapter ranks one pass over
/// G does both, where the two calls read it from memory twice.
public func upProjectionGradients(_ g: Matrix, projected z: Matrix, weight w: Matrix,
                                  into weightGradient: inout Matrix, alpha: Float = 1, beta: Float = 0,
                                  projectedGradient: inout Matrix, projectedAlpha: Float = 1) {
    precondition(z.rows == g.rows && w.rows == g.cols && w.cols == z.cols,
                 "up projection shapes: G [\(g.rows), \(g.cols)], z [\(z.rows), \(z.cols)], W [\(w.rows), \(w.cols)]")
    if beta == 0 { weightGradient.ensureShapeForOverwrite(w.rows, w.cols) }
    precondition(weightGradient.shape == w.shape, "weight gradient is \(weightGradient.shape), expected \(w.shape)")
    if NarrowProduct.outerAndRows(g, z, w, gradW: &weightGradient, alphaW: alpha, betaW: beta,
                                  gradZ: &projectedGradient, alphaZ: projectedAlpha) { return }
    gemm(g, .t, z, .n, into: &weightGradient, alpha: alpha, beta: beta)
    gemm(g, .n, w, .n, into: &projectedGradient, alpha: projectedAlpha)
}

/// op(A) · op(B) as a new matrix.
public func matmul(_ a: Matrix, _ opA: Op = .n, _ b: Matrix, _ opB: Op = .n) -> Matrix {
    var c = Matrix(rows: 0, cols: 0)
    gemm(a, opA, b, opB, into: &c)
    return c
}

/// Raw-pointer GEMM for strided views (attention heads inside a [tokens, hidden] buffer).
/// Leading dimensions are row strides in elements.
@inline(__always)
public func gemm(_ opA: Op, _ opB: Op, m: Int, n: Int, k: Int, alpha: Float,
                 _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
                 beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, opA.cblas, opB.cblas, Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// y ← alpha · x + y.
public func axpy(_ alpha: Float, _ x: Matrix, _ y: inout Matrix) {
    precondition(x.count == y.count, "axpy sizes differ: \(x.count) vs \(y.count)")
    x.storage.withUnsafeBufferPointer { px in
        y.storage.withUnsafeMutableBufferPointer { py in
            cblas_saxpy(Int32(x.count), alpha, px.baseAddress, 1, py.baseAddress, 1)
        }
    }
}

/// x ← alpha · x.
public func scale(_ x: inout Matrix, by alpha: Float) {
    let n = Int32(x.count)
    x.storage.withUnsafeMutableBufferPointer { p in cblas_sscal(n, alpha, p.baseAddress, 1) }
}

/// Frobenius norm ‖x‖_F (BLAS snrm2, which guards against overflow).
public func frobeniusNorm(_ x: Matrix) -> Float {
    x.storage.withUnsafeBufferPointer { p in cblas_snrm2(Int32(x.count), p.baseAddress, 1) }
}

/// Σ x_i y_i.
public func dot(_ x: Matrix, _ y: Matrix) -> Float {
    precondition(x.count == y.count, "dot sizes differ: \(x.count) vs \(y.count)")
    return x.storage.withUnsafeBufferPointer { px in
        y.storage.withUnsafeBufferPointer { py in cblas_sdot(Int32(x.count), px.baseAddress, 1, py.baseAddress, 1) }
    }
}
