import CKernels

/// Products with one side at most `maximumWidth` wide and a long other side: a rank-r adapter's
/// x·Aᵀ, G·B [N, r] and ∂zᵀ·x, Gᵀ·z [r or features, …], and those whose inner side is the rank:
/// W0 + s·B·A, s·z·Bᵀ, ∂z·A. `gemm` sends them to the CKernels narrow kernels, which read the long
/// operand once where OpenBLAS first packs it into a buffer (these shapes ran at 27–40 GFLOP/s
/// against 290 for the frozen layers' products; the short-inner ones at 5–20).
enum NarrowProduct {
    /// Widest narrow side routed (ranks 4, 8 and 16; at 64 OpenBLAS's blocking wins).
    static let maximumWidth = 16
    /// Elements the long operand needs before the product leaves OpenBLAS: below it (parity
    /// fixtures, AdaLoRA's r×r algebra) packing costs nothing worth saving.
    static let minimumLongOperand = 65_536
    /// Rows (or summed rows) per worker, so that a worker's share outweighs waking it.
    static let minimumChunk = 128

    /// Computes C ← alpha·op(A)·op(B) + beta·C when the shape is a narrow one and says whether it did.
    static func multiply(_ a: Matrix, _ opA: Op, _ b: Matrix, _ opB: Op, into c: inout Matrix,
                         m: Int, n: Int, k: Int, alpha: Float, beta: Float) -> Bool {
        if opA == .n, n <= maximumWidth, m * k >= minimumLongOperand {
            // Each row of C is n dot products of A's row with the rows of op(B)ᵀ (B itself when op(B) = Bᵀ).
            forEachRowChunk(of: &c, a, opB == .t ? b : b.transposed, minimumChunk: minimumChunk) { rows, pa, pb, pc in
                lorabench_rows_times_narrow(rows.lowerBound, rows.upperBound, n, k, alpha, pa, a.cols, pb, k, beta, pc, n)
            }
            return true
        }
        if opA == .n, k <= maximumWidth, m * n >= minimumLongOperand {
            // Each row of C combines the k rows of op(B) (a copy of [k, n] when B is stored [n, k]).
            forEachRowChunk(of: &c, a, opB == .n ? b : b.transposed, minimumChunk: max(1, minimumElementsPerWorker / n)) { rows, pa, pb, pc in
                lorabench_rows_times_short_inner(rows.lowerBound, rows.upperBound, n, k, alpha, pa, a.cols, pb, n, beta, pc, n)
            }
            return true
        }
        guard opA == .t, opB == .n else { return false }
        // A is stored [k, m] and B [k, n]: C = Σ_i outer(A[i, :], B[i, :]), summed over the long side.
        if m <= maximumWidth, k * n >= minimumLongOperand {
            sumOuterProducts(narrow: a, wide: b, k: k, alpha: alpha, beta: beta, into: &c, rowStride: n, columnStride: 1)
            return true
        }
        if n <= maximumWidth, k * m >= minimumLongOperand {
            // Cᵀ = op(B)ᵀ·A is the narrow form; its (j, col) element is C's (col, j).
            sumOuterProducts(narrow: b, wide: a, k: k, alpha: alpha, beta: beta, into: &c, rowStride: 1, columnStride: n)
            return true
        }
        return false
    }

