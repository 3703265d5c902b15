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
    /// Accumulates every parameter's gradient for the last forward's input, and stores ∂L/∂x
    /// [N, in] into `gradInput` (reshaped as needed) or, with `accumulate`, adds it there: a model
    /// summing the gradients of several Linears that read one input (Q, K, V) lets sgemm add
    /// into its buffer (β = 1) instead of taking a new matrix to add.
    func backward(_ gradOutput: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws
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
    /// Accumulates every parameter's gradient for the last forward's input and returns ∂L/∂x.
    public func backward(_ gradOutput: Matrix) throws -> Matrix {
        var gradInput = Matrix.zeros(0, 0)
        try backward(gradOutput, into: &gradInput, accumulate: false)
        return gradInput
    }

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
///
/// W0 is held in float32, or packed: in NF4 for a QLoRA base (Dettmers et al. 2023, §3: the frozen
/// weight in 4 bits, dequantized to the compute type for each product, with the adapter in float32
/// on top), or in the quantized blocks of the model's GGUF file. A packed base never keeps a
/// float32 W0 of its own: `withWeight` dequantizes it into a `DequantizationBuffer` that the layers
/// of a model share. Merging a packed base stores the merged weight, dequantized W0 + ΔW, in
/// float32 (unlike peft, which quantizes an NF4 one again, lossily); unmerging gives the packed W0
/// back exactly.
public final class FrozenLinear {
    /// A packed W0 and the buffer it is dequantized into.
    private struct Packed {
        let weight: any PackedMatrix
        let buffer: DequantizationBuffer
    }

    private enum Storage {
        case float32(Matrix)
        case packed(Packed)
        /// A merged packed base: the float32 merged weight, and the packed W0 that unmerge restores.
        case mergedPacked(merged: Matrix, original: Packed)
    }

    private var storage: Storage
    /// b [1, out].
    public let bias: Parameter
    public var biasIsTrainable: Bool
    public let inFeatures: Int
    public let outFeatures: Int

    private init(storage: Storage, outFeatures: Int, inFeatures: Int, bias: Matrix?, trainBias: Bool) throws {
        let bias = bias ?? Matrix(rows: 1, cols: outFeatures)
        guard bias.count == outFeatures else {
            throw AdapterError.shapeMismatch(what: "base bias", found: bias.shape, expected: [1, outFeatures])
        }
        self.storage = storage
        self.bias = Parameter("base_layer.bias", role: .bias, value: bias.reshaped(1, outFeatures))
        self.biasIsTrainable = trainBias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// A float32 base W0 = `weight` [out, in].
    public convenience init(weight: Matrix, bias: Matrix? = nil, trainBias: Bool = false) throws {
        try self.init(storage: .float32(weight), outFeatures: weight.rows, inFeatures: weight.cols, bias: bias, trainBias: trainBias)
    }

    /// A base whose W0 stays packed (NF4, a GGUF file's blocks). Layers of one model should pass
    /// one shared `buffer`.
    public convenience init(packed weight: any PackedMatrix, bias: Matrix? = nil, trainBias: Bool = false,
                            buffer: DequantizationBuffer = DequantizationBuffer()) throws {
        try self.init(storage: .packed(Packed(weight: weight, buffer: buffer)), outFeatures: weight.rows, inFeatures: weight.cols,
                      bias: bias, trainBias: trainBias)
    }

    /// A QLoRA base: `weight` [out, in] quantized to NF4 in blocks of `blockSize`, its block scales
    /// quantized again when `doubleQuant` is set (QLoRA §3). Layers of one model should pass one
    /// shared `buffer`.
    public convenience init(quantizing weight: Matrix, blockSize: Int = NF4.defaultBlockSize, doubleQuant: Bool = true,
                            bias: Matrix? = nil, trainBias: Bool = false, buffer: DequantizationBuffer = DequantizationBuffer()) throws {
        try self.init(packed: NF4Matrix(quantizing: weight, blockSize: blockSize, doubleQuant: doubleQuant), bias: bias,
                      trainBias: trainBias, buffer: buffer)
    }

    /// Quantizes the bases of one model to NF4 with one shared dequantization buffer, so that at
    /// most one float32 weight per distinct shape exists at a time.
    public static func quantize(_ bases: [FrozenLinear], blockSize: Int = NF4.defaultBlockSize, doubleQuant: Bool = true) throws {
        let buffer = DequantizationBuffer()
        for base in bases { try base.quantize(blockSize: blockSize, doubleQuant: doubleQuant, buffer: buffer) }
    }

    /// Replaces this float32 base's W0 by its NF4 quantization, dequantized into `buffer` on use.
    public func quantize(blockSize: Int = NF4.defaultBlockSize, doubleQuant: Bool = true,
                         buffer: DequantizationBuffer = DequantizationBuffer()) throws {
        guard case let .float32(weight) = storage else { preconditionFailure("only an unmerged float32 base can be quantized") }
        storage = .packed(Packed(weight: try NF4Matrix(quantizing: weight, blockSize: blockSize, doubleQuant: doubleQuant), buffer: buffer))
    }

    /// Whether W0 is held packed and dequantized for every product (false again once merged).
    public var isQuantized: Bool { if case .packed = storage { true } else { false } }

    /// W0 in NF4 while the base is held in NF4 (also while merged, as the weight unmerge restores).
    public var quantizedWeight: NF4Matrix? {
        switch storage {
        case .float32: return nil
        case let .packed(packed), let .mergedPacked(_, packed): return packed.weight as? NF4Matrix
        }
    }

    /// W0 [out, in] in float32 (torch `nn.Linear` layout), the merged weight while merged. For a
    /// packed base this is a new dequantized copy: for initialisation, merging and analyses; the
    /// training loop goes through `withWeight`.
    public var weight: Matrix {
        switch storage {
        case let .float32(weight), let .mergedPacked(weight, _): return weight
        case let .packed(packed): return packed.weight.dequantized()
        }
    }

    /// Bytes of what the base keeps: its weight (float32 or packed, both while a packed base is
    /// merged) and its bias; the shared dequantization buffer is counted by its owner.
    public var residentBytes: Int {
        let biasBytes = bias.count * MemoryLayout<Float>.size
        switch storage {
        case let .float32(weight): return weight.count * MemoryLayout<Float>.size + biasBytes
        case let .packed(packed): return packed.weight.residentBytes + biasBytes
        case let .mergedPacked(merged, original): return merged.count * MemoryLayout<Float>.size + original.weight.residentBytes + biasBytes
        }
    }

    /// Calls `body` with W0 [out, in] in float32: the stored weight, or the packed weight
    /// dequantized into the shared buffer (valid during the call only).
    package func withWeight<Result>(_ body: (Matrix) throws -> Result) rethrows -> Result {
        switch storage {
        case let .float32(weight), let .mergedPacked(weight, _): return try body(weight)
        case let .packed(packed): return try packed.buffer.withDequantized(packed.weight, body)
        }
    }

    /// Replaces W0 by `newWeight` [out, in] (PiSSA's or OLoRA's residual). An NF4 base quantizes
    /// it again with its block size and double quantization, as peft does for a bitsandbytes 4-bit
    /// base. A GGUF block base keeps the residual in float32: transformers, the reference, trains
    /// on the file's weights dequantized to float32, so peft's residual is never quantized again.
    public func replaceWeight(_ newWeight: Matrix) throws {
        guard newWeight.rows == outFeatures, newWeight.cols == inFeatures else {
            throw AdapterError.shapeMismatch(what: "replacement base weight", found: newWeight.shape, expected: [outFeatures, inFeatures])
        }
        switch storage {
        case .float32:
            storage = .float32(newWeight)
        case let .packed(packed):
            guard let weight = packed.weight as? NF4Matrix else {
                storage = .float32(newWeight)
                return
            }
            storage = .packed(Packed(weight: try NF4Matrix(quantizing: newWeight, blockSize: weight.blockSize, doubleQuant: weight.isDoubleQuantized),
                                     buffer: packed.buffer))
        case .mergedPacked:
            preconditionFailure("replacing the base weight of a merged layer")
        }
    }

    /// y = x·W0ᵀ + b.
    package func forward(_ x: Matrix) -> Matrix { withWeight { forward(x, weight: $0) } }

    /// y = x·Wᵀ + b for a weight of the base's shape (an adapter's effective weight). The bias rows
    /// are written first so that sgemm adds into them (β = 1): one pass over y instead of two.
    package func forward(_ x: Matrix, weight w: Matrix) -> Matrix {
        var y = Matrix(repeatingRow: bias.value, count: x.rows)
        gemm(x, .n, w, .t, into: &y, beta: 1)
        return y
    }

    /// Merges into the base: `apply` turns W0 into the merged weight in place. A float32 W0 is
    /// changed where it is; a packed W0 is dequantized first and kept aside for `unmergeWeight`.
    package func mergeWeight(_ apply: (inout Matrix) -> Void) {
        switch storage {
        case .float32:
            updateFloat32Weight(apply)
        case let .packed(original):
            var merged = original.weight.dequantized()
            apply(&merged)
            storage = .mergedPacked(merged: merged, original: original)
        case .mergedPacked:
            preconditionFailure("merging a base that is already merged")
        }
    }

    /// Undoes `mergeWeight`: a packed base gets its W0 back exactly; a float32 one applies `undo`
    /// to the merged weight in place (W0 up to float rounding).
    package func unmergeWeight(_ undo: (inout Matrix) -> Void) {
        switch storage {
        case .float32:
            updateFloat32Weight(undo)
        case let .mergedPacked(_, original):
            storage = .packed(original)
        case .packed:
            preconditionFailure("unmerging a base that is not merged")
        }
    }

    /// Changes the float32 weight in place: the storage lets go of it first, so it is not copied.
    private func updateFloat32Weight(_ change: (inout Matrix) -> Void) {
        guard case var .float32(weight) = storage else { preconditionFailure("the base weight is not float32") }
        storage = .float32(.zeros(0, 0))
        change(&weight)
        storage = .float32(weight)
    }

    /// W0 + ΔW when merging, W0 again when unmerging, for an adapter whose merged weight is the
    /// base plus its update (LoRA, AdaLoRA); `merged` is the adapter's flag, and a repeated call
    /// changes nothing.
    package func fold(_ delta: @autoclosure () -> Matrix, merged: inout Bool, merging: Bool) {
        guard merged != merging else { return }
        if merging {
            mergeWeight { axpy(1, delta(), &$0) }
        } else {
            unmergeWeight { axpy(-1, delta(), &$0) }
        }
        merged = merging
    }

    /// ∂x = G·W0 [N, in], stored into `gradInput` or added to it.
    package func backward(_ g: Matrix, into gradInput: inout Matrix, accumulate: Bool) {
        withWeight { gemm(g, .n, $0, .n, into: &gradInput, beta: accumulate ? 1 : 0) }
    }

    /// Accumulates ∂b = Σ_rows G when the bias trains.
    package func accumulateBiasGradient(_ g: Matrix) {
        if biasIsTrainable { addColumnSums(of: g, to: &bias.grad) }
    }
}

/// The float32 scratch that packed bases dequantize W0 into for one product at a time: one matrix
/// per weight shape, so the layers of a model that share it hold a few float32 weights in all
/// instead of one each. A model's layers run one after another on one thread; a buffer must not
/// be shared across threads.
public final class DequantizationBuffer {
    private struct Shape: Hashable {
        let rows: Int
        let cols: Int
    }

    private var matrices: [Shape: Matrix] = [:]

    public init() {}

    /// Bytes of the float32 matrices it holds.
    public var residentBytes: Int { matrices.values.reduce(0) { $0 + $1.count * MemoryLayout<Float>.size } }

    /// Dequantizes `weight` into the matrix of its shape and calls `body` with it. The matrix is
    /// taken out while in use, so a nested call for the same shape gets a matrix of its own.
    func withDequantized<Result>(_ weight: any PackedMatrix, _ body: (Matrix) throws -> Result) rethrows -> Result {
        let shape = Shape(rows: weight.rows, cols: weight.cols)
        var matrix = matrices.removeValue(forKey: shape) ?? Matrix(uninitializedRows: weight.rows, cols: weight.cols)
        weight.dequantize(into: &matrix)
        defer { matrices[shape] = matrix }
        return try body(matrix)
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
public func validateRank(_ r: Int, for base: FrozenLinear) throws {
    guard r >= 1, r <= min(base.outFeatures, base.inFeatures) else {
        throw AdapterError.invalidRank(rank: r, inFeatures: base.inFeatures, outFeatures: base.outFeatures)
    }
}
