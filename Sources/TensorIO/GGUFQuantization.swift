import Foundation

/// A GGML tensor type: its id in a GGUF tensor info, its name, and the block layout that sizes
/// its data (`blockSize` values stored in `typeSize` bytes).
///
/// The table is gguf-py's `GGML_QUANT_SIZES` (gguf-py/gguf/constants.py), so that a file holding
/// a type this reader cannot dequantize still opens and its other tensors stay readable; only
/// `isDequantizable` types can be turned into floats. An id outside the table cannot be sized, so
/// a tensor of that type makes the file unreadable.
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    public let id: UInt32
    public let name: String
    /// Values per block: 1 for the plain float types, 32 for Q4_0, Q4_1 and Q8_0.
    public let blockSize: Int
    /// Bytes per block.
    public let typeSize: Int

    public var description: String { name }

    public static let f32 = GGMLType(id: 0, name: "F32", blockSize: 1, typeSize: 4)
    public static let f16 = GGMLType(id: 1, name: "F16", blockSize: 1, typeSize: 2)
    public static let q4_0 = GGMLType(id: 2, name: "Q4_0", blockSize: 32, typeSize: 2 + 16)
    public static let q4_1 = GGMLType(id: 3, name: "Q4_1", blockSize: 32, typeSize: 2 + 2 + 16)
    public static let q8_0 = GGMLType(id: 8, name: "Q8_0", blockSize: 32, typeSize: 2 + 32)
    public static let bf16 = GGMLType(id: 30, name: "BF16", blockSize: 1, typeSize: 2)

    /// The types `GGUFFile` dequantizes, bit for bit as gguf-py's `gguf.quants.dequantize`.
    public static let dequantizable: Set<GGMLType> = [.f32, .f16, .bf16, .q4_0, .q4_1, .q8_0]

    public var isDequantizable: Bool { Self.dequantizable.contains(self) }

    /// Every type gguf-py knows, by id (ids 4, 5 and 31–33 were removed from ggml).
    static let known: [UInt32: GGMLType] = {
        let superBlock = 256
        let types: [GGMLType] = [
            .f32, .f16, .q4_0, .q4_1,
            GGMLType(id: 6, name: "Q5_0", blockSize: 32, typeSize: 2 + 4 + 16),
            GGMLType(id: 7, name: "Q5_1", blockSize: 32, typeSize: 2 + 2 + 4 + 16),
            .q8_0,
            GGMLType(id: 9, name: "Q8_1", blockSize: 32, typeSize: 4 + 4 + 32),
            GGMLType(id: 10, name: "Q2_K", blockSize: superBlock, typeSize: 2 + 2 + superBlock / 16 + superBlock / 4),
            GGMLType(id: 11, name: "Q3_K", blockSize: superBlock, typeSize: 2 + superBlock / 4 + superBlock / 8 + 12),
            GGMLType(id: 12, name: "Q4_K", blockSize: superBlock, typeSize: 2 + 2 + superBlock / 2 + 12),
            GGMLType(id: 13, name: "Q5_K", blockSize: superBlock, typeSize: 2 + 2 + superBlock / 2 + superBlock / 8 + 12),
            GGMLType(id: 14, name: "Q6_K", blockSize: superBlock, typeSize: 2 + superBlock / 2 + superBlock / 4 + superBlock / 16),
            GGMLType(id: 15, name: "Q8_K", blockSize: superBlock, typeSize: 4 + superBlock + superBlock / 8),
            GGMLType(id: 16, name: "IQ2_XXS", blockSize: superBlock, typeSize: 2 + superBlock / 4),
            GGMLType(id: 17, name: "IQ2_XS", blockSize: superBlock, typeSize: 2 + superBlock / 4 + superBlock / 32),
            GGMLType(id: 18, name: "IQ3_XXS", blockSize: superBlock, typeSize: 2 + superBlock / 4 + superBlock / 8),
            GGMLType(id: 19, name: "IQ1_S", blockSize: superBlock, typeSize: 2 + superBlock / 8 + superBlock / 16),
            GGMLType(id: 20, name: "IQ4_NL", blockSize: 32, typeSize: 2 + 16),
            GGMLType(id: 21, name: "IQ3_S", blockSize: superBlock, typeSize: 2 + superBlock / 4 + superBlock / 8 + superBlock / 32 + 4),
            GGMLType(id: 22, name: "IQ2_S", blockSize: superBlock, typeSize: 2 + superBlock / 4 + superBlock / 16),
            GGMLType(id: 23, name: "IQ4_XS", blockSize: superBlock, typeSize: 2 + 2 + superBlock / 2 + superBlock / 64),
            GGMLType(id: 24, name: "I8", blockSize: 1, typeSize: 1),
            GGMLType(id: 25, name: "I16", blockSize: 1, typeSize: 2),
            GGMLType(id: 26, name: "I32", blockSize: 1, typeSize: 4),
            GGMLType(id: 27, name: "I64", blockSize: 1, typeSize: 8),
            GGMLType(id: 28, name: "F64", blockSize: 1, typeSize: 8),
            GGMLType(id: 29, name: "IQ1_M", blockSize: superBlock, typeSize: superBlock / 8 + superBlock / 16 + superBlock / 32),
            .bf16,
            GGMLType(id: 34, name: "TQ1_0", blockSize: superBlock, typeSize: 2 + 4 * 13),
            GGMLType(id: 35, name: "TQ2_0", blockSize: superBlock, typeSize: 2 + 64),
            GGMLType(id: 39, name: "MXFP4", blockSize: 32, typeSize: 1 + 16),
        ]
        return Dictionary(uniqueKeysWithValues: types.map { ($0.id, $0) })
    }()

    /// The type with GGUF id `id`, nil when gguf-py does not know it.
    public static func withID(_ id: UInt32) -> GGMLType? { known[id] }
}