    /// `kernel(rows, a, b, c)` over contiguous chunks of C's rows, concurrently, with the three
    /// matrices' storage; each chunk's rows are computed as on one thread.
    private static func forEachRowChunk(of c: inout Matrix, _ a: Matrix, _ b: Matrix, minimumChunk: Int,
                                        _ kernel: (Range<Int>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let rowCount = c.rows
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                c.storage.withUnsafeMutableBufferPointer { pc in
                    let (pa, pb, pc) = (pa.baseAddress!, pb.baseAddress!, pc.baseAddress!)
                    forEachChunk(rowCount, minimumChunk: minimumChunk) { rows in kernel(rows, pa, pb, pc) }
                }
            }
        }
    }

    /// gradW ← alphaW·Gᵀ·z + betaW·gradW [n, r] and gradZ ← alphaZ·G·W [N, r] in one pass over
    /// G [N, n] (W [n, r]) when both are shapes `multiply` routes to the narrow kernels, with the
    /// bits those two products give there; says whether it did. gradW has its final shape.
    static func outerAndRows(_ g: Matrix, _ z: Matrix, _ w: Matrix, gradW: inout Matrix, alphaW: Float, betaW: Float,
                             gradZ: inout Matrix, alphaZ: Float) -> Bool {
        let (rowCount, width, rank) = (g.rows, g.cols, z.cols)
        // `multiply` takes Gᵀ·z as narrow in z only when G is not narrow itself.
        guard (1...maximumWidth).contains(rank), width > maximumWidth, rowCount * width >= minimumLongOperand else { return false }
        gradZ.ensureShapeForOverwrite(rowCount, rank)
        let wt = w.transposed
        g.storage.withUnsafeBufferPointer { pg in
            z.storage.withUnsafeBufferPointer { pz in
                wt.storage.withUnsafeBufferPointer { pwt in
                    gradZ.storage.withUnsafeMutableBufferPointer { pgz in
                        let (pg, pz, pwt, pgz) = (pg.baseAddress!, pz.baseAddress!, pwt.baseAddress!, pgz.baseAddress!)
                        sumOverWorkers(k: rowCount, m: rank, n: width, alpha: alphaW, beta: betaW, into: &gradW,
                                       rowStride: 1, columnStride: rank) { rows, partial in
                            lorabench_narrow_outer_and_rows(rows.lowerBound, rows.upperBound, rank, width, pz, rank, pg, width,
                                                            partial, alphaZ, pwt, width, pgz, rank)
                        }
                    }
                }
            }
        }
        return true
    }

    /// C[j, col] (at j·rowStride + col·columnStride) ← alpha·Σ_i narrow[i, j]·wide[i, col] + beta·C.
    private static func sumOuterProducts(narrow: Matrix, wide: Matrix, k: Int, alpha: Float, beta: Float,
                                         into c: inout Matrix, rowStride: Int, columnStride: Int) {
        let (m, n) = (narrow.cols, wide.cols)
        narrow.storage.withUnsafeBufferPointer { pa in
            wide.storage.withUnsafeBufferPointer { pb in
                let (pa, pb) = (pa.baseAddress!, pb.baseAddress!)
                sumOverWorkers(k: k, m: m, n: n, alpha: alpha, beta: beta, into: &c, rowStride: rowStride, columnStride: columnStride) { rows, partial in
                    lorabench_accumulate_narrow_outer(rows.lowerBound, rows.upperBound, m, n, pa, m, pb, n, partial)
                }
            }
        }
    }

    /// C[j, col] (at j·rowStride + col·columnStride) ← alpha·Σ_w partial_w[j, col] + beta·C, where
    /// `accumulate(rows, partial_w)` adds a sum over its chunk of 0..<k into a zeroed dense [m, n]
    /// partial: the chunks go to the workers and the partials are added in worker order, so the
    /// same thread count gives the same bits.
    private static func sumOverWorkers(k: Int, m: Int, n: Int, alpha: Float, beta: Float, into c: inout Matrix,
                                       rowStride: Int, columnStride: Int,
                                       _ accumulate: (_ rows: Range<Int>, _ partial: UnsafeMutablePointer<Float>) -> Void) {
        let workers = workerCount(k, minimumChunk: minimumChunk)
        var partials = [Float](repeating: 0, count: workers * m * n)
        partials.withUnsafeMutableBufferPointer { pp in
            let pp = pp.baseAddress!
            forEachChunk(k, workers: workers) { worker, rows in accumulate(rows, pp + worker * m * n) }
        }
        c.storage.withUnsafeMutableBufferPointer { pc in
            lorabench_combine_partials(workers, partials, m, n, alpha, beta, pc.baseAddress!, rowStride, columnStride)
        }
    }
}
