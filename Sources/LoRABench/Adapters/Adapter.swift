/// A mistake in how an adapter was asked for or used, with what is allowed instead.
public enum AdapterError: Error, Equatable, CustomStringConvertible {
    case invalidRank(rank: Int, inFeatures: Int, outFeatures: Int)
    case shapeMismatch(what: String, found: [Int], expected: [Int])
    case unknownInit(name: String, allowed: [String])
    case invalidSetting(name: String, value: String, allowed: String)

    public var description: String {
        switch self {
        case let .invalidRank(rank, inFeatures, outFeatures):
            return "rank \(rank) is not allowed for a \(outFeatures)x\(inFeatures) layer: r must be between 1 and min(in, out) = \(min(inFeatures, outFeatures))"
        case let .shapeMismatch(what, found, expected):
            return "\(what) has shape \(found), expected \(expected)"
        case let .unknownInit(name, allowed):
            return "unknown init '\(name)'; allowed: \(allowed.joined(separator: ", "))"
        case let .invalidSetting(name, value, allowed):
            return "\(name) = \(value) is not allowed; \(allowed)"
        }
    }
}

/// One adapted linear layer: a frozen base `y = x·W0ᵀ + b` plus a trainable low-rank update.
///
/// Every variant (LoRA, DoRA, AdaLoRA) implements the same hooks, so a model, an optimizer or
/// the experiment runner never needs to know which one it holds. Shapes: x is [N, in] (N token
/// rows), y and the upstream gradient are [N, out].
public protocol Adapter: AnyObject {
    var base: FrozenLinear { get }
    /// The adapter's current rank (AdaLoRA: its allocated size, before masking).
    var rank: Int { get }
    /// The factor applied to the low-rank product (α/r, α/√r, or AdaLoRA's α/(r + 1e-5)).
    var scaling: Float { get }
    /// Trainable tensors, adapter first, then the base bias when it is trained.
    var parameters: [Parameter] { get }
    var isMerged: Bool { get }

    /// y [N, out] for x [N, in]; keeps what `backward` needs. `training` enables dropout.
    func forward(_ x: Matrix, training: Bool) throws -> Matrix
    /// Accumulates every parameter's gradient for the last forward's input and returns ∂L/∂x.
    func backward(_ gradOutput: Matrix) throws -> Matrix
    /// The change that merging applies to the base weight: W_merged − W0 [out, in].
    func deltaWeight() -> Matrix
    /// Folds the adapter into the base weight; the forward pass is then the plain base layer.
    func merge()
    /// Restores W0 (up to float rounding) after `merge()`.
    func unmerge()
}

extension Adapter {
    public var inFeatures: Int { base.inFeatures }
    public var outFeatures: Int { base.outFeatures }
    public var trainableParameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    func checkInput(_ x: Matrix) throws {
        guard x.cols == inFeatures else {
            throw AdapterError.shapeMismatch(what: "layer input", found: x.shape, expected: [x.rows, inFeatures])
        }
    }

    func checkGradient(_ g: Matrix, rows: Int) throws {
        guard g.rows == rows, g.cols == outFeatures else {
            throw AdapterError.shapeMismatch(what: "output gradient", found: g.shape, expected: [rows, outFeatures])
        }
    }
}

/// The frozen base layer y = x·W0ᵀ + b. W0 never trains; the bias trains only when the bias
/// mode says so (peft's `bias = "all" | "lora_only"`).
public final class FrozenLinear {
    /// W0 [out, in], torch `nn.Linear` layout. Changed only by merge/unmerge.
    public var weight: Matrix
    /// b [1, out].
    public let bias: Parameter
    public var biasIsTrainable: Bool

    public init(weight: Matrix, bias: Matrix? = nil, trainBias: Bool = false) throws {
        let bias = bias ?? Matrix(rows: 1, cols: weight.rows)
        guard bias.count == weight.rows else {
            throw AdapterError.shapeMismatch(what: "base bias", found: bias.shape, expected: [1, weight.rows])
        }
        self.weight = weight
        self.bias = Parameter("base_layer.bias", role: .bias, value: bias.reshaped(1, weight.rows))
        self.biasIsTrainable = trainBias
    }

