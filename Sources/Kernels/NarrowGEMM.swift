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

    /// C[j, col] (at j·rowStride + col·columnStride) ← alpha·Σ_i narrow[i, j]·wide[i, col] + beta·C,
    /// with i split over the workers, each into its own partial sum, added in worker order: the
    /// same thread count gives the same bits.
    private static func sumOuterProducts(narrow: Matrix, wide: Matrix, k: Int, alpha: Float, beta: Float,
                                         into c: inout Matrix, rowStride: Int, columnStride: Int) {
        let (m, n) = (narrow.cols, wide.cols)
        let workers = workerCount(k, minimumChunk: minimumChunk)
        var partials = [Float](repeating: 0, count: workers * m * n)
        narrow.storage.withUnsafeBufferPointer { pa in
            wide.storage.withUnsafeBufferPointer { pb in
                partials.withUnsafeMutableBufferPointer { pp in
                    let (pa, pb, pp) = (pa.baseAddress!, pb.baseAddress!, pp.baseAddress!)
                    forEachChunk(k, workers: workers) { worker, rows in
                        lorabench_accumulate_narrow_outer(rows.lowerBound, rows.upperBound, m, n, pa, m, pb, n, pp + worker * m * n)
                    }
                }
            }
        }
        c.storage.withUnsafeMutableBufferPointer { pc in
            lorabench_combine_partials(workers, partials, m, n, alpha, beta, pc.baseAddress!, rowStride, columnStride)
        }
    }
}
