import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining

/// AdaLoRA's adapted layer (Zhang et al. 2023, Eq. 1): ΔW = P·Λ·Q in SVD form, peft's `SVDLinear`.
///
/// peft's names: `lora_B` [out, r] is P, `lora_E` [r, 1] is Λ, `lora_A` [r, in] is Q. Ranks are
/// reduced by zeroing entries of Λ (the model-level `AdaLoRAAllocator` decides which); tensor
/// shapes never change during training. The scaling is α/(r0 + 1e-5) with r0 the initial rank,
/// kept after masking (the authors found adjusting it hurt, QingruZhang/AdaLoRA#12).
public final class AdaLoRALayer: LowRankUpdate, DropoutAdapter {
    public let base: FrozenLinear
    /// Q [r, in].
    public let a: Parameter
    /// P [out, r].
    public let b: Parameter
    /// Λ [r, 1].
    public let e: Parameter
    public let scaling: Float
    /// r0, peft's `ranknum`: the scaling's denominator, kept after masking.
    public let initialRank: Int
    public private(set) var isMerged = false
    package var dropout: Dropout

    // Saved by forward for backward.
    private var droppedInput = Matrix.zeros(0, 0)  // x_d [N, in]
    private var projected = Matrix.zeros(0, 0)     // z = x_d·Qᵀ [N, r]
    private var weighted = Matrix.zeros(0, 0)      // w = z ⊙ Λᵀ [N, r]
    private var effectiveWeight = Matrix.zeros(0, 0) // W0 + c·P·(Λ ⊙ Q) [out, in], when fused

    /// E = 0 and P, Q ~ N(0, 0.02²), as peft (a non-zero E was a regression, peft #1798).
    public init(base: FrozenLinear, config: AdapterConfig, seed: UInt64) throws {
        try validateRank(config.rank, for: base)
        var rng = SplitMix64(seed: seed)
        let r = config.rank
        self.base = base
        self.a = Parameter("lora_A", role: .loraA, value: .gaussian(r, base.inFeatures, std: 0.02, using: &rng))
        self.b = Parameter("lora_B", role: .loraB, value: .gaussian(base.outFeatures, r, std: 0.02, using: &rng))
        self.e = Parameter("lora_E", role: .singularValues, value: .zeros(r, 1))
        self.scaling = AdaLoRALayer.scaling(alpha: config.alpha, initialRank: r)
        self.initialRank = r
        self.dropout = try Dropout(probability: config.dropout, seed: rng.next())
        if config.bias != .none { base.biasIsTrainable = true }
    }

    /// Builds a layer from given P, Λ, Q; `initialRank` (peft's `ranknum`) fixes the scaling.
    public init(base: FrozenLinear, a: Matrix, b: Matrix, e: Matrix, alpha: Float, initialRank: Int,
                dropout: Float = 0, seed: UInt64 = 0) throws {
        guard a.cols == base.inFeatures, b.rows == base.outFeatures, a.rows == b.cols, e.count == a.rows else {
            throw AdapterError.shapeMismatch(what: "lora_A / lora_B / lora_E", found: [a.rows, a.cols, b.rows, b.cols, e.count],
                                             expected: [a.rows, base.inFeatures, base.outFeatures, a.rows, a.rows])
        }
        self.base = base
        self.a = Parameter("lora_A", role: .loraA, value: a)
        self.b = Parameter("lora_B", role: .loraB, value: b)
        self.e = Parameter("lora_E", role: .singularValues, value: e.reshaped(a.rows, 1))
        self.scaling = AdaLoRALayer.scaling(alpha: alpha, initialRank: initialRank)
        self.initialRank = initialRank
        self.dropout = try Dropout(probability: dropout, seed: seed)
    }

    /// c = α/(r0 + 1e-5) in Float32 as peft computes it; α ≤ 0 means α = r0.
    package static func scaling(alpha: Float, initialRank: Int) -> Float {
        (alpha > 0 ? alpha : Float(initialRank)) / (Float(initialRank) + 1e-5)
    }

