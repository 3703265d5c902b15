import LoRABenchAdapters
import LoRABenchKernels

/// VeRA's two frozen random projections (Kopiczko et al. 2024, §3.1), shared by every adapted layer
/// of a model: `vera_A` [r, maxIn] and `vera_B` [maxOut, r], sized by the largest adapted layer.
///
/// As peft's `VeraModel._init_vera_A_vera_B`: vera_A is drawn first, then vera_B, from one generator,
/// each by peft's own `_kaiming_init`: U(−bound, bound) with gain √2, bound = √3·√2/√fan_in = √(6/fan_in),
/// fan_in the tensor's second dimension (maxIn for vera_A, r for vera_B). That is not LoRA's
/// `kaiming_uniform_(a=√5)` (bound 1/√fan_in): the fixtures' projections reach ±√(6/fan_in).
/// The generator is our SplitMix64, so the values differ from torch's for the same seed; adapters
/// therefore carry their projections (peft's `save_projection = true`).
public final class VeRAProjections {
    /// vera_A [r, maxIn].
    public let a: Matrix
    /// vera_B [maxOut, r].
    public let b: Matrix

    /// Draws both projections from `seed`.
    public convenience init(rank: Int, maxInFeatures: Int, maxOutFeatures: Int, seed: UInt64) throws {
        guard rank >= 1 else {
            throw AdapterError.invalidSetting(name: "vera rank", value: "\(rank)", allowed: "it must be at least 1")
        }
        guard maxInFeatures >= 1, maxOutFeatures >= 1 else {
            throw AdapterError.invalidSetting(name: "vera projection size", value: "\(maxInFeatures)x\(maxOutFeatures)",
                                              allowed: "the largest adapted layer needs at least one input and one output feature")
        }
        var rng = SplitMix64(seed: seed)
        let a = Matrix.uniform(rank, maxInFeatures, bound: VeRAProjections.kaimingBound(fanIn: maxInFeatures), using: &rng)
        let b = Matrix.uniform(maxOutFeatures, rank, bound: VeRAProjections.kaimingBound(fanIn: rank), using: &rng)
        try self.init(a: a, b: b)
    }

    /// Projections large enough for every one of `bases` (peft sizes them by the largest targeted layer).
    public convenience init(rank: Int, covering bases: [FrozenLinear], seed: UInt64) throws {
        try self.init(rank: rank, maxInFeatures: bases.map(\.inFeatures).max() ?? 0,
                      maxOutFeatures: bases.map(\.outFeatures).max() ?? 0, seed: seed)
    }

    /// Given projections (a checkpoint saved with `save_projection`, or a parity fixture).
    public init(a: Matrix, b: Matrix) throws {
        guard a.rows >= 1, a.cols >= 1, b.rows >= 1, b.cols == a.rows else {
            throw AdapterError.shapeMismatch(what: "vera_A / vera_B", found: [a.rows, a.cols, b.rows, b.cols],
                                             expected: [a.rows, a.cols, b.rows, a.rows])
        }
        self.a = a
        self.b = b
    }

    public var rank: Int { a.rows }
    public var maxInFeatures: Int { a.cols }
    public var maxOutFeatures: Int { b.rows }

    /// √3 · gain / √fan_in with gain √2 (peft's `vera.model._kaiming_init`).
    static func kaimingBound(fanIn: Int) -> Float {
        Float((3.0 * 2.0 / Double(fanIn)).squareRoot())
    }
}

