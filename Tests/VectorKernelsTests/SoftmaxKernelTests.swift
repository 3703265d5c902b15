@testable import LoRABenchKernels
import Foundation
import Testing

/// Attention's softmax kernels (whichever vector width this CPU dispatches to) against the Swift
/// SIMD8 loops they replaced, bit for bit: moving them to C must not move a single number.
@Suite struct SoftmaxKernelTests {
    /// The replaced forward: row-wise softmax of S + bias in place over a [rows, rows] block.
    static func referenceMaskedSoftmaxRows(_ scores: UnsafeMutablePointer<Float>, rows: Int, keyBias: UnsafePointer<Float>) {
        let vectorized = rows - rows % 8
        for i in 0..<rows {
            let row = scores + i * rows
            var maxima = SIMD8<Float>(repeating: -.infinity)
            for j in stride(from: 0, to: vectorized, by: 8) {
                let s = loadLanes(row + j, 8) + loadLanes(keyBias + j, 8)
                storeLanes(s, row + j, 8)
                maxima = maxima.replacing(with: s, where: s .> maxima)
            }
            var maximum = -Float.infinity
            for lane in 0..<8 where maxima[lane] > maximum { maximum = maxima[lane] }
            for j in vectorized..<rows {
                row[j] += keyBias[j]
                if row[j] > maximum { maximum = row[j] }
            }
            var sums = SIMD8<Float>()
            for j in stride(from: 0, to: vectorized, by: 8) {
                let e = vectorExp(loadLanes(row + j, 8) - maximum)
                storeLanes(e, row + j, 8)
                sums += e
            }
            var sum = sums.sum()
            for j in vectorized..<rows {
                row[j] = expf(row[j] - maximum)
                sum += row[j]
            }
            let inverse = 1 / sum
            for j in 0..<rows { row[j] *= inverse }
        }
    }

    /// The replaced backward: ∂S_ij = P_ij·(∂P_ij − Σ_k P_ik ∂P_ik) in place.
    static func referenceSoftmaxBackwardRows(_ grad: UnsafeMutablePointer<Float>, probabilities: UnsafePointer<Float>, rows: Int) {
        for i in 0..<rows {
            let g = grad + i * rows, p = probabilities + i * rows
            let weighted = laneSum(rows) { p[$0] * g[$0] }
            for j in 0..<rows { g[j] = p[j] * (g[j] - weighted) }
        }
    }

    /// Scores on the scale of Q·Kᵀ/√d, a key bias with padded keys (torch.finfo.min) when `padded`
    /// of them, and a row whose keys are all padded when every one is.
    static func block(rows: Int, padded: Int, seed: UInt64) -> (scores: [Float], keyBias: [Float]) {
        var rng = SplitMix64(seed: seed)
        let scores = (0..<(rows * rows)).map { _ in rng.nextGaussian() * 3 }
        let keyBias = (0..<rows).map { $0 >= rows - padded ? -Float.greatestFiniteMagnitude : 0 }
        return (scores, keyBias)
    }

    @Test(arguments: [(1, 0), (5, 2), (8, 0), (17, 3), (37, 37), (64, 0), (64, 21)])
    func theKernelsGiveTheBitsOfTheSwiftLoops(rows: Int, padded: Int) {
        let (scores, keyBias) = Self.block(rows: rows, padded: padded, seed: UInt64(rows * 100 + padded))
        var expected = scores, actual = scores
        keyBias.withUnsafeBufferPointer { bias in
            expected.withUnsafeMutableBufferPointer { Self.referenceMaskedSoftmaxRows($0.baseAddress!, rows: rows, keyBias: bias.baseAddress!) }
            actual.withUnsafeMutableBufferPointer { maskedSoftmaxRows($0.baseAddress!, rows: rows, keyBias: bias.baseAddress!) }
        }
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern), "forward")
        #expect(actual.allSatisfy { $0.isFinite })

        var rng = SplitMix64(seed: 7)
        let upstream = (0..<(rows * rows)).map { _ in rng.nextGaussian() }
        var expectedGrad = upstream, actualGrad = upstream
        actual.withUnsafeBufferPointer { p in
            expectedGrad.withUnsafeMutableBufferPointer { Self.referenceSoftmaxBackwardRows($0.baseAddress!, probabilities: p.baseAddress!, rows: rows) }
            actualGrad.withUnsafeMutableBufferPointer { softmaxBackwardRows($0.baseAddress!, probabilities: p.baseAddress!, rows: rows) }
        }
        #expect(actualGrad.map(\.bitPattern) == expectedGrad.map(\.bitPattern), "backward")
    }
}
