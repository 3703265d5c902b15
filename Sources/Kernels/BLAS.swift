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
