import LoRABenchKernels

/// How a model's frozen Linears hold W0: in float32; in 4-bit NormalFloat as QLoRA freezes its
/// base (Dettmers et al. 2023, §3), in blocks of `blockSize` with the block scales quantized again
/// when `doubleQuant` is set; or as the model's file stores them (a GGUF file's quantized blocks),
/// dequantized for each product: the numbers of float32, the memory of the file.
public enum BaseWeightFormat: Equatable, Hashable, Sendable, CustomStringConvertible {
    case float32
    case nf4(blockSize: Int, doubleQuant: Bool)
    case stored

    /// QLoRA's setting: blocks of 64, double quantization.
    public static let qlora = BaseWeightFormat.nf4(blockSize: NF4.defaultBlockSize, doubleQuant: true)

    /// `fp32`; `nf4` for QLoRA's setting, else `nf4-b<block size>` and `-single` without double
    /// quantization; `gguf` for the file's blocks. The name in manifests' results, ids and adapter metadata.
    public var description: String {
        switch self {
        case .float32:
            return "fp32"
        case .stored:
            return "gguf"
        case let .nf4(blockSize, doubleQuant):
            return "nf4" + (blockSize == NF4.defaultBlockSize ? "" : "-b\(blockSize)") + (doubleQuant ? "" : "-single")
        }
    }

    /// The format `description` names, or nil.
    public init?(_ name: String) {
        if name == "fp32" || name == "gguf" {
            self = name == "fp32" ? .float32 : .stored
            return
        }
        guard name.hasPrefix("nf4") else { return nil }
        var blockSize = NF4.defaultBlockSize, doubleQuant = true
        for part in name.split(separator: "-").dropFirst() {
            if part == "single" {
                doubleQuant = false
            } else if part.hasPrefix("b"), let size = Int(part.dropFirst()), NF4.allowedBlockSizes.contains(size) {
                blockSize = size
            } else {
                return nil
            }
        }
        guard name.split(separator: "-").first == "nf4" else { return nil }
        self = .nf4(blockSize: blockSize, doubleQuant: doubleQuant)
    }

    /// A frozen base in this format for W0 [out, in] and b [out]. The layers of one model pass one
    /// `buffer`, into which packed weights are dequantized for each product. `stored` keeps a packed
    /// weight as it is and a float32 one in float32.
    public func frozenLinear(weight: FrozenWeight, bias: Matrix?, trainBias: Bool = false, buffer: DequantizationBuffer) throws -> FrozenLinear {
        switch (self, weight) {
        case let (.stored, .packed(packed)):
            return try FrozenLinear(packed: packed, bias: bias, trainBias: trainBias, buffer: buffer)
        case (.float32, _), (.stored, .float32):
            return try FrozenLinear(weight: weight.dequantized(), bias: bias, trainBias: trainBias)
        case let (.nf4(blockSize, doubleQuant), _):
            return try FrozenLinear(quantizing: weight.dequantized(), blockSize: blockSize, doubleQuant: doubleQuant, bias: bias,
                                    trainBias: trainBias, buffer: buffer)
        }
    }

    /// `frozenLinear` for a float32 W0.
    public func frozenLinear(weight: Matrix, bias: Matrix?, trainBias: Bool = false, buffer: DequantizationBuffer) throws -> FrozenLinear {
        try frozenLinear(weight: .float32(weight), bias: bias, trainBias: trainBias, buffer: buffer)
    }
}

/// A frozen weight as a model file gives it: float32, or packed in the file's blocks.
public enum FrozenWeight: Sendable {
    case float32(Matrix)
    case packed(any PackedMatrix)

    public var rows: Int {
        switch self {
        case let .float32(matrix): matrix.rows
        case let .packed(packed): packed.rows
        }
    }

    public var cols: Int {
        switch self {
        case let .float32(matrix): matrix.cols
        case let .packed(packed): packed.cols
        }
    }

    public var count: Int { rows * cols }

    /// The float32 values: the matrix itself, or a new dequantized copy.
    public func dequantized() -> Matrix {
        switch self {
        case let .float32(matrix): matrix
        case let .packed(packed): packed.dequantized()
        }
    }
}
