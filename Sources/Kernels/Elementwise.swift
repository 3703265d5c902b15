/// Element- and row-wise helpers that BLAS has no single call for. Each is one linear pass.
/// Release builds keep Swift's checks, so the inner loops index with wrapping arithmetic (the
/// preconditions have already bounded every index): an overflow check per element would keep
/// them from vectorising.

/// a ⊙ b.
package func hadamard(_ a: Matrix, _ b: Matrix) -> Matrix {
    precondition(a.count == b.count, "hadamard sizes differ: \(a.shape) vs \(b.shape)")
    var out = a
    out.storage.withUnsafeMutableBufferPointer { o in
        b.storage.withUnsafeBufferPointer { q in
            for i in 0..<o.count { o[i] *= q[i] }
        }
    }
    return out
}

/// y[i, :] += v for every row i (a bias).
package func addRowVector(_ v: Matrix, to y: inout Matrix) {
    precondition(v.count == y.cols, "row vector of \(v.count) for \(y.cols) columns")
    let cols = y.cols
    v.storage.withUnsafeBufferPointer { pv in
        y.storage.withUnsafeMutableBufferPointer { py in
            for r in 0..<y.rows {
                for c in 0..<cols { py[r &* cols &+ c] += pv[c] }
            }
        }
    }
}

/// acc[0, c] += Σ_r g[r, c].
package func addColumnSums(of g: Matrix, to acc: inout Matrix) {
    precondition(acc.count == g.cols, "column-sum target of \(acc.count) for \(g.cols) columns")
    let cols = g.cols
    g.storage.withUnsafeBufferPointer { pg in
        acc.storage.withUnsafeMutableBufferPointer { pa in
            for r in 0..<g.rows {
                for c in 0..<cols { pa[c] += pg[r &* cols &+ c] }
            }
        }
    }
}

/// Y[:, j] *= v[j]: one factor per output feature (the spec's v ⊙_c Y).
package func scaleColumns(_ y: inout Matrix, by v: [Float]) {
    precondition(v.count == y.cols, "\(v.count) column factors for \(y.cols) columns")
    let cols = y.cols
    v.withUnsafeBufferPointer { pv in
        y.storage.withUnsafeMutableBufferPointer { py in
            for r in 0..<y.rows {
                for c in 0..<cols { py[r &* cols &+ c] *= pv[c] }
            }
        }
    }
}

/// W[i, :] *= v[i]: one factor per row.
package func scaleRows(_ w: inout Matrix, by v: [Float]) {
    precondition(v.count == w.rows, "\(v.count) row factors for \(w.rows) rows")
    let cols = w.cols
    w.storage.withUnsafeMutableBufferPointer { pw in
        for r in 0..<w.rows {
            let factor = v[r]
            for c in 0..<cols { pw[r &* cols &+ c] *= factor }
        }
    }
}

/// ‖W[i, :]‖₂ for every row i.
package func rowNorms(_ w: Matrix) -> [Float] {
    let cols = w.cols
    return w.storage.withUnsafeBufferPointer { pw in
        (0..<w.rows).map { r in
            var sum: Float = 0
            for c in 0..<cols { sum += pw[r &* cols &+ c] * pw[r &* cols &+ c] }
            return sum.squareRoot()
        }
    }
}

/// acc[c] += Σ_r a[r, c]·b[r, c], without forming a ⊙ b.
package func addColumnDots(_ a: Matrix, _ b: Matrix, to acc: inout Matrix) {
    precondition(a.shape == b.shape && acc.count == a.cols, "column dots of \(a.shape) and \(b.shape) into \(acc.count)")
    let cols = a.cols
    a.storage.withUnsafeBufferPointer { pa in
        b.storage.withUnsafeBufferPointer { pb in
            acc.storage.withUnsafeMutableBufferPointer { pacc in
                for r in 0..<a.rows {
                    for c in 0..<cols { pacc[c] += pa[r &* cols &+ c] * pb[r &* cols &+ c] }
                }
            }
        }
    }
}

/// Y ⊙_c v (+ a row vector b on every row), in one pass into a new matrix.
package func scaledColumnsPlusRow(_ y: Matrix, _ v: [Float], _ b: Matrix?) -> Matrix {
    precondition(v.count == y.cols && (b?.count ?? y.cols) == y.cols, "column factors of \(v.count) for \(y.cols) columns")
    var out = Matrix(rows: y.rows, cols: y.cols)
    let cols = y.cols
    let bias = b?.storage ?? [Float](repeating: 0, count: cols)
    // Unsafe views of v and the bias too: a checked array access in the inner loop keeps it from vectorising.
    y.storage.withUnsafeBufferPointer { py in
        out.storage.withUnsafeMutableBufferPointer { po in
            v.withUnsafeBufferPointer { pv in
                bias.withUnsafeBufferPointer { pb in
                    for r in 0..<y.rows {
                        for c in 0..<cols { po[r &* cols &+ c] = py[r &* cols &+ c] * pv[c] + pb[c] }
                    }
                }
            }
        }
    }
    return out
}
