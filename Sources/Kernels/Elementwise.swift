import CKernels

/// Element- and row-wise helpers that BLAS has no single call for. Each is one linear pass,
/// split over the BLAS threads for large matrices (`forEachRowChunk`, `forEachColumnChunk`):
/// between GEMMs a single-threaded pass leaves the other cores idle. Release builds keep Swift's
/// checks, so the inner loops index with wrapping arithmetic (the preconditions have already
/// bounded every index): an overflow check per element would keep them from vectorising.

/// Elements a worker gets at least: below it, waking a second thread costs more than it saves.
let minimumElementsPerWorker = 32_768

/// `body` over contiguous row ranges of a [rows, cols] matrix, concurrently when it is large.
/// Each element is computed as on one thread, so the split never changes a result.
func forEachRowChunk(rows: Int, cols: Int, _ body: (_ rows: Range<Int>) -> Void) {
    forEachChunk(rows, minimumChunk: max(1, minimumElementsPerWorker / max(cols, 1)), body)
}

/// `body` over contiguous column ranges of a [rows, cols] matrix, concurrently when it is large:
/// for sums down the columns, which each worker then adds in the same row order as one thread.
func forEachColumnChunk(rows: Int, cols: Int, _ body: (_ columns: Range<Int>) -> Void) {
    forEachChunk(cols, minimumChunk: max(1, minimumElementsPerWorker / max(rows, 1)), body)
}

/// a ⊙ b.
package func hadamard(_ a: Matrix, _ b: Matrix) -> Matrix {
    precondition(a.count == b.count, "hadamard sizes differ: \(a.shape) vs \(b.shape)")
    var out = a
    guard a.count > 0 else { return out }
    out.storage.withUnsafeMutableBufferPointer { o in
        b.storage.withUnsafeBufferPointer { q in
            let (o, q) = (o.baseAddress!, q.baseAddress!)
            forEachRowChunk(rows: a.count, cols: 1) { range in
                for i in range { o[i] *= q[i] }
            }
        }
    }
    return out
}

/// y[i, :] += v for every row i (a bias).
package func addRowVector(_ v: Matrix, to y: inout Matrix) {
    precondition(v.count == y.cols, "row vector of \(v.count) for \(y.cols) columns")
    guard y.count > 0 else { return }
    let cols = y.cols
    v.storage.withUnsafeBufferPointer { pv in
        y.storage.withUnsafeMutableBufferPointer { py in
            let (pv, py) = (pv.baseAddress!, py.baseAddress!)
            forEachRowChunk(rows: y.rows, cols: cols) { rows in
                for r in rows {
                    for c in 0..<cols { py[r &* cols &+ c] += pv[c] }
                }
            }
        }
    }
}

/// acc[0, c] += Σ_r g[r, c].
package func addColumnSums(of g: Matrix, to acc: inout Matrix) {
    precondition(acc.count == g.cols, "column-sum target of \(acc.count) for \(g.cols) columns")
    guard g.count > 0 else { return }
    let cols = g.cols
    g.storage.withUnsafeBufferPointer { pg in
        acc.storage.withUnsafeMutableBufferPointer { pa in
            let (pg, pa) = (pg.baseAddress!, pa.baseAddress!)
            forEachColumnChunk(rows: g.rows, cols: cols) { columns in
                lorabench_add_column_sums(g.rows, cols, columns.lowerBound, columns.upperBound, pg, pa)
            }
        }
    }
}

/// Y[:, j] *= v[j]: one factor per output feature (the spec's v ⊙_c Y).
package func scaleColumns(_ y: inout Matrix, by v: [Float]) {
    precondition(v.count == y.cols, "\(v.count) column factors for \(y.cols) columns")
    guard y.count > 0 else { return }
    let cols = y.cols
    v.withUnsafeBufferPointer { pv in
        y.storage.withUnsafeMutableBufferPointer { py in
            let (pv, py) = (pv.baseAddress!, py.baseAddress!)
            forEachRowChunk(rows: y.rows, cols: cols) { rows in
                for r in rows {
                    for c in 0..<cols { py[r &* cols &+ c] *= pv[c] }
                }
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
    addColumnDots(a, b, minus: nil, to: &acc)
}

/// acc[c] += Σ_r a[r, c]·(b[r, c] − o[c]), without forming either matrix: DoRA reads x·Vᵀ back
/// from its output b = g ⊙_c x·Vᵀ + o.
package func addColumnDots(_ a: Matrix, _ b: Matrix, minus offset: Matrix?, to acc: inout Matrix) {
    precondition(a.shape == b.shape && acc.count == a.cols && (offset?.count ?? a.cols) == a.cols,
                  "column dots of \(a.shape) and \(b.shape) into \(acc.count)")
    guard a.count > 0 else { return }
    let (rows, cols) = (a.rows, a.cols)
    a.storage.withUnsafeBufferPointer { pa in
        b.storage.withUnsafeBufferPointer { pb in
            acc.storage.withUnsafeMutableBufferPointer { pacc in
                let (pa, pb, pacc) = (pa.baseAddress!, pb.baseAddress!, pacc.baseAddress!)
                guard let offset else {
                    forEachColumnChunk(rows: rows, cols: cols) { columns in
                        lorabench_add_column_dots(rows, cols, columns.lowerBound, columns.upperBound, pa, pb, pacc)
                    }
                    return
                }
                offset.storage.withUnsafeBufferPointer { po in
                    let po = po.baseAddress!
                    forEachColumnChunk(rows: rows, cols: cols) { columns in
                        lorabench_add_column_dots_offset(rows, cols, columns.lowerBound, columns.upperBound, pa, pb, po, pacc)
                    }
                }
            }
        }
    }
}

/// Y ⊙_c v (+ a row vector b on every row), in one pass into a new matrix.
package func scaledColumnsPlusRow(_ y: Matrix, _ v: [Float], _ b: Matrix?) -> Matrix {
    precondition(v.count == y.cols && (b?.count ?? y.cols) == y.cols, "column factors of \(v.count) for \(y.cols) columns")
    var out = Matrix(uninitializedRows: y.rows, cols: y.cols)
    guard y.count > 0 else { return out }
    let cols = y.cols
    let bias = b?.storage ?? [Float](repeating: 0, count: cols)
    // Raw pointers to v and the bias too: a checked array access in the inner loop keeps it from vectorising.
    y.storage.withUnsafeBufferPointer { py in
        out.storage.withUnsafeMutableBufferPointer { po in
            v.withUnsafeBufferPointer { pv in
                bias.withUnsafeBufferPointer { pb in
                    let (py, po, pv, pb) = (py.baseAddress!, po.baseAddress!, pv.baseAddress!, pb.baseAddress!)
                    forEachRowChunk(rows: y.rows, cols: cols) { rows in
                        for r in rows {
                            for c in 0..<cols { po[r &* cols &+ c] = py[r &* cols &+ c] * pv[c] + pb[c] }
                        }
                    }
                }
            }
        }
    }
    return out
}
