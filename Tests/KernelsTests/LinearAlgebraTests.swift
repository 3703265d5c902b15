import Testing
@testable import LoRABenchKernels

/// The kernels every floor above builds on: sgemm with transpose flags, LAPACK's SVD and QR, the
/// pseudo-inverse, and the matrix helpers, each against a naive reference.
@Suite struct LinearAlgebraTests {
    static func naiveProduct(_ a: Matrix, _ b: Matrix) -> Matrix {
        var out = Matrix(rows: a.rows, cols: b.cols)
        for i in 0..<a.rows {
            for j in 0..<b.cols {
                var sum = 0.0
                for k in 0..<a.cols { sum += Double(a[i, k]) * Double(b[k, j]) }
                out[i, j] = Float(sum)
            }
        }
        return out
    }

    static func maxDifference(_ a: Matrix, _ b: Matrix) -> Float {
        zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func gemmHonoursTransposeFlagsAndAccumulates() {
        var rng = SplitMix64(seed: 1)
        let a = Matrix.gaussian(5, 7, std: 1, using: &rng), b = Matrix.gaussian(4, 7, std: 1, using: &rng)
        let want = Self.naiveProduct(a, b.transposed)
        #expect(Self.maxDifference(matmul(a, .n, b, .t), want) < 1e-5)
        #expect(Self.maxDifference(matmul(a.transposed, .t, b.transposed, .n), want) < 1e-5)
        var accumulated = want
        gemm(a, .n, b, .t, into: &accumulated, alpha: 2, beta: 1)
        var tripled = want
        scale(&tripled, by: 3)
        #expect(Self.maxDifference(accumulated, tripled) < 1e-4)
    }

    @Test(arguments: [(6, 4), (4, 6)])
    func svdAndQRReconstructTheirInput(_ shape: (rows: Int, cols: Int)) throws {
        var rng = SplitMix64(seed: 2)
        let m = Matrix.gaussian(shape.rows, shape.cols, std: 1, using: &rng)
        let k = min(shape.rows, shape.cols)
        let decomposition = try svd(m)
        var us = decomposition.u
        scaleColumns(&us, by: decomposition.singularValues)
        #expect(Self.maxDifference(matmul(us, .n, decomposition.vt, .n), m) < 1e-5)
        #expect(decomposition.singularValues == decomposition.singularValues.sorted(by: >))

        let (q, r) = try qr(m)
        #expect(q.shape == [shape.rows, k] && r.shape == [k, shape.cols])
        #expect(Self.maxDifference(matmul(q, .n, r, .n), m) < 1e-5)
        #expect(Self.maxDifference(matmul(q, .t, q, .n), .identity(k)) < 1e-5)
        for i in 0..<k { for j in 0..<min(i, shape.cols) { #expect(r[i, j] == 0, "R[\(i), \(j)] below the diagonal") } }
    }

    @Test func pseudoInverseOfARankDeficientMatrixSatisfiesPenroseConditions() throws {
        var rng = SplitMix64(seed: 3)
        let m = matmul(Matrix.gaussian(5, 2, std: 1, using: &rng), .n, Matrix.gaussian(2, 4, std: 1, using: &rng), .n)
        let inverse = try pseudoInverse(m)
        #expect(inverse.shape == [4, 5])
        #expect(Self.maxDifference(matmul(matmul(m, .n, inverse, .n), .n, m, .n), m) < 1e-4)
        #expect(Self.maxDifference(matmul(matmul(inverse, .n, m, .n), .n, inverse, .n), inverse) < 1e-4)
    }

    @Test func lapackRefusesNonFiniteInputNamingTheRoutine() {
        var m = Matrix.identity(3)
        m[1, 1] = .nan
        #expect { try svd(m) } throws: { "\($0)".contains("gesdd") }
        #expect { try qr(m) } throws: { "\($0)".contains("geqrf") }
    }

    @Test func stackingAndJoiningKeepEveryEntryInPlace() {
        let top = Matrix(rows: 1, cols: 2, storage: [1, 2]), bottom = Matrix(rows: 2, cols: 2, storage: [3, 4, 5, 6])
        #expect(top.stackingRows(bottom).storage == [1, 2, 3, 4, 5, 6])
        let left = Matrix(rows: 2, cols: 1, storage: [1, 2]), right = Matrix(rows: 2, cols: 2, storage: [3, 4, 5, 6])
        #expect(left.joiningColumns(right, scaledBy: -1).storage == [1, -3, -4, 2, -5, -6])
    }
}
