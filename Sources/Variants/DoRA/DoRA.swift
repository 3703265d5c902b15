import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining

/// DoRA (Liu et al. 2024, Eq. 5): W' = m · V / ‖V‖ with V = W0 + s·B·A, one norm per output
/// feature, m a trainable magnitude and B·A a LoRA update of the direction.
///
/// As peft: the norm ‖V‖ is recomputed every forward but treated as a constant in backward
/// (the paper's section 4.3: "we propose to treat ‖V + ΔV‖_c as a constant, thereby detaching it
/// from the gradient graph"), m starts at ‖W0 + s·B·A‖ per row, the bias is never scaled, and with
/// dropout only the correction terms see the dropped input (peft PR #1474). On an NF4 base (QDoRA)
/// W0 is the dequantized weight, as peft's `dequantize_module_weight`.
public final class DoRA: LowRankFactored, DropoutAdapter {
    public let base: FrozenLinear
    public let a: Parameter
    public let b: Parameter
    /// m [1, out]: peft's `lora_magnitude_vector`.
    public let magnitude: Parameter
    public let scaling: Float
    public private(set) var isMerged = false
    public let residualInitialization: ResidualInitialization?
    package var dropout: Dropout
    /// g = m / ‖V‖ used by the last merge, needed to undo it.
    private var mergedFactor: [Float] = []

    // Saved by forward for backward.
    private var droppedInput = Matrix.zeros(0, 0)  // x_d [N, in]
    private var projected = Matrix.zeros(0, 0)     // z = x_d·Aᵀ [N, r]
    private var gradProjected = Matrix.zeros(0, 0) // ∂z [N, r]
    private var scaledWeight = Matrix.zeros(0, 0)  // g ⊙_rows V [out, in]: the merged weight of this step (fused path)
    private var output = Matrix.zeros(0, 0)        // y = g ⊙_c x·Vᵀ + b [N, out] (fused path)
    private var direction = Matrix.zeros(0, 0)     // u + s·l = x_d·Vᵀ [N, out] (with dropout or an NF4 base)
    private var norms: [Float] = []                // n = ‖V_i‖ (detached) [out]
    private var factor: [Float] = []               // g = m / n [out]

    /// m starts at the row norms of W0 + s·B·A, so the layer starts as the base layer.
    public convenience init(base: FrozenLinear, config: AdapterConfig, seed: UInt64) throws {
        let (a, b, residual, dropoutSeed) = try initialFactors(base: base, config: config, seed: seed)
        try self.init(base: base, a: a, b: b, magnitude: Matrix(rows: 1, cols: base.outFeatures),
                      scaling: config.scaling, dropout: config.dropout, seed: dropoutSeed, residualInitialization: residual)
        magnitude.value.storage = rowNorms(combinedWeight())
    }

    /// Builds a DoRA layer from given factors and magnitude (a checkpoint or a parity fixture).
    public init(base: FrozenLinear, a: Matrix, b: Matrix, magnitude: Matrix, scaling: Float, dropout: Float = 0, seed: UInt64 = 0,
                residualInitialization: ResidualInitialization? = nil) throws {
        guard a.cols == base.inFeatures, b.rows == base.outFeatures, a.rows == b.cols else {
            throw AdapterError.shapeMismatch(what: "lora_A / lora_B", found: [a.rows, a.cols, b.rows, b.cols],
                                             expected: [a.rows, base.inFeatures, base.outFeatures, a.rows])
        }
        guard magnitude.count == base.outFeatures else {
            throw AdapterError.shapeMismatch(what: "lora_magnitude_vector", found: magnitude.shape, expected: [1, base.outFeatures])
        }
        self.base = base
        self.a = Parameter("lora_A", role: .loraA, value: a)
        self.b = Parameter("lora_B", role: .loraB, value: b)
        self.magnitude = Parameter("lora_magnitude_vector", role: .magnitude, value: magnitude.reshaped(1, base.outFeatures))
        self.scaling = scaling
        self.dropout = try Dropout(probability: dropout, seed: seed)
        self.residualInitialization = residualInitialization
    }

    public var rank: Int { a.value.rows }
    public var parameters: [Parameter] { [a, b].filter(\.isTrainable) + [magnitude] + (base.biasIsTrainable ? [base.bias] : []) }

    /// V = W0 + s·B·A [out, in].
    private func combinedWeight() -> Matrix {
        base.withWeight { w in
            var v = w
            gemm(b.value, .n, a.value, .n, into: &v, alpha: scaling, beta: 1)
            return v
        }
    }

    /// Whether forward is one sgemm with the merged weight g ⊙_rows V, as LoRA's: only without
    /// dropout (the base and adapter paths see one input), on a float32 base (an NF4 one would keep
    /// a float32 weight per layer, which QLoRA avoids), and with every g nonzero, because backward
    /// reads x·Vᵀ back from the output as (y − b)/g.
    private var fusesBaseAndUpdate = false

