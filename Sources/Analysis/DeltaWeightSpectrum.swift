import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// What one module's learned update ΔW = W_adapted − W0 ([out, in]) looks like: its spectrum,
/// its size against W0, and how strongly it amplifies directions of W0 (Hu et al. 2021, §7.3).
public struct DeltaWeightStatistics: Equatable, Sendable {
    /// σ(ΔW), descending: all min(out, in) values of the thin SVD, zeros included.
    public let singularValues: [Float]
    /// ‖ΔW‖_F.
    public let frobeniusNorm: Double
    /// ‖ΔW‖_F / ‖W0‖_F: how far training moved the weight, in units of the weight (+∞ for a
    /// nonzero ΔW on an all-zero W0).
    public let relativeNorm: Double
    /// ‖ΔW‖²_F / σ₁²: a rank that tiny singular values cannot inflate (1 for a rank-1 update,
    /// never above the true rank).
    public let stableRank: Double
    /// exp(−Σ pᵢ log pᵢ) with pᵢ = σᵢ / Σσ (Roy & Vetterli 2007): the number of equally strong
    /// directions that would have the same spectral entropy.
    public let effectiveRank: Double
    /// ‖ΔW‖_F / ‖U_rᵀ W0 V_r‖_F with U_r, V_r the top-r singular vectors of ΔW: the paper's
    /// amplification factor. Large values mean ΔW amplifies directions that W0 barely uses
    /// (the paper reports about 21 for r = 4 in GPT-3's layer 48); +∞ when W0 is zero on
    /// that subspace.
    public let amplification: Double
    /// ‖U_rᵀ W0 V_r‖_F on the top-r singular vectors of ΔW (Table 7, "ΔW_q" column).
    public let projectionOnDelta: Double
    /// The same on the top-r singular vectors of W0 itself (Table 7, "W_q" column): the largest
    /// value any r-frame can reach, √(σ₁² + … + σ_r²) of W0.
    public let projectionOnBase: Double
    /// The same on a random orthonormal r-frame (Table 7, "Random" column): the baseline that
    /// says how much of W0 an unrelated subspace picks up.
    public let projectionOnRandom: Double

    /// Measures `delta` = ΔW against `base` = W0 (same shape) with r = `rank`, 1 ≤ r ≤ min(out, in).
    /// The random frame comes from QR of Gaussian matrices drawn from `seed`, so it is
    /// deterministic. An exactly zero ΔW has no top-r subspace: its ranks, norms, projection and
    /// amplification are 0 rather than 0/0.
    public static func compute(delta: Matrix, base: Matrix, rank: Int, seed: UInt64 = 0) throws -> DeltaWeightStatistics {
        let operation = "DeltaWeightStatistics.compute"
        guard delta.shape == base.shape else {
            throw AnalysisError.shapeMismatch(operation: operation, first: delta.shape, second: base.shape,
                                              requirement: "ΔW and W0 must have the same [out, in] shape")
        }
        guard delta.rows > 0, delta.cols > 0 else { throw AnalysisError.empty(operation: operation, shape: delta.shape) }
        let smaller = min(delta.rows, delta.cols)
        guard (1...smaller).contains(rank) else { throw AnalysisError.rankOutOfRange(operation: operation, rank: rank, maximum: smaller) }

        let deltaSVD = try svd(delta)
        let sigma = deltaSVD.singularValues.map(Double.init)
        let top = sigma[0]
        let norm = Double(LoRABenchKernels.frobeniusNorm(delta)), baseNorm = Double(LoRABenchKernels.frobeniusNorm(base))
        let projectionOnDelta = top > 0
            ? projectedNorm(base, left: deltaSVD.u.selectingColumns(Array(0..<rank)), right: deltaSVD.vt.rowSlice(0..<rank).transposed)
            : 0
        let baseSVD = try svd(base)
        var rng = SplitMix64(seed: seed)
        let randomLeft = try qr(.gaussian(delta.rows, rank, std: 1, using: &rng)).q
        let randomRight = try qr(.gaussian(delta.cols, rank, std: 1, using: &rng)).q

        return DeltaWeightStatistics(
            singularValues: deltaSVD.singularValues,
            frobeniusNorm: norm,
            relativeNorm: baseNorm > 0 ? norm / baseNorm : (norm > 0 ? .infinity : 0),
            stableRank: top > 0 ? sigma.reduce(0) { $0 + $1 * $1 } / (top * top) : 0,
            effectiveRank: effectiveRank(sigma),
            amplification: top > 0 ? norm / projectionOnDelta : 0,
            projectionOnDelta: projectionOnDelta,
            projectionOnBase: projectedNorm(base, left: baseSVD.u.selectingColumns(Array(0..<rank)),
                                            right: baseSVD.vt.rowSlice(0..<rank).transposed),
            projectionOnRandom: projectedNorm(base, left: randomLeft, right: randomRight))
    }

    /// exp of the entropy of the singular values normalised to sum to 1; 0 for an all-zero spectrum.
    private static func effectiveRank(_ sigma: [Double]) -> Double {
        let total = sigma.reduce(0, +)
        guard total > 0 else { return 0 }
        let entropy = sigma.reduce(0.0) { sum, s in
            let p = s / total
            return p > 0 ? sum - p * log(p) : sum
        }
        return exp(entropy)
    }

    /// ‖Lᵀ W0 R‖_F for orthonormal frames L [out, r] and R [in, r]: the part of W0 that maps
    /// span(R) onto span(L).
    private static func projectedNorm(_ base: Matrix, left: Matrix, right: Matrix) -> Double {
        Double(LoRABenchKernels.frobeniusNorm(matmul(matmul(left, .t, base, .n), .n, right, .n)))
    }
}
