import LoRABenchKernels

/// How a model's frozen Linears hold W0: in float32, or in 4-bit NormalFloat as QLoRA freezes
/// its base (Dettmers et al. 2023, §3), in blocks of `blockSize` with the block scales quantized
/// again when `doubleQuant` is set.
public enum BaseWeightFormat: Equatable, Hashable, Sendable, CustomStringConvertible {
    case float32
    case nf4(blockSize: Int, doubleQuant: Bool)

    /// QLoRA's setting: blocks of 64, double quantization.
    public static let qlora = BaseWeightFormat.nf4(blockSize: NF4.defaultBlockSize, doubleQuant: true)

    /// `fp32`; `nf4` for QLoRA's setting, else `nf4-b<block size>` and `-single` without double
    /// quantization. The name in manifests' results, ids and adapter metadata.
    public var description: String {
        switch self {
        case .float32:
            return "fp32"
        case let .nf4(blockSize, doubleQuant):
            return "nf4" + (blockSize == NF4.defaultBlockSize ? "" : "-b\(blockSize)") + (doubleQuant ? "" : "-single")
        }
    }

    /// The format `description` names, or nil.
    public init?(_ name: String) {
        if name == "fp32" {
            self = .float32
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
    /// `buffer`, into which NF4 weights are dequantized for each product.
    public func frozenLinear(weight: Matrix, bias: Matrix?, trainBias: Bool = false, buffer: DequantizationBuffer) throws -> FrozenLinear {
        switch self {
        case .float32:
            return try FrozenLinear(weight: weight, bias: bias, trainBias: trainBias)
        case let .nf4(blockSize, doubleQuant):
            return try FrozenLinear(quantizing: weight, blockSize: blockSize, doubleQuant: doubleQuant, bias: bias, trainBias: trainBias,
                                    buffer: buffer)
        }
    }
}
