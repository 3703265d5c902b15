import LoRABenchKernels

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

/// Which base biases train alongside the adapters (peft's `bias`).
public enum BiasMode: String, CaseIterable, Sendable {
    /// No bias trains.
    case none
    /// Every bias of the model trains (for one layer: its own bias).
    case all
    /// Only the biases of adapted layers train.
    case loraOnly = "lora_only"
}

/// One adapted linear layer: a frozen base `y = x·W0ᵀ + b` plus a trainable low-rank update.
///
/// Every variant implements the same hooks, so a model, an optimizer or
/// the experiment runner never needs to know which one it holds. Shapes: x is [N, in] (N token
/// rows), y and the upstream gradient are [N, out].
public protocol Adapter: AnyObject {
    var base: FrozenLinear { get }
    /// The adapter's current rank (AdaLoRA: its allocated size, before masking).
    var rank: Int { get }
    /// The rank it started training with (AdaLoRA's init_r); `rank` for a variant whose rank is fixed.
    var initialRank: Int { get }
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

/// An adapter whose update is a product of a down- and an up-projection, ΔW ∝ up·down (up to the
/// scaling and diagonal factors): the subspaces the LoRA paper compares (Hu et al. 2022, §7).
public protocol LowRankUpdate: Adapter {
    /// [r, in]: LoRA's A, AdaLoRA's Q, VeRA's λ_d ⊙ A.
    var downProjection: Matrix { get }
    /// [out, r]: LoRA's B, AdaLoRA's P, VeRA's λ_b ⊙ B.
    var upProjection: Matrix { get }
}

extension Adapter {
    public var initialRank: Int { rank }
    public var inFeatures: Int { base.inFeatures }
    public var outFeatures: Int { base.outFeatures }
    public var trainableParameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    package func checkInput(_ x: Matrix) throws {
        guard x.cols == inFeatures else {
            throw AdapterError.shapeMismatch(what: "layer input", found: x.shape, expected: [x.rows, inFeatures])
        }
    }

    package func checkGradient(_ g: Matrix, rows: Int) throws {
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
    package func forward(_ x: Matrix) -> Matrix { forward(x, weight: weight) }

    /// y = x·Wᵀ + b for a weight of the base's shape (an adapter's effective weight). The bias rows
    /// are written first so that sgemm adds into them (β = 1): one pass over y instead of two.
    package func forward(_ x: Matrix, weight w: Matrix) -> Matrix {
        var y = Matrix(repeatingRow: bias.value, count: x.rows)
        gemm(x, .n, w, .t, into: &y, beta: 1)
        return y
    }

    /// W0 + ΔW when merging, W0 again when unmerging, for an adapter whose merged weight is the
    /// base plus its update (LoRA, AdaLoRA); `merged` is the adapter's flag, and a repeated call
    /// changes nothing.
    package func fold(_ delta: @autoclosure () -> Matrix, merged: inout Bool, merging: Bool) {
        guard merged != merging else { return }
        axpy(merging ? 1 : -1, delta(), &weight)
        merged = merging
    }

    /// ∂x = G·W0 [N, in].
    package func backward(_ g: Matrix) -> Matrix { matmul(g, .n, weight, .n) }

    /// Accumulates ∂b = Σ_rows G when the bias trains.
    package func accumulateBiasGradient(_ g: Matrix) {
        if biasIsTrainable { addColumnSums(of: g, to: &bias.grad) }
    }
}

/// An adapter with dropout on its input: its mask generator is the one random state that a
/// checkpoint must carry to resume the run exactly.
package protocol DropoutAdapter: Adapter {
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
    package var generatorState: UInt64 {
        get { rng.state }
        set { rng = SplitMix64(seed: newValue) }
    }

    /// Whether the last `apply` changed its input.
    package var isActive: Bool { mask.count > 0 }

    package mutating func apply(_ x: Matrix, training: Bool) -> Matrix {
        guard training, probability > 0 else {
            mask = Matrix(rows: 0, cols: 0)
            return x
        }
        let keep = 1 / (1 - probability)
        mask = Matrix(rows: x.rows, cols: x.cols, storage: (0..<x.count).map { _ in rng.nextUnitFloat() < probability ? 0 : keep })
        return hadamard(x, mask)
    }

    /// D ⊙ g for the last mask (identity when no dropout was applied).
    package func masked(_ g: Matrix) -> Matrix { isActive ? hadamard(g, mask) : g }

    /// ∂x += D ⊙ (g·w): the adapter path's input gradient, masked as its input was.
    package func accumulateInputGradient(_ g: Matrix, _ w: Matrix, into gradInput: inout Matrix) {
        if isActive {
            axpy(1, masked(matmul(g, .n, w, .n)), &gradInput)
        } else {
            gemm(g, .n, w, .n, into: &gradInput, beta: 1)
        }
    }
}

/// r must be between 1 and min(in, out) of the base weight.
public func validateRank(_ r: Int, for base: Matrix) throws {
    guard r >= 1, r <= min(base.rows, base.cols) else {
        throw AdapterError.invalidRank(rank: r, inFeatures: base.cols, outFeatures: base.rows)
    }
}