    public var inFeatures: Int { weight.cols }
    public var outFeatures: Int { weight.rows }

    /// y = x·W0ᵀ + b.
    func forward(_ x: Matrix) -> Matrix { forward(x, weight: weight) }

    /// y = x·Wᵀ + b for a weight of the base's shape (an adapter's effective weight). The bias rows
    /// are written first so that sgemm adds into them (β = 1): one pass over y instead of two.
    func forward(_ x: Matrix, weight w: Matrix) -> Matrix {
        var y = Matrix(repeatingRow: bias.value, count: x.rows)
        gemm(x, .n, w, .t, into: &y, beta: 1)
        return y
    }

    /// W0 + ΔW when merging, W0 again when unmerging, for an adapter whose merged weight is the
    /// base plus its update (LoRA, AdaLoRA); `merged` is the adapter's flag, and a repeated call
    /// changes nothing.
    func fold(_ delta: @autoclosure () -> Matrix, merged: inout Bool, merging: Bool) {
        guard merged != merging else { return }
        axpy(merging ? 1 : -1, delta(), &weight)
        merged = merging
    }

    /// ∂x = G·W0 [N, in].
    func backward(_ g: Matrix) -> Matrix { matmul(g, .n, weight, .n) }

    /// Accumulates ∂b = Σ_rows G when the bias trains.
    func accumulateBiasGradient(_ g: Matrix) {
        if biasIsTrainable { addColumnSums(of: g, to: &bias.grad) }
    }
}

/// An adapter with dropout on its input: its mask generator is the one random state that a
/// checkpoint must carry to resume the run exactly.
protocol DropoutAdapter: Adapter {
    var dropout: Dropout { get set }
}

/// Inverted dropout on the adapter input: each entry kept with probability 1 − p and scaled
/// by 1/(1 − p), so the expected input is unchanged (torch `nn.Dropout`).
public struct Dropout {
    public let probability: Float
    private var rng: SplitMix64
    /// The last mask, entries 0 or 1/(1 − p); empty when no dropout was applied.
    private(set) var mask = Matrix(rows: 0, cols: 0)

    public init(probability: Float, seed: UInt64) throws {
        guard probability >= 0, probability < 1 else {
            throw AdapterError.invalidSetting(name: "dropout", value: "\(probability)", allowed: "it must be in [0, 1)")
        }
        self.probability = probability
        self.rng = SplitMix64(seed: seed)
    }

    /// The mask generator's state, saved by checkpoints so that a resumed run draws the same masks.
    var generatorState: UInt64 {
        get { rng.state }
        set { rng = SplitMix64(seed: newValue) }
    }

    /// Whether the last `apply` changed its input.
    var isActive: Bool { mask.count > 0 }

    mutating func apply(_ x: Matrix, training: Bool) -> Matrix {
        guard training, probability > 0 else {
            mask = Matrix(rows: 0, cols: 0)
            return x
        }
        let keep = 1 / (1 - probability)
        mask = Matrix(rows: x.rows, cols: x.cols, storage: (0..<x.count).map { _ in rng.nextUnitFloat() < probability ? 0 : keep })
        return hadamard(x, mask)
    }

    /// D ⊙ g for the last mask (identity when no dropout was applied).
    func masked(_ g: Matrix) -> Matrix { isActive ? hadamard(g, mask) : g }

    /// ∂x += D ⊙ (g·w): the adapter path's input gradient, masked as its input was.
    func accumulateInputGradient(_ g: Matrix, _ w: Matrix, into gradInput: inout Matrix) {
        if isActive {
            axpy(1, masked(matmul(g, .n, w, .n)), &gradInput)
        } else {
            gemm(g, .n, w, .n, into: &gradInput, beta: 1)
        }
    }
}