/// The block decoders, one per dequantizable type. Each writes `blocks` blocks starting at
/// `source` (the mapped file's bytes, so every load is unaligned and little-endian) to
/// `destination`, computing exactly what gguf-py's `dequantize_blocks` computes in NumPy:
/// the float16 scales are widened exactly, and each value is one float32 product (plus one
/// float32 sum for Q4_1). The products d·q are exact (an 11-bit mantissa times an integer below
/// 2^8), so Q4_1's `d·q + m` rounds once whether or not the compiler fuses it.
enum GGMLBlockDecoder {
    static func decode(_ type: GGMLType, blocks: Int, from source: UnsafeRawPointer, to destination: UnsafeMutablePointer<Float>) {
        switch type {
        case .f32: f32(count: blocks, source, destination)
        case .f16: f16(count: blocks, source, destination)
        case .bf16: bf16(count: blocks, source, destination)
        case .q4_0: q4_0(blocks: blocks, source, destination)
        case .q4_1: q4_1(blocks: blocks, source, destination)
        case .q8_0: q8_0(blocks: blocks, source, destination)
        default: preconditionFailure("\(type) has no block decoder; callers check isDequantizable first")
        }
    }

    @inline(__always)
    private static func half(_ source: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }

    /// gguf-py: `data.view(np.float32)`, the bits as stored.
    private static func f32(count: Int, _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>) {
        for index in 0..<count {
            destination[index] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
        }
    }

    /// gguf-py: `data.view(np.float16).astype(np.float32)`, an exact widening.
    private static func f16(count: Int, _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>) {
        for index in 0..<count { destination[index] = half(source, 2 * index) }
    }

    /// gguf-py: `(blocks.view(np.int16).astype(np.int32) << 16).view(np.float32)`: the 16 stored
    /// bits become the high half of a float32 (the sign extension is shifted out).
    private static func bf16(count: Int, _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>) {
        for index in 0..<count {
            let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))
            destination[index] = Float(bitPattern: UInt32(bits) << 16)
        }
    }

    /// 18 bytes: float16 d, 16 bytes of nibbles; element j = d·((qs[j] & 0xF) − 8), element
    /// j + 16 = d·((qs[j] >> 4) − 8) (gguf-py `Q4_0.dequantize_blocks`).
    private static func q4_0(blocks: Int, _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blocks {
            let base = source + block * GGMLType.q4_0.typeSize
            let scale = half(base, 0)
            let output = destination + block * 32
            for j in 0..<16 {
                let packed = base.load(fromByteOffset: 2 + j, as: UInt8.self)
                output[j] = scale * Float(Int8(packed & 0x0F) - 8)
                output[j + 16] = scale * Float(Int8(packed >> 4) - 8)
            }
        }
    }

    /// 20 bytes: float16 d, float16 m, 16 bytes of nibbles; element j = d·(qs[j] & 0xF) + m,
    /// element j + 16 = d·(qs[j] >> 4) + m (gguf-py `Q4_1.dequantize_blocks`: `(d * qs) + m`).
    private static func q4_1(blocks: Int, _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blocks {
            let base = source + block * GGMLType.q4_1.typeSize
            let scale = half(base, 0), minimum = half(base, 2)
            let output = destination + block * 32
            for j in 0..<16 {
                let packed = base.load(fromByteOffset: 4 + j, as: UInt8.self)
                output[j] = scale * Float(packed & 0x0F) + minimum
                output[j + 16] = scale * Float(packed >> 4) + minimum
            }
        }
    }

    /// 34 bytes: float16 d, 32 signed bytes q; element j = q[j]·d (gguf-py `Q8_0.dequantize_blocks`).
    private static func q8_0(blocks: Int, _ source: UnsafeRawPointer, _ destination: UnsafeMutablePointer<Float>) {
        for block in 0..<blocks {
            let base = source + block * GGMLType.q8_0.typeSize
            let scale = half(base, 0)
            let output = destination + block * 32
            for j in 0..<32 {
                output[j] = Float(base.load(fromByteOffset: 2 + j, as: Int8.self)) * scale
            }
        }
    }
}