/// VeRA (Kopiczko et al. 2024, Eq. 1): h = W0·x + Λ_b·B·Λ_d·A·x with A, B frozen random slices of
/// the shared projections and only the diagonal scalings trained: λ_d [r] and λ_b [out].
///
/// As peft's `vera.Linear`: A = vera_A[:, :in], B = vera_B[:out, :], λ_d starts at `d_initial`
/// (0.1), λ_b at 0 so the layer starts as the base layer, no α scaling, and dropout
/// (`vera_dropout`) only on the adapter input.
public final class VeRALayer: LowRankUpdate, DropoutAdapter {
    public let base: FrozenLinear
    public let projections: VeRAProjections
    /// λ_b [1, out]: peft's `vera_lambda_b`.
    public let lambdaB: Parameter
    /// λ_d [1, r]: peft's `vera_lambda_d`.
    public let lambdaD: Parameter
    public private(set) var isMerged = false
    package var dropout: Dropout
    /// A = vera_A[:, :in] [r, in] and B = vera_B[:out, :] [out, r], taken once: the projections never change.
    public let a: Matrix
    public let b: Matrix

    // Saved by forward for backward.
    private var droppedInput = Matrix.zeros(0, 0)     // x_d [N, in]
    private var projected = Matrix.zeros(0, 0)        // u = x_d·Aᵀ [N, r]
    private var weighted = Matrix.zeros(0, 0)         // w = λ_d ⊙_c u [N, r]
    private var scaledB = Matrix.zeros(0, 0)          // λ_b ⊙_rows B [out, r]
    private var effectiveWeight = Matrix.zeros(0, 0)  // W0 + ΔW [out, in], when fused

    /// λ_d = d_initial, λ_b = 0 (peft's `init_weights = true`). `rank` must be the projections' r.
    public convenience init(base: FrozenLinear, projections: VeRAProjections, rank: Int, dInitial: Float = 0.1,
                            dropout: Float = 0, seed: UInt64 = 0) throws {
        guard rank == projections.rank else {
            throw AdapterError.invalidSetting(name: "vera rank", value: "\(rank)",
                                              allowed: "it must equal the shared projections' rank \(projections.rank)")
        }
        var rng = SplitMix64(seed: seed)
        try self.init(base: base, projections: projections, lambdaD: Matrix(rows: 1, cols: rank, repeating: dInitial),
                      lambdaB: .zeros(1, base.outFeatures), dropout: dropout, seed: rng.next())
    }

    /// Builds a layer from given λ vectors (a checkpoint or a parity fixture).
    public init(base: FrozenLinear, projections: VeRAProjections, lambdaD: Matrix, lambdaB: Matrix,
                dropout: Float = 0, seed: UInt64 = 0) throws {
        guard base.inFeatures <= projections.maxInFeatures, base.outFeatures <= projections.maxOutFeatures else {
            throw AdapterError.invalidSetting(
                name: "vera_A / vera_B", value: "[\(projections.rank), \(projections.maxInFeatures)] / [\(projections.maxOutFeatures), \(projections.rank)]",
                allowed: "a \(base.outFeatures)x\(base.inFeatures) layer needs at least \(base.inFeatures) columns of vera_A and "
                    + "\(base.outFeatures) rows of vera_B; size the shared projections by the largest adapted layer")
        }
        guard lambdaD.count == projections.rank else {
            throw AdapterError.shapeMismatch(what: "vera_lambda_d", found: lambdaD.shape, expected: [1, projections.rank])
        }
        guard lambdaB.count == base.outFeatures else {
            throw AdapterError.shapeMismatch(what: "vera_lambda_b", found: lambdaB.shape, expected: [1, base.outFeatures])
        }
        self.base = base
        self.projections = projections
        self.a = base.inFeatures == projections.maxInFeatures
            ? projections.a : projections.a.selectingColumns(Array(0..<base.inFeatures))
        self.b = projections.b.rowSlice(0..<base.outFeatures)
        self.lambdaB = Parameter("vera_lambda_b", role: .scaleVector, value: lambdaB.reshaped(1, base.outFeatures))
        self.lambdaD = Parameter("vera_lambda_d", role: .scaleVector, value: lambdaD.reshaped(1, projections.rank))
        self.dropout = try Dropout(probability: dropout, seed: seed)
    }

