@testable import LoRABenchKernels
import Testing

/// `smallProduct`, attention's per-head products, reads its operands as blocks inside larger
/// buffers: it must give OpenBLAS's numbers to float rounding for either op(A), any edge of its
/// register blocks, and the same bits for a row whichever block computes it.
struct SmallProductTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        var opA: Op, m: Int, n: Int, k: Int
        var testDescription: String { "\(opA) m=\(m) n=\(n) k=\(k)" }
    }

    /// MiniLM's [T, T] and [T, d] products, and sizes that leave partial row blocks, strips and vectors.
    static let shapes: [Shape] = [
        Shape(opA: .n, m: 64, n: 64, k: 32), Shape(opA: .n, m: 64, n: 32, k: 64), Shape(opA: .t, m: 64, n: 32, k: 64),
        Shape(opA: .n, m: 37, n: 37, k: 32), Shape(opA: .t, m: 37, n: 32, k: 37), Shape(opA: .n, m: 9, n: 127, k: 5),
        Shape(opA: .t, m: 3, n: 15, k: 1), Shape(opA: .n, m: 1, n: 1, k: 1), Shape(opA: .n, m: 130, n: 200, k: 64),
    ]

    /// Each operand sits inside a wider buffer (row stride = columns + 7), as a head inside [N, C].
    struct Operands {
        var a: [Float], b: [Float], lda: Int, ldb: Int, ldc: Int
    }

    static func operands(_ shape: Shape, seed: UInt64) -> Operands {
        var rng = SplitMix64(seed: seed)
        let aRows = shape.opA == .n ? shape.m : shape.k, aCols = shape.opA == .n ? shape.k : shape.m
        let lda = aCols + 7, ldb = shape.n + 7
        return Operands(a: Matrix.gaussian(aRows, lda, std: 1, using: &rng).storage,
                        b: Matrix.gaussian(shape.k, ldb, std: 1, using: &rng).storage, lda: lda, ldb: ldb, ldc: shape.n + 7)
    }

    static func product(_ shape: Shape, _ x: Operands, alpha: Float, rows: Range<Int>? = nil, openBLAS: Bool = false) -> [Float] {
        var c = [Float](repeating: .nan, count: shape.m * x.ldc)
        let rows = rows ?? 0..<shape.m
        x.a.withUnsafeBufferPointer { pa in
            x.b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    let firstA = shape.opA == .n ? rows.lowerBound * x.lda : rows.lowerBound
                    let (a, b, out) = (pa.baseAddress! + firstA, pb.baseAddress!, pc.baseAddress! + rows.lowerBound * x.ldc)
                    if openBLAS {
                        gemm(shape.opA, .n, m: rows.count, n: shape.n, k: shape.k, alpha: alpha, a, lda: x.lda, b, ldb: x.ldb,
                             beta: 0, out, ldc: x.ldc)
                    } else {
                        smallProduct(shape.opA, m: rows.count, n: shape.n, k: shape.k, alpha: alpha, a, lda: x.lda, b, ldb: x.ldb,
                                     out, ldc: x.ldc)
                    }
                }
            }
        }
        return c
    }

    @Test(arguments: shapes)
    func theProductsGiveOpenBLASsNumbers(shape: Shape) {
        let x = Self.operands(shape, seed: UInt64(shape.m * 31 + shape.n * 7 + shape.k))
        for alpha: Float in [1, 0.125] {
            let actual = Self.product(shape, x, alpha: alpha), expected = Self.product(shape, x, alpha: alpha, openBLAS: true)
            var worst: Float = 0
            for i in 0..<shape.m {
                for j in 0..<shape.n {
                    // The rounding scale: Σ_p |alpha·op(A)[i, p]·B[p, j]|.
                    var scale: Float = 0
                    for p in 0..<shape.k {
                        let a = shape.opA == .n ? x.a[i * x.lda + p] : x.a[p * x.lda + i]
                        scale += abs(alpha * a * x.b[p * x.ldb + j])
                    }
                    worst = max(worst, abs(actual[i * x.ldc + j] - expected[i * x.ldc + j]) / max(scale, .leastNormalMagnitude))
                }
                for j in shape.n..<x.ldc { #expect(actual[i * x.ldc + j].isNaN, "column \(j) of row \(i) lies outside C and was written") }
            }
            #expect(worst < 4e-6, "alpha \(alpha): worst error \(worst) of the magnitude summed")
        }
    }

    @Test(arguments: shapes)
    func aRowHasTheSameBitsInWhicheverBlockItFalls(shape: Shape) {
        let x = Self.operands(shape, seed: 5)
        let whole = Self.product(shape, x, alpha: 0.5)
        for i in 0..<shape.m {
            let alone = Self.product(shape, x, alpha: 0.5, rows: i..<(i + 1))
            let row = i * x.ldc..<(i * x.ldc + shape.n)
            #expect(alone[row].map(\.bitPattern) == whole[row].map(\.bitPattern), "row \(i)")
        }
    }

    @Test func transposeReadsAStridedBlock() {
        let source: [Float] = (0..<(3 * 10)).map(Float.init)  // [3, 10], a [3, 4] block at column 2
        var destination = [Float](repeating: 0, count: 12)
        source.withUnsafeBufferPointer { s in
            destination.withUnsafeMutableBufferPointer { d in transpose(rows: 3, cols: 4, s.baseAddress! + 2, stride: 10, into: d.baseAddress!) }
        }
        #expect(destination == [2, 12, 22, 3, 13, 23, 4, 14, 24, 5, 15, 25])
    }
}
