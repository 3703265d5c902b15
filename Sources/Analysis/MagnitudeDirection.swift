import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// How far a weight moved from its pre-trained value in magnitude and in direction, separately
/// (Liu et al. 2024, DoRA, §3.2 "Weight Decomposition Analysis", Eq. 3–4).
///
/// W is split as DoRA splits it (Eq. 2): one magnitude per output feature, m_n = ‖W[n, :]‖₂,
/// and a unit direction W[n, :] / m_n. The paper writes a "column-wise" norm of W ∈ ℝ^{d×k};
/// peft's `lora_magnitude_vector` (and `DoRA` here) holds one norm per output feature, a row of
/// the torch [out, in] weight, and that is the vector used here. Over the k = out features:
///
///     ΔM = Σ_n |m_n(W) − m_n(W0)| / k        ΔD = Σ_n (1 − cos(W[n, :], W0[n, :])) / k
///
/// Plotting ΔD against ΔM over layers and steps is the paper's Figure 2: full fine-tuning and
/// DoRA show a negative slope (large moves in one, small in the other), LoRA a positive one.
public struct MagnitudeDirectionChange: Equatable, Sendable {
    /// ΔM: the mean absolute change of the per-feature norms.
    public var magnitude: Double
    /// ΔD: the mean cosine distance between the per-feature directions, in [0, 2].
    public var direction: Double

    public init(magnitude: Double, direction: Double) {
        self.magnitude = magnitude
        self.direction = direction
    }

    /// ΔM and ΔD of `weight` against `base` (same [out, in] shape), accumulated in Double.
    /// A row that is zero in exactly one of the two has no direction to compare and counts as
    /// orthogonal (cos = 0); a row that is zero in both is unchanged (cos = 1).
    public static func between(_ weight: Matrix, base: Matrix) throws -> MagnitudeDirectionChange {
        let operation = "MagnitudeDirectionChange.between"
        guard weight.shape == base.shape else {
            throw AnalysisError.shapeMismatch(operation: operation, first: weight.shape, second: base.shape,
                                              requirement: "the adapted and the pre-trained weight must have the same [out, in] shape")
        }
        guard weight.rows > 0, weight.cols > 0 else { throw AnalysisError.empty(operation: operation, shape: weight.shape) }
        var magnitude = 0.0, direction = 0.0
        for n in 0..<weight.rows {
            var dot = 0.0, normW = 0.0, normBase = 0.0
            for j in 0..<weight.cols {
                let w = Double(weight[n, j]), b = Double(base[n, j])
                dot += w * b
                normW += w * w
                normBase += b * b
            }
            (normW, normBase) = (normW.squareRoot(), normBase.squareRoot())
            let cosine = normW > 0 && normBase > 0 ? dot / (normW * normBase) : (normW == normBase ? 1 : 0)
            magnitude += abs(normW - normBase)
            direction += 1 - cosine
        }
        let k = Double(weight.rows)
        return MagnitudeDirectionChange(magnitude: magnitude / k, direction: direction / k)
    }
}