/// Builds A and B for LoRA-family adapters according to `init`; PiSSA also returns the residual base.
enum FactorInitializer {
    /// Validates the rank, draws A and B, replaces the base by PiSSA's residual, and applies the bias
    /// mode: everything a config-built LoRA or DoRA layer does before its factors exist.
    static func initial(base: FrozenLinear, config: AdapterConfig, seed: UInt64) throws -> (a: Matrix, b: Matrix, dropoutSeed: UInt64) {
        try validateRank(config.rank, for: base.weight)
        var rng = SplitMix64(seed: seed)
        let (a, b, residual) = try factors(config.initialization, rank: config.rank, scaling: config.scaling, base: base.weight, rng: &rng)
        if let residual { base.weight = residual }
        if config.bias != .none { base.biasIsTrainable = true }
        return (a, b, rng.next())
    }

    static func factors(_ initialization: AdapterInit, rank r: Int, scaling: Float, base: Matrix,
                        rng: inout SplitMix64) throws -> (a: Matrix, b: Matrix, residualBase: Matrix?) {
        let out = base.rows, inFeatures = base.cols
        switch initialization {
        case .kaiming:
            // kaiming_uniform(a = √5) on [r, in]: bound = √3 · √(1/3) / √in = 1/√in (peft's default).
            return (.uniform(r, inFeatures, bound: 1 / Float(inFeatures).squareRoot(), using: &rng), .zeros(out, r), nil)
        case .gaussian:
            return (.gaussian(r, inFeatures, std: 1 / Float(r), using: &rng), .zeros(out, r), nil)
        case .zeroA:
            return (.zeros(r, inFeatures), .gaussian(out, r, std: 1 / Float(r), using: &rng), nil)
        case .bothGaussian:
            return (.gaussian(r, inFeatures, std: 1 / Float(r), using: &rng), .gaussian(out, r, std: 1 / Float(r), using: &rng), nil)
        case .pissa:
            // PiSSA (Meng et al. 2024, Eq. 2–3): the top-r singular triplets of W0 become the adapter,
            // split as √S on each side and divided by s so that s·B·A = U_r S_r V_rᵀ; the rest stays frozen.
            let decomposition = try svd(base)
            var a = decomposition.vt.rowSlice(0..<r)
            var b = decomposition.u.selectingColumns(Array(0..<r))
            for k in 0..<r {
                let root = (decomposition.singularValues[k] / scaling).squareRoot()
                for j in 0..<inFeatures { a[k, j] *= root }
                for i in 0..<out { b[i, k] *= root }
            }
            var residual = base
            gemm(b, .n, a, .n, into: &residual, alpha: -scaling, beta: 1)
            return (a, b, residual)
        }
    }
}

/// How A and B start (the LoRA paper: B = 0 so training starts exactly at the base model).
public enum AdapterInit: String, CaseIterable, Sendable {
    /// A ~ kaiming-uniform (U(±1/√in)), B = 0: peft's default (`init_lora_weights = true`).
    case kaiming
    /// A ~ N(0, 1/r²), B = 0 (`init_lora_weights = "gaussian"`).
    case gaussian
    /// A, B from the top-r SVD of W0, the base replaced by the residual (`"pissa"`).
    case pissa
    /// Ablation: A = 0, B ~ N(0, 1/r²) (learns through A first).
    case zeroA = "zero_a"
    /// Ablation: A and B both ~ N(0, 1/r²); the adapter is not a no-op at step 0.
    case bothGaussian = "both_gaussian"

    public init(name: String) throws {
        guard let value = AdapterInit(rawValue: name) else {
            throw AdapterError.unknownInit(name: name, allowed: AdapterInit.allCases.map(\.rawValue))
        }
        self = value
    }
}

func validateRank(_ r: Int, for base: Matrix) throws {
    guard r >= 1, r <= min(base.rows, base.cols) else {
        throw AdapterError.invalidRank(rank: r, inFeatures: base.cols, outFeatures: base.rows)
    }
}