    public func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        try checkInput(x)
        guard !isMerged else {
            droppedInput = x
            return base.forward(x)
        }
        var combined = combinedWeight()
        norms = rowNorms(combined)
        factor = zip(magnitude.value.storage, norms).map { $0 / $1 }
        droppedInput = dropout.apply(x, training: training)
        gemm(droppedInput, .n, a.value, .t, into: &projected)
        fusesBaseAndUpdate = !dropout.isActive && !base.isQuantized && !factor.contains(0)
        if fusesBaseAndUpdate {
            // y = x·(g ⊙_rows V)ᵀ + b: one sgemm adding into the bias rows, and y itself is what
            // backward keeps, not a second [N, out] matrix x·Vᵀ.
            scaleRows(&combined, by: factor)
            scaledWeight = combined
            direction = .zeros(0, 0)
            output = base.forward(x, weight: scaledWeight)
            return output
        }
        // direction = u + s·l = x_d·Vᵀ: one sgemm with V = W0 + s·B·A. z = x_d·Aᵀ is kept for ∂B.
        scaledWeight = .zeros(0, 0)
        gemm(droppedInput, .n, combined, .t, into: &direction)
        // y = g ⊙_c direction + b, plus x·W0ᵀ − u when dropout made the base and adapter inputs differ.
        var y = scaledColumnsPlusRow(direction, factor, base.bias.value)
        if dropout.isActive {
            base.withWeight { w in
                gemm(x, .n, w, .t, into: &y, beta: 1)
                gemm(droppedInput, .n, w, .t, into: &y, alpha: -1, beta: 1)
            }
        }
        return y
    }

    public func backward(_ g: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws {
        try checkGradient(g, rows: droppedInput.rows)
        base.accumulateBiasGradient(g)
        guard !isMerged else { return base.backward(g, into: &gradInput, accumulate: accumulate) }
        // ∂m_i = Σ_rows G[:, i] · direction[:, i] / n_i (n detached), with direction = (y − b)/g
        // on the fused path.
        var gradMagnitude = Matrix(rows: 1, cols: base.outFeatures)
        if fusesBaseAndUpdate {
            addColumnDots(g, output, minus: base.bias.value, to: &gradMagnitude)
        } else {
            addColumnDots(g, direction, to: &gradMagnitude)
        }
        for i in 0..<base.outFeatures {
            let directionScale = fusesBaseAndUpdate ? factor[i] : 1
            magnitude.grad.storage[i] += gradMagnitude.storage[i] / directionScale / norms[i]
        }
        // With G_l = s·(g ⊙_c G): ∂B = G_lᵀ·z = s·diag(g)·(Gᵀ·z) and ∂z = G_l·B = s·G·(diag(g)·B),
        // so the [N, out] matrix g ⊙_c G is never formed; ∂A = ∂zᵀ·x_d.
        var scaledB = b.value
        scaleRows(&scaledB, by: factor)
        var gradB = Matrix.zeros(0, 0)
        upProjectionGradients(g, projected: projected, weight: scaledB, into: &gradB,
                              projectedGradient: &gradProjected, projectedAlpha: scaling)
        scaleRows(&gradB, by: factor)
        axpy(scaling, gradB, &b.grad)
        if a.isTrainable { gemm(gradProjected, .t, droppedInput, .n, into: &a.grad, beta: 1) }
        // Fused, ∂x = (g ⊙_c G)·W0 + ∂z·A = G·(diag(g)·V); with dropout (D = 1 on an NF4 base
        // without it) ∂x = G·W0 + D ⊙ [((g − 1) ⊙_c G)·W0 + ∂z·A].
        if fusesBaseAndUpdate { return gemm(g, .n, scaledWeight, .n, into: &gradInput, beta: accumulate ? 1 : 0) }
        var correction = base.withWeight { w in
            var correctionWeight = w
            scaleRows(&correctionWeight, by: factor.map { $0 - 1 })
            return matmul(g, .n, correctionWeight, .n)
        }
        gemm(gradProjected, .n, a.value, .n, into: &correction, beta: 1)
        base.backward(g, into: &gradInput, accumulate: accumulate)
        axpy(1, dropout.masked(correction), &gradInput)
    }

    /// (m/‖V‖) ⊙_rows V − W0, with V and its norm from the unmerged weights.
    public func deltaWeight() -> Matrix {
        var merged = mergedWeight().weight
        base.withWeight { axpy(-1, $0, &merged) }
        return merged
    }

    private func mergedWeight() -> (weight: Matrix, factor: [Float]) {
        var v = combinedWeight()
        let factor = zip(magnitude.value.storage, rowNorms(v)).map { $0 / $1 }
        scaleRows(&v, by: factor)
        return (v, factor)
    }

    /// The base becomes (m/‖V‖) ⊙_rows V in float32 (an NF4 base keeps its W0 aside for unmerge).
    public func merge() {
        guard !isMerged else { return }
        let (merged, factor) = mergedWeight()
        base.mergeWeight { $0 = merged }
        mergedFactor = factor
        isMerged = true
    }

    /// W0 = W / g − s·B·A with the g of the merge (an NF4 base gets its W0 back exactly).
    public func unmerge() {
        guard isMerged else { return }
        base.unmergeWeight { weight in
            scaleRows(&weight, by: mergedFactor.map { 1 / $0 })
            gemm(b.value, .n, a.value, .n, into: &weight, alpha: -scaling, beta: 1)
        }
        isMerged = false
    }
}

extension ParameterRole {
    /// DoRA's magnitude m [out].
    public static let magnitude = ParameterRole("magnitude", isVector: true)
}