    public var rank: Int { a.value.rows }
    public var downProjection: Matrix { a.value }
    public var upProjection: Matrix { b.value }
    /// The triplets whose singular value is not masked to zero.
    public var activeRank: Int { e.value.storage.filter { $0 != 0 }.count }
    public var parameters: [Parameter] { [a, b, e] + (base.biasIsTrainable ? [base.bias] : []) }

    public func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        try checkInput(x)
        guard !isMerged else {
            droppedInput = x
            return base.forward(x)
        }
        droppedInput = dropout.apply(x, training: training)
        gemm(droppedInput, .n, a.value, .t, into: &projected)
        weighted = projected
        scaleColumns(&weighted, by: e.value.storage)
        if fusesBaseAndUpdate {
            // As LoRA: y = x·(W0 + c·P·(Λ ⊙ Q))ᵀ + b in one sgemm, with no second pass over the
            // [N, out] output for c·w·Pᵀ (and backward's ∂x is one sgemm too).
            effectiveWeight = base.weight
            gemm(b.value, .n, scaledDownProjection(), .n, into: &effectiveWeight, alpha: scaling, beta: 1)
            return base.forward(x, weight: effectiveWeight)
        }
        var y = base.forward(x)
        gemm(weighted, .n, b.value, .t, into: &y, alpha: scaling, beta: 1)
        return y
    }

    public func backward(_ g: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws {
        try checkGradient(g, rows: droppedInput.rows)
        base.accumulateBiasGradient(g)
        guard !isMerged else { return base.backward(g, into: &gradInput, accumulate: accumulate) }
        // ∂P = c·Gᵀ·w; ∂w = c·G·P; ∂Λ_k = Σ_rows (∂w ⊙ z)_k; ∂z = ∂w ⊙ Λᵀ; ∂Q = ∂zᵀ·x_d.
        var gradWeighted = Matrix.zeros(0, 0)
        upProjectionGradients(g, projected: weighted, weight: b.value, into: &b.grad, alpha: scaling, beta: 1,
                              projectedGradient: &gradWeighted, projectedAlpha: scaling)
        addColumnDots(gradWeighted, projected, to: &e.grad)
        scaleColumns(&gradWeighted, by: e.value.storage)
        gemm(gradWeighted, .t, droppedInput, .n, into: &a.grad, beta: 1)
        // ∂x = G·W0 + D ⊙ (∂z·Q), which without dropout is G·(W0 + c·P·(Λ ⊙ Q)).
        if fusesBaseAndUpdate { return gemm(g, .n, effectiveWeight, .n, into: &gradInput, beta: accumulate ? 1 : 0) }
        base.backward(g, into: &gradInput, accumulate: accumulate)
        dropout.accumulateInputGradient(gradWeighted, a.value, into: &gradInput)
    }

    /// Whether forward and backward go through one W0 + c·P·(Λ ⊙ Q): only without dropout (both
    /// paths see the same input) and on a float32 base (an NF4 one would need a float32 copy per
    /// layer), as LoRA.
    private var fusesBaseAndUpdate: Bool { !dropout.isActive && !base.isQuantized }

    /// Λ ⊙ Q [r, in]: Λ scales Q's rows.
    private func scaledDownProjection() -> Matrix {
        var scaled = a.value
        scaleRows(&scaled, by: e.value.storage)
        return scaled
    }

    /// c·P·(Q ⊙ Λ), Λ broadcast over Q's columns.
    public func deltaWeight() -> Matrix {
        var delta = Matrix.zeros(0, 0)
        gemm(b.value, .n, scaledDownProjection(), .n, into: &delta, alpha: scaling)
        return delta
    }

    public func merge() { base.fold(deltaWeight(), merged: &isMerged, merging: true) }
    public func unmerge() { base.fold(deltaWeight(), merged: &isMerged, merging: false) }
}

extension ParameterRole {
    /// AdaLoRA's singular values Λ [r, 1] (2-D in peft, so not in LoRA+'s B group).
    public static let singularValues = ParameterRole("singular_values", isVector: false)
}
