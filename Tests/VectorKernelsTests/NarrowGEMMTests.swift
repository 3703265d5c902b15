@testable import LoRABenchKernels
import Foundation
import Testing

/// `gemm` on a rank-r adapter's shapes goes to the CKernels narrow products instead of OpenBLAS:
/// they must give OpenBLAS's numbers to float rounding, whatever the edges, the scalars and
/// the thread count, and the same bits every time for one thread count.
@Suite(.serialized) struct NarrowGEMMTests {
    /// One product: op(A) [m, k], op(B) [k, n], as `gemm` takes them.
    struct Shape: CustomTestStringConvertible, Sendable {
        var opA: Op, opB: Op, m: Int, n: Int, k: Int
        var testDescription: String { "\(opA)\(opB) m=\(m) n=\(n) k=\(k)" }
        var aShape: (Int, Int) { opA == .n ? (m, k) : (k, m) }
        var bShape: (Int, Int) { opB == .n ? (k, n) : (n, k) }
    }

    /// x·Aᵀ and G·B (n narrow), ∂zᵀ·x (m narrow), Gᵀ·z (n narrow, A transposed), and B·A, z·Bᵀ
    /// (k narrow), at ranks 1–16 and lengths that leave partial vectors, blocks and worker chunks.
    static let shapes: [Shape] = [
        Shape(opA: .n, opB: .t, m: 600, n: 8, k: 384), Shape(opA: .n, opB: .t, m: 513, n: 3, k: 385),
        Shape(opA: .n, opB: .t, m: 300, n: 16, k: 1_536), Shape(opA: .n, opB: .t, m: 4_097, n: 1, k: 17),
        Shape(opA: .n, opB: .n, m: 600, n: 8, k: 384), Shape(opA: .n, opB: .n, m: 257, n: 12, k: 1_000),
        Shape(opA: .n, opB: .n, m: 129, n: 4, k: 1_536), Shape(opA: .n, opB: .n, m: 1_001, n: 7, k: 77),
        Shape(opA: .t, opB: .n, m: 8, n: 384, k: 600), Shape(opA: .t, opB: .n, m: 5, n: 97, k: 1_025),
        Shape(opA: .t, opB: .n, m: 16, n: 1_536, k: 65), Shape(opA: .t, opB: .n, m: 1, n: 33, k: 2_049),
        Shape(opA: .t, opB: .n, m: 384, n: 8, k: 600), Shape(opA: .t, opB: .n, m: 1_536, n: 13, k: 70),
        Shape(opA: .t, opB: .n, m: 100, n: 4, k: 1_111),
        Shape(opA: .n, opB: .n, m: 384, n: 384, k: 8), Shape(opA: .n, opB: .n, m: 300, n: 250, k: 1),
        Shape(opA: .n, opB: .n, m: 1_000, n: 77, k: 5), Shape(opA: .n, opB: .t, m: 300, n: 400, k: 8),
        Shape(opA: .n, opB: .t, m: 257, n: 300, k: 16),
    ]

    static func operands(_ shape: Shape, seed: UInt64) -> (a: Matrix, b: Matrix, c: Matrix) {
        var rng = SplitMix64(seed: seed)
        return (Matrix.gaussian(shape.aShape.0, shape.aShape.1, std: 1, using: &rng),
                Matrix.gaussian(shape.bShape.0, shape.bShape.1, std: 1, using: &rng),
                Matrix.gaussian(shape.m, shape.n, std: 1, using: &rng))
    }

    /// OpenBLAS's product (the raw-pointer `gemm`, which is never routed) and Σ_p |op(A)[i, p]·op(B)[p, j]|
    /// + |beta·C[i, j]| per element, the scale of its rounding.
    static func reference(_ shape: Shape, _ a: Matrix, _ b: Matrix, _ c: Matrix, alpha: Float, beta: Float) -> (product: Matrix, scale: [Float]) {
        var product = c
        a.storage.withUnsafeBufferPointer { pa in
            b.storage.withUnsafeBufferPointer { pb in
                product.storage.withUnsafeMutableBufferPointer { pc in
                    gemm(shape.opA, shape.opB, m: shape.m, n: shape.n, k: shape.k, alpha: alpha, pa.baseAddress!, lda: a.cols,
                         pb.baseAddress!, ldb: b.cols, beta: beta, pc.baseAddress!, ldc: shape.n)
                }
            }
        }
        let element = { (matrix: Matrix, op: Op, row: Int, col: Int) -> Float in
            op == .n ? matrix.storage[row * matrix.cols + col] : matrix.storage[col * matrix.cols + row]
        }
        var scale = [Float](repeating: 0, count: shape.m * shape.n)
        for i in 0..<shape.m {
            for j in 0..<shape.n {
                var sum = abs(beta * c.storage[i * shape.n + j])
                for p in 0..<shape.k { sum += abs(alpha * element(a, shape.opA, i, p) * element(b, shape.opB, p, j)) }
                scale[i * shape.n + j] = sum
            }
        }
        return (product, scale)
    }

