import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchVariants
@testable import LoRABenchAnalysis
import LoRABenchTestSupport
import Testing

extension AnalysisTests {
    /// ΔW statistics (spectrum, ranks, LoRA §7.3 amplification) on updates of known structure.
    @Suite struct DeltaWeightSpectrumTests {
        /// Σ_k σ_k u_k v_kᵀ with orthonormal u (QR of a Gaussian [out, 3]) and v ([in, 3]).
        static func update(singularValues sigma: [Float], out: Int, in inFeatures: Int, seed: UInt64) throws -> Matrix {
            var rng = SplitMix64(seed: seed)
            let u = try qr(.gaussian(out, sigma.count, std: 1, using: &rng)).q
            let v = try qr(.gaussian(inFeatures, sigma.count, std: 1, using: &rng)).q
            var scaledU = u
            for i in 0..<out { for k in sigma.indices { scaledU[i, k] *= sigma[k] } }
            return matmul(scaledU, .n, v, .t)
        }

        @Test func knownSpectrumGivesItsRanks() throws {
            let sigma: [Float] = [4, 2, 1]
            var rng = SplitMix64(seed: 7)
            let stats = try DeltaWeightStatistics.compute(delta: Self.update(singularValues: sigma, out: 20, in: 15, seed: 6),
                                                          base: .gaussian(20, 15, std: 1, using: &rng), rank: 3)
            #expect(stats.singularValues.count == 15)
            #expect(relativeError(Array(stats.singularValues.prefix(3)), sigma) < 1e-5)
            #expect(stats.singularValues.dropFirst(3).allSatisfy { $0 < 1e-5 })
            #expect(abs(stats.frobeniusNorm - 21.0.squareRoot()) < 1e-5)
            #expect(abs(stats.stableRank - 21.0 / 16) < 1e-5)
            let p = [4.0, 2, 1].map { $0 / 7 }
            let expected = exp(-p.reduce(0) { $0 + $1 * log($1) })
            #expect(abs(stats.effectiveRank - expected) < 1e-3, "\(stats.effectiveRank) vs \(expected)")
        }

        /// W0 = diag(3, 2, 1, 0.5, 0.25) and ΔW = 0.5 · e₁e₁ᵀ: ΔW's top direction is W0's strongest,
        /// so U₁ᵀ W0 V₁ = W0₁₁ = 3 and the amplification is 0.5 / 3.
        @Test func amplificationOnADiagonalBase() throws {
            let diagonal: [Float] = [3, 2, 1, 0.5, 0.25]
            var base = Matrix.zeros(6, 5), delta = Matrix.zeros(6, 5)
            for (i, d) in diagonal.enumerated() { base[i, i] = d }
            delta[0, 0] = 0.5
            let stats = try DeltaWeightStatistics.compute(delta: delta, base: base, rank: 1)
            #expect(abs(stats.projectionOnDelta - 3) < 1e-5)
            #expect(abs(stats.projectionOnBase - 3) < 1e-5)
            #expect(abs(stats.amplification - 0.5 / 3) < 1e-6)
            let baseNorm = diagonal.reduce(0) { $0 + Double($1 * $1) }.squareRoot()
            #expect(abs(stats.relativeNorm - 0.5 / baseNorm) < 1e-6)
            #expect(abs(stats.stableRank - 1) < 1e-6 && abs(stats.effectiveRank - 1) < 1e-6)
        }

        @Test func baseFrameBoundsEveryProjectionAndRandomFrameIsSeeded() throws {
            var rng = SplitMix64(seed: 8)
            let base = Matrix.gaussian(30, 20, std: 1, using: &rng)
            let delta = try Self.update(singularValues: [1, 0.5, 0.2, 0.1], out: 30, in: 20, seed: 9)
            let stats = try DeltaWeightStatistics.compute(delta: delta, base: base, rank: 4, seed: 1)
            let topEnergy = try svd(base).singularValues.prefix(4).reduce(0) { $0 + Double($1 * $1) }
            #expect(abs(stats.projectionOnBase - topEnergy.squareRoot()) < 1e-4 * stats.projectionOnBase)
            #expect(stats.projectionOnDelta <= stats.projectionOnBase && stats.projectionOnRandom <= stats.projectionOnBase)
            #expect(abs(stats.amplification - stats.frobeniusNorm / stats.projectionOnDelta) < 1e-9)
            #expect(try DeltaWeightStatistics.compute(delta: delta, base: base, rank: 4, seed: 1) == stats)
            #expect(try DeltaWeightStatistics.compute(delta: delta, base: base, rank: 4, seed: 2).projectionOnRandom != stats.projectionOnRandom)
        }

        @Test func zeroUpdateGivesZerosNotNaN() throws {
            var rng = SplitMix64(seed: 10)
            let stats = try DeltaWeightStatistics.compute(delta: .zeros(8, 6), base: .gaussian(8, 6, std: 1, using: &rng), rank: 2)
            #expect(stats.singularValues == [Float](repeating: 0, count: 6))
            for value in [stats.frobeniusNorm, stats.relativeNorm, stats.stableRank, stats.effectiveRank, stats.amplification, stats.projectionOnDelta] {
                #expect(value == 0)
            }
            #expect(stats.projectionOnBase > 0 && stats.projectionOnRandom > 0)
        }

        @Test func invalidInputsThrow() {
            #expect(throws: AnalysisError.self) { try DeltaWeightStatistics.compute(delta: .zeros(4, 3), base: .zeros(3, 4), rank: 1) }
            #expect(throws: AnalysisError.rankOutOfRange(operation: "DeltaWeightStatistics.compute", rank: 0, maximum: 3)) {
                try DeltaWeightStatistics.compute(delta: .zeros(4, 3), base: .zeros(4, 3), rank: 0)
            }
            #expect(throws: AnalysisError.rankOutOfRange(operation: "DeltaWeightStatistics.compute", rank: 4, maximum: 3)) {
                try DeltaWeightStatistics.compute(delta: .zeros(4, 3), base: .zeros(4, 3), rank: 4)
            }
        }
    }
}