    public var rank: Int { projections.rank }
    /// VeRA has no α: the λ vectors carry the scale.
    public var scaling: Float { 1 }
    /// λ_b, λ_d in peft's order, then the base bias when it trains.
    public var parameters: [Parameter] { [lambdaB, lambdaD] + (base.biasIsTrainable ? [base.bias] : []) }

    /// (λ_d ⊙_rows A) [r, in].
    private func scaledA() -> Matrix {
        var m = a
        scaleRows(&m, by: lambdaD.value.storage)
        return m
    }

    /// (λ_b ⊙_rows B) [out, r].
    private func currentScaledB() -> Matrix {
        var m = b
        scaleRows(&m, by: lambdaB.value.storage)
        return m
    }

    public func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        try checkInput(x)
        guard !isMerged else {
            droppedInput = x
            return base.forward(x)
        }
        droppedInput = dropout.apply(x, training: training)
        gemm(droppedInput, .n, a, .t, into: &projected)
        weighted = projected
        scaleColumns(&weighted, by: lambdaD.value.storage)
        scaledB = currentScaledB()
        if fusesBaseAndUpdate {
            // Same input on both paths: y = x·(W0 + (λ_b ⊙ B)·(λ_d ⊙ A))ᵀ + b in one sgemm, as LoRA does.
            effectiveWeight = base.weight
            gemm(scaledB, .n, scaledA(), .n, into: &effectiveWeight, beta: 1)
            return base.forward(x, weight: effectiveWeight)
        }
        // y = x·W0ᵀ + b + λ_b ⊙_c (w·Bᵀ) = … + w·(λ_b ⊙_rows B)ᵀ.
        var y = base.forward(x)
        gemm(weighted, .n, scaledB, .t, into: &y, beta: 1)
        return y
    }

    public func backward(_ g: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws {
        try checkGradient(g, rows: droppedInput.rows)
        base.accumulateBiasGradient(g)
        guard !isMerged else { return base.backward(g, into: &gradInput, accumulate: accumulate) }
        // z = w·Bᵀ [N, out]: ∂λ_b = Σ_rows z ⊙ G.
        let lifted = matmul(weighted, .n, b, .t)
        addColumnDots(g, lifted, to: &lambdaB.grad)
        // g_z = (λ_b ⊙_c G)·B = G·(λ_b ⊙_rows B) [N, r]; ∂λ_d = Σ_rows g_z ⊙ u; ∂u = λ_d ⊙_c g_z.
        var gradProjected = matmul(g, .n, scaledB, .n)
        addColumnDots(gradProjected, projected, to: &lambdaD.grad)
        // ∂x = G·W0 + D ⊙ (∂u·A), which without dropout is G·(W0 + ΔW).
        if fusesBaseAndUpdate { return gemm(g, .n, effectiveWeight, .n, into: &gradInput, beta: accumulate ? 1 : 0) }
        scaleColumns(&gradProjected, by: lambdaD.value.storage)
        base.backward(g, into: &gradInput, accumulate: accumulate)
        dropout.accumulateInputGradient(gradProjected, a, into: &gradInput)
    }

    /// As LoRA's: one W0 + ΔW only without dropout and on a float32 base.
    private var fusesBaseAndUpdate: Bool { !dropout.isActive && !base.isQuantized }

    public var downProjection: Matrix { scaledA() }
    public var upProjection: Matrix { currentScaledB() }

    /// ΔW = (λ_b ⊙_rows B)·(λ_d ⊙_rows A) [out, in].
    public func deltaWeight() -> Matrix { matmul(currentScaledB(), .n, scaledA(), .n) }

    public func merge() { base.fold(deltaWeight(), merged: &isMerged, merging: true) }
    public func unmerge() { base.fold(deltaWeight(), merged: &isMerged, merging: false) }
}

extension ParameterRole {
    /// VeRA's trained scaling vectors λ_d [r] and λ_b [out].
    public static let scaleVector = ParameterRole("scale_vector", isVector: true)
}