    @Test(arguments: shapes)
    func theNarrowProductsGiveOpenBLASsNumbers(shape: Shape) {
        let (a, b, c) = Self.operands(shape, seed: UInt64(shape.m * 31 + shape.n * 7 + shape.k))
        let longOperand = shape.opA == .n ? (shape.k <= NarrowProduct.maximumWidth ? shape.m * shape.n : shape.m * shape.k)
                                          : shape.k * max(shape.m, shape.n)
        #expect(longOperand >= NarrowProduct.minimumLongOperand,
                "the shape must be one that leaves OpenBLAS")
        for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
            let expected = Self.reference(shape, a, b, c, alpha: alpha, beta: beta)
            for threads in [1, 2] {
                BLASThreads.with(threads) {
                    var actual = c
                    var routed = c
                    #expect(NarrowProduct.multiply(a, shape.opA, b, shape.opB, into: &routed, m: shape.m, n: shape.n, k: shape.k,
                                                   alpha: alpha, beta: beta))
                    gemm(a, shape.opA, b, shape.opB, into: &actual, alpha: alpha, beta: beta)
                    #expect(actual.storage.map(\.bitPattern) == routed.storage.map(\.bitPattern), "gemm takes the narrow path")
                    let worst = zip(zip(actual.storage, expected.product.storage), expected.scale)
                        .map { pair, scale in abs(pair.0 - pair.1) / max(scale, .leastNormalMagnitude) }.max() ?? 0
                    #expect(worst < 4e-6, "alpha \(alpha), beta \(beta), \(threads) threads: worst error \(worst) of the magnitude summed")
                }
            }
        }
    }

    /// G [N, out], z [N, r] and W [out, r] of a layer's backward: query-sized, FFN-sized, ranks 1–16
    /// with partial vectors and row blocks; the last two stay with OpenBLAS (rank 64, and a short G).
    static let upProjections: [(rows: Int, width: Int, rank: Int)] = [
        (2_048, 384, 8), (600, 1_536, 16), (1_025, 97, 3), (257, 300, 1), (700, 200, 64), (30, 40, 8),
    ]

    /// One pass over G for ∂W = α·Gᵀ·z + β·∂W and ∂z = α_z·G·W gives the bits of the two `gemm`
    /// calls, on either thread count.
    @Test(arguments: upProjections)
    func upProjectionGradientsAreTheTwoProductsBitForBit(shape: (rows: Int, width: Int, rank: Int)) {
        var rng = SplitMix64(seed: UInt64(shape.rows + shape.width + shape.rank))
        let g = Matrix.gaussian(shape.rows, shape.width, std: 1, using: &rng)
        let z = Matrix.gaussian(shape.rows, shape.rank, std: 1, using: &rng)
        let w = Matrix.gaussian(shape.width, shape.rank, std: 1, using: &rng)
        let initial = Matrix.gaussian(shape.width, shape.rank, std: 1, using: &rng)
        for (alpha, beta, projectedAlpha) in [(Float(1), Float(0), Float(1)), (0.5, 1, 2), (-2, 0.25, 0.125)] {
            for threads in [1, 2] {
                BLASThreads.with(threads) {
                    var expectedWeight = initial, expectedProjected = Matrix.zeros(0, 0)
                    gemm(g, .t, z, .n, into: &expectedWeight, alpha: alpha, beta: beta)
                    gemm(g, .n, w, .n, into: &expectedProjected, alpha: projectedAlpha)
                    var weightGradient = beta == 0 ? Matrix(rows: 1, cols: 1, repeating: .nan) : initial
                    var projectedGradient = Matrix(rows: shape.rows, cols: shape.rank, repeating: .nan)
                    upProjectionGradients(g, projected: z, weight: w, into: &weightGradient, alpha: alpha, beta: beta,
                                          projectedGradient: &projectedGradient, projectedAlpha: projectedAlpha)
                    let context = "alpha \(alpha), beta \(beta), \(threads) threads"
                    #expect(weightGradient.shape == expectedWeight.shape, "\(context)")
                    #expect(Self.differingBits(weightGradient, expectedWeight) == 0, "elements of ∂W, \(context)")
                    #expect(Self.differingBits(projectedGradient, expectedProjected) == 0, "elements of ∂z, \(context)")
                }
            }
        }
        var unused = Matrix.zeros(shape.width, shape.rank), unusedProjected = Matrix.zeros(0, 0)
        let fused = NarrowProduct.outerAndRows(g, z, w, gradW: &unused, alphaW: 1, betaW: 0, gradZ: &unusedProjected, alphaZ: 1)
        #expect(fused == (shape.rank <= NarrowProduct.maximumWidth && shape.rows * shape.width >= NarrowProduct.minimumLongOperand),
                "which shapes take the one pass")
    }

    static func differingBits(_ a: Matrix, _ b: Matrix) -> Int {
        zip(a.storage, b.storage).filter { $0.bitPattern != $1.bitPattern }.count + abs(a.count - b.count)
    }

    @Test func betaZeroOverwritesWhatever() {
        let shape = Shape(opA: .t, opB: .n, m: 8, n: 384, k: 600)
        let (a, b, _) = Self.operands(shape, seed: 3)
        var c = Matrix(rows: shape.m, cols: shape.n, repeating: .nan)
        gemm(a, .t, b, .n, into: &c)
        #expect(c.isFinite)
        var rng = SplitMix64(seed: 4)
        var d = Matrix(rows: 600, cols: 8, repeating: .nan)
        gemm(b, .n, Matrix.gaussian(8, 384, std: 1, using: &rng), .t, into: &d)
        #expect(d.isFinite)
    }

    @Test func oneThreadCountGivesTheSameBitsEveryTime() {
        for threads in [1, 2] {
            BLASThreads.with(threads) {
                for shape in Self.shapes {
                    let (a, b, _) = Self.operands(shape, seed: 11)
                    let first = matmul(a, shape.opA, b, shape.opB)
                    let second = matmul(a, shape.opA, b, shape.opB)
                    #expect(first.storage.map(\.bitPattern) == second.storage.map(\.bitPattern), "\(shape.testDescription)")
                }
            }
        }
    }

    @Test func wideAndShortProductsStayWithOpenBLAS() {
        var c = Matrix.zeros(0, 0)
        let square = Matrix.zeros(64, 64), tall = Matrix.zeros(600, 64), thin = Matrix.zeros(600, 8)
        #expect(!NarrowProduct.multiply(square, .n, square, .n, into: &c, m: 64, n: 64, k: 64, alpha: 1, beta: 0))
        #expect(!NarrowProduct.multiply(tall, .n, square, .n, into: &c, m: 600, n: 64, k: 64, alpha: 1, beta: 0), "rank 64 is OpenBLAS's")
        #expect(!NarrowProduct.multiply(thin, .t, thin, .t, into: &c, m: 8, n: 600, k: 600, alpha: 1, beta: 0))
        #expect(!NarrowProduct.multiply(Matrix.zeros(8, 8), .n, Matrix.zeros(8, 8), .t, into: &c, m: 8, n: 8, k: 8, alpha: 1, beta: 0))
    }

    /// The kernels run at the widest level the CPU's flags allow: dispatching on the CPU's model
    /// (`target_clones("arch=skylake-avx512")`) once left a Sapphire Rapids on the baseline loop.
    @Test func theKernelsRunAtTheWidestLevelTheCPUHas() {
        let flags = BLASCore.cpuFlags()
        guard !flags.isEmpty else { return }  // not x86 Linux: no flags line, and only the baseline build
        let v3: Set<String> = ["avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"]
        let v4: Set<String> = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
        let expected = v3.isSubset(of: flags) ? (v4.isSubset(of: flags) ? "x86-64-v4" : "x86-64-v3") : "baseline"
        #expect(VectorKernels.level == expected)
    }
}
