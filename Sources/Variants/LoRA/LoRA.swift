import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining

/// LoRA (Hu et al. 2022, Eq. 3): h = W0·x + s·B·A·x with W0 frozen, A [r, in], B [out, r].
///
/// As peft: s = α/r (α/√r with rsLoRA) multiplies the [N, out] product, dropout hits only the
/// adapter input, and B = 0 at init so the adapted layer starts as the base layer. On an NF4 base
/// this is QLoRA (Dettmers et al. 2023, Eq. 5): Y = X·dequant(W0)ᵀ + s·X·Aᵀ·Bᵀ.
public final class LoRA: LowRankFactored, DropoutAdapter {
    public let base: FrozenLinear
    public let a: Parameter
    public let b: Parameter
    public let scaling: Float
    public private(set) var isMerged = false
    public let residualInitialization: ResidualInitialization?
    package var dropout: Dropout

    // Saved by forward for backward: the dropped input x_d [N, in] and z = x_d·Aᵀ [N, r].
    private var droppedInput = Matrix.zeros(0, 0)
    private var projected = Matrix.zeros(0, 0)
    private var gradProjected = Matrix.zeros(0, 0)  // ∂z [N, r]
    private var effectiveWeight = Matrix.zeros(0, 0) // W0 + s·B·A [out, in], when fused

    public convenience init(base: FrozenLinear, config: AdapterConfig, seed: UInt64) throws {
        let (a, b, residual, dropoutSeed) = try initialFactors(base: base, config: config, seed: seed)
        try self.init(base: base, a: a, b: b, scaling: config.scaling, dropout: config.dropout, seed: dropoutSeed,
                      residualInitialization: residual)
    }

    /// Builds a LoRA layer from given factors (loading a checkpoint, or a parity fixture).
    /// `residualInitialization`: A and B as drawn when the initialisation replaced W0 by a residual.
    public init(base: FrozenLinear, a: Matrix, b: Matrix, scaling: Float, dropout: Float = 0, seed: UInt64 = 0,
                residualInitialization: ResidualInitialization? = nil) throws {
        guard a.cols == base.inFeatures, b.rows == base.outFeatures, a.rows == b.cols else {
            throw AdapterError.shapeMismatch(what: "lora_A / lora_B", found: [a.rows, a.cols, b.rows, b.cols],
                                             expected: [a.rows, base.inFeatures, base.outFeatures, a.rows])
        }
        self.base = base
        self.a = Parameter("lora_A", role: .loraA, value: a)
        self.b = Parameter("lora_B", role: .loraB, value: b)
        self.scaling = scaling
        self.dropout = try Dropout(probability: dropout, seed: seed)
        self.residualInitialization = residualInitialization
    }

    public var rank: Int { a.value.rows }
    public var parameters: [Parameter] { [a, b].filter(\.isTrainable) + (base.biasIsTrainable ? [base.bias] : []) }

    public func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        try checkInput(x)
        guard !isMerged else {
            droppedInput = x
            return base.forward(x)
        }
        droppedInput = dropout.apply(x, training: training)
        gemm(droppedInput, .n, a.value, .t, into: &projected)
        if fusesBaseAndUpdate {
            // Same input on both paths: y = x·(W0 + s·B·A)ᵀ + b is one sgemm, and the [N, out]
            // output is written once instead of being re-read to add s·z·Bᵀ.
            effectiveWeight = base.weight
            gemm(b.value, .n, a.value, .n, into: &effectiveWeight, alpha: scaling, beta: 1)
            return base.forward(x, weight: effectiveWeight)
        }
        var y = base.forward(x)
        gemm(projected, .n, b.value, .t, into: &y, alpha: scaling, beta: 1)
        return y
    }

    public func backward(_ g: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws {
        try checkGradient(g, rows: droppedInput.rows)
        base.accumulateBiasGradient(g)
        guard !isMerged else { return base.backward(g, into: &gradInput, accumulate: accumulate) }
        // With G_l = s·G: ∂B = G_lᵀ·z, ∂z = G_l·B, ∂A = ∂zᵀ·x_d.
        upProjectionGradients(g, projected: projected, weight: b.value, into: &b.grad, alpha: scaling, beta: 1,
                              projectedGradient: &gradProjected, projectedAlpha: scaling)
        if a.isTrainable { gemm(gradProjected, .t, droppedInput, .n, into: &a.grad, beta: 1) }
        // ∂x = G·W0 + D ⊙ (∂z·A), which without dropout is G·(W0 + s·B·A).
        if fusesBaseAndUpdate { return gemm(g, .n, effectiveWeight, .n, into: &gradInput, beta: accumulate ? 1 : 0) }
        base.backward(g, into: &gradInput, accumulate: accumulate)
        dropout.accumulateInputGradient(gradProjected, a.value, into: &gradInput)
    }

    /// Whether forward and backward go through one W0 + s·B·A: only without dropout (both paths
    /// see the same input) and on a float32 base (an NF4 one would need a float32 copy per layer,
    /// which QLoRA's storage is there to avoid).
    private var fusesBaseAndUpdate: Bool { !dropout.isActive && !base.isQuantized }

    public func deltaWeight() -> Matrix {
        var delta = Matrix.zeros(0, 0)
        gemm(b.value, .n, a.value, .n, into: &delta, alpha: scaling)
        return delta
    }

    public func merge() { base.fold(deltaWeight(), merged: &isMerged, merging: true) }
    public func unmerge() { base.fold(deltaWeight(), merged: &isMerged, merging: false) }
}
