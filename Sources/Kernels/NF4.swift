/// QLoRA's 4-bit NormalFloat storage (Dettmers et al. 2023, §3), bit for bit as bitsandbytes 0.50.2
/// computes it on the CPU: `quantize_4bit(quant_type="nf4")` (its torch kernel in
/// `backends/default/ops.py`), and with `compress_statistics` the double quantization of the block
/// scales by `quantize_blockwise` (the C kernel `quantize_cpu_impl` in `csrc/cpu_ops.cpp`).
///
/// A weight W [rows, cols] is flattened row-major and cut into blocks of `blockSize` values (the
/// last block may be shorter). Each block keeps its absolute maximum c = max|w|, and each value
/// the index of the NF4 code nearest to w / c: the blockwise absmax quantization of QLoRA's §2
/// (Eq. 1) onto the 16 NF4 values of §3 (Eq. 4) instead of an integer grid.

import CKernels

/// What a quantization was asked to do that it cannot, with what is allowed instead.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    case invalidBlockSize(Int)
    case nonFinite(shape: [Int])

    public var description: String {
        switch self {
        case let .invalidBlockSize(size):
            return "NF4 block size \(size) is not allowed: use a power of two from 32 to 4096 "
                + "(\(NF4.allowedBlockSizes.map(String.init).joined(separator: ", ")); bitsandbytes' quantize_4bit), 64 by default"
        case let .nonFinite(shape):
            return "the \(shape[0])x\(shape[1]) weight contains NaN or infinity, which has no NF4 block scale; "
                + "check the checkpoint or the run that produced it before quantizing"
        }
    }
}

/// The constants of NF4 and of the 8-bit dynamic map its double quantization uses.
public enum NF4 {
    /// The 16 NF4 values q_i in ascending order (QLoRA §3: quantiles of N(0, 1) normalised to
    /// [−1, 1], asymmetric so that 0 is exactly representable), as bitsandbytes'
    /// `get_4bit_type("nf4")` lists them (`create_normal_map(offset=0.9677083)` rounded to float32).
    public static let code: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    /// bitsandbytes' `quantize_4bit` accepts these block sizes and raises on any other.
    public static let allowedBlockSizes = [32, 64, 128, 256, 512, 1024, 2048, 4096]
    /// QLoRA's block size for the weights (§3, "Double Quantization": blocksize 64).
    public static let defaultBlockSize = 64
    /// The block size of the second quantization, over the first one's scales (QLoRA §3: 256).
    public static let nestedBlockSize = 256

    /// The decision boundaries between neighbouring codes, (q_i + q_{i+1}) / 2 in float32: a value
    /// exactly on one maps to the lower code (torch.bucketize, right=False).
    static let midpoints: [Float] = (0..<15).map { (code[$0] + code[$0 + 1]) / 2 }

    /// Scales are clamped below by this before dividing (torch `clamp(min=1e-38)`, a float32
    /// subnormal), so that an all-zero block quantizes to code 0.0 instead of NaN.
    static let smallestScale = Float(1e-38 as Double)

    /// bitsandbytes' signed 8-bit dynamic map, `create_dynamic_map(signed=True, max_exponent_bits=7,
    /// total_bits=8)` (Dettmers 2016, "8-Bit Approximations for Parallelism in Deep Learning"): for
    /// each exponent e = 0…6, the 2^e midpoints of `torch.linspace(0.1, 1, 2^e + 1)` scaled by
    /// ±10^(e−6), then 0 and 1, sorted ascending. The double quantization's nested code.
    public static let dynamicMap: [Float] = makeDynamicMap()

    /// bitsandbytes' CPU kernel does not search the code: it rounds v ∈ [−1, 1] to one of 65,536
    /// evenly spaced points and reads the code index from this table (`dynamicMapIndex`). Near a
    /// decision boundary, and wherever codes are closer than the grid's 2/65,535, that can pick the
    /// farther neighbour, which is why it is reproduced as is.
    static let dynamicMapLookup: [UInt8] = makeLookupTable(for: dynamicMap)

    static func validate(blockSize: Int) throws {
        guard allowedBlockSizes.contains(blockSize) else { throw QuantizationError.invalidBlockSize(blockSize) }
    }

    private static func makeDynamicMap() -> [Float] {
        var values: [Float] = []
        for exponent in 0..<7 {
            let bounds = linspace(from: 0.1, to: 1, steps: (1 << exponent) + 1)
            let means = (0..<(bounds.count - 1)).map { (bounds[$0] + bounds[$0 + 1]) / 2 }
            // torch multiplies by the Python float 10**(e−6) rounded to float32.
            let scale = Float([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1][exponent] as Double)
            values += means.map { scale * $0 }
            values += means.map { -scale * $0 }
        }
        values += [0, 1]
        return values.sorted()
    }

    /// torch.linspace in float32 on the CPU: start + step·i for the first half, end − step·(steps − 1 − i)
    /// for the second, each a fused multiply-add as torch's compiled kernel computes it.
    private static func linspace(from start: Float, to end: Float, steps: Int) -> [Float] {
        let step = (end - start) / Float(steps - 1)
        return (0..<steps).map { i in
            i < steps / 2 ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(steps - 1 - i))
        }
    }

    /// `build_quantize_lut`: entry i is the index of the code nearest to −1 + 2i/65535, found by
    /// walking the midpoints 0.5·(c_j + c_{j+1}) in float32.
    private static func makeLookupTable(for code: [Float]) -> [UInt8] {
        let midpoints = (0..<(code.count - 1)).map { 0.5 * (code[$0] + code[$0 + 1]) }
        var table = [UInt8](repeating: 0, count: 65_536)
        var index = 0
        for i in 0..<table.count {
            let value = -1 + (2 * Float(i)) / 65_535
            while index < midpoints.count, midpoints[index] < value { index += 1 }
            table[i] = UInt8(index)
        }
        return table
    }
}

/// The scales of an NF4 matrix: one float32 absmax per block, or those absmax values quantized a
/// second time (QLoRA §3, "Double Quantization").
public enum NF4Scales: Equatable, Sendable {
    case float32(absmax: [Float])
    case doubleQuantized(DoubleQuantizedScales)
}

/// QLoRA's double quantization of the block scales c₂ (§3): the mean is taken out (`offset`) and
/// the centred scales are quantized blockwise, 256 to a block, to 8 bits with bitsandbytes' dynamic
/// map (c₁ per nested block is `nestedAbsmax`). A scale is then dynamicMap[q]·c₁ + offset: 8 bits
/// per block and 32 per 256 blocks instead of 32 per block (0.127 bits per weight at block size
/// 64 instead of 0.5, §3).
public struct DoubleQuantizedScales: Equatable, Sendable {
    /// One 8-bit index into `NF4.dynamicMap` per block (bitsandbytes' `absmax` of the quant state).
    public let quantized: [UInt8]
    /// The absmax of each group of 256 centred scales (`state2.absmax`).
    public let nestedAbsmax: [Float]
    /// The mean of the block scales (`offset`).
    public let offset: Float

    /// Quantizes block scales as bitsandbytes' `quantize_4bit(compress_statistics=True)` does:
    /// `offset = absmax.mean()`, then `quantize_blockwise(absmax - offset, blocksize=256)`.
    public init(quantizing absmax: [Float]) {
        let offset = absmax.isEmpty ? 0 : sumInTorchOrder(absmax) / Float(absmax.count)
        let blockCount = (absmax.count + NF4.nestedBlockSize - 1) / NF4.nestedBlockSize
        var quantized = [UInt8](repeating: 0, count: absmax.count)
        var nestedAbsmax = [Float](repeating: 0, count: blockCount)
        for block in 0..<blockCount {
            let blockRange = (block * NF4.nestedBlockSize)..<min((block + 1) * NF4.nestedBlockSize, absmax.count)
            var largest: Float = 0
            for i in blockRange { largest = max(largest, abs(absmax[i] - offset)) }
            nestedAbsmax[block] = largest
            // An all-zero block keeps index 0 (the C kernel skips it), not the index of 0.0.
            guard largest != 0 else { continue }
            let inverse = 1 / largest
            for i in blockRange { quantized[i] = dynamicMapIndex((absmax[i] - offset) * inverse) }
        }
        self.quantized = quantized
        self.nestedAbsmax = nestedAbsmax
        self.offset = offset
    }

    /// The block scale that dequantization uses: dynamicMap[q]·c₁ + offset, two float32 roundings
    /// as bitsandbytes' `dequantize_blockwise` followed by `absmax += offset`.
    @inline(__always)
    func scale(ofBlock block: Int) -> Float {
        NF4.dynamicMap[Int(quantized[block])] * nestedAbsmax[block / NF4.nestedBlockSize] + offset
    }
}

/// The dynamic-map index bitsandbytes' CPU kernel gives a normalised value v: `norm_to_lut_index`
/// clamps v to [−1, 1] and maps it to the nearest of 65,536 points (rounding half up by truncating
/// v′ + 0.5), whose entry of the lookup table is the index. Not always the nearest code.
@inline(__always)
package func dynamicMapIndex(_ value: Float) -> UInt8 {
    let clamped = min(max(value, -1), 1)
    return NF4.dynamicMapLookup[Int((clamped + 1) * 0.5 * 65_535 + 0.5)]
}

/// A weight matrix in NF4: 4-bit code indices, two a byte, and the block scales. A value type
/// that holds no float32 copy of the weight; `dequantize(into:)` writes one into a caller's buffer.
public struct NF4Matrix: PackedMatrix, Equatable {
    public let rows: Int
    public let cols: Int
    public let blockSize: Int
    /// ⌈rows·cols / 2⌉ bytes: value 2k in the high nibble of byte k, value 2k + 1 in the low
    /// nibble (an odd count pads the last low nibble with the index of 0.0, as bitsandbytes does).
    public let packed: [UInt8]
    public let scales: NF4Scales

    /// Quantizes `weight` [rows, cols] in blocks of `blockSize` (a power of two from 32 to 4096),
    /// double-quantizing the block scales when `doubleQuant` is set (QLoRA's setting, and
    /// bitsandbytes' `Linear4bit` default).
    public init(quantizing weight: Matrix, blockSize: Int = NF4.defaultBlockSize, doubleQuant: Bool = true) throws {
        try NF4.validate(blockSize: blockSize)
        let count = weight.count
        var absmax = [Float](repeating: 0, count: (count + blockSize - 1) / blockSize)
        var packed = [UInt8](repeating: 0, count: (count + 1) / 2)
        let finite = weight.storage.withUnsafeBufferPointer { values in
            NF4.midpoints.withUnsafeBufferPointer { midpoints in
                lorabench_nf4_quantize(values.baseAddress, count, blockSize, midpoints.baseAddress, NF4.smallestScale, &absmax, &packed)
            }
        }
        guard finite == 1 else { throw QuantizationError.nonFinite(shape: weight.shape) }
        self.rows = weight.rows
        self.cols = weight.cols
        self.blockSize = blockSize
        self.packed = packed
        self.scales = doubleQuant ? .doubleQuantized(DoubleQuantizedScales(quantizing: absmax)) : .float32(absmax: absmax)
    }

    public var shape: [Int] { [rows, cols] }
    public var blockCount: Int { (rows * cols + blockSize - 1) / blockSize }
    public var isDoubleQuantized: Bool { if case .doubleQuantized = scales { true } else { false } }

    /// The bytes of what it stores: the packed codes and the scales (float32 absmax, or 8-bit
    /// indices + nested float32 absmax + the float32 offset).
    public var residentBytes: Int {
        switch scales {
        case let .float32(absmax):
            return packed.count + absmax.count * MemoryLayout<Float>.size
        case let .doubleQuantized(scales):
            return packed.count + scales.quantized.count + (scales.nestedAbsmax.count + 1) * MemoryLayout<Float>.size
        }
    }

    /// The scale of every block as dequantization uses it (after undoing double quantization).
    public var blockAbsmax: [Float] {
        switch scales {
        case let .float32(absmax): return absmax
        case let .doubleQuantized(scales): return (0..<blockCount).map { scales.scale(ofBlock: $0) }
        }
    }

    /// W ≈ code[index]·scale of its block, written into `output` [rows, cols] (no allocation).
    public func dequantize(into output: inout Matrix) {
        precondition(output.rows == rows && output.cols == cols, "dequantizing a \(shape) NF4 matrix into \(output.shape)")
        output.storage.withUnsafeMutableBufferPointer { values in
            switch scales {
            case let .float32(absmax):
                dequantizeNF4Blocks(packed, blockSize: blockSize, into: values) { absmax[$0] }
            case let .doubleQuantized(scales):
                dequantizeNF4Blocks(packed, blockSize: blockSize, into: values) { scales.scale(ofBlock: $0) }
            }
        }
    }

}

/// Blockwise absmax and NF4 indices of `values`, as bitsandbytes' CPU `quantize_4bit`: a full
/// block is scaled by the float32 reciprocal of its absmax, the last partial block is divided by
/// its absmax (clamped to 1e-38, and stored clamped), each clamped to [−1, 1]. absmax has one
/// entry per block, packed ⌈count / 2⌉ bytes.
/// Writes code[index]·scale(block) for every value: the high nibble first.
private func dequantizeNF4Blocks(_ packed: [UInt8], blockSize: Int, into values: UnsafeMutableBufferPointer<Float>,
                                 scale: (Int) -> Float) {
    let count = values.count
    NF4.code.withUnsafeBufferPointer { code in
        packed.withUnsafeBufferPointer { bytes in
            var start = 0, block = 0
            while start < count {
                let blockScale = scale(block), end = min(start + blockSize, count)
                var i = start
                while i < end {
                    let byte = bytes[i >> 1]
                    values[i] = code[Int(byte >> 4)] * blockScale
                    if i + 1 < end { values[i + 1] = code[Int(byte & 0x0F)] * blockScale }
                    i += 2
                }
                start = end
                block += 1
            }
        }
    }
}

/// Σx in the order torch's CPU `sum` adds float32 (`cascade_sum` in aten/src/ATen/native/cpu/
/// SumKernel.cpp, single-threaded, 8-lane vectors), so that the double quantization's offset,
/// `absmax.mean()` = sum / n, is bit-identical to bitsandbytes'. Above 32,768 values torch splits
/// the sum across its threads and its result then depends on the thread count; this is the
/// one-thread order.
package func sumInTorchOrder(_ x: [Float]) -> Float {
    let lanes = 8
    guard x.count >= lanes else { return cascadeRowSum(x, width: 1, items: x.count)[0] }
    let vectorCount = x.count / lanes
    let partials = cascadeRowSum(x, width: lanes, items: vectorCount)
    var total: Float = 0
    for i in (vectorCount * lanes)..<x.count { total += x[i] }
    for lane in 0..<lanes { total += partials[lane] }
    return total
}

/// torch's `row_sum` over `items` consecutive groups of `width` lanes: four interleaved running
/// sums (`multi_row_sum`), the leftover items added to the first, then the four added in order.
private func cascadeRowSum(_ x: [Float], width: Int, items: Int) -> [Float] {
    let interleave = 4
    let perSum = items / interleave
    var partials = cascadeMultiRowSum(x, width: width, interleave: interleave, count: perSum)
    for item in (perSum * interleave)..<items {
        for lane in 0..<width { partials[0][lane] += x[item * width + lane] }
    }
    for k in 1..<interleave {
        for lane in 0..<width { partials[0][lane] += partials[k][lane] }
    }
    return partials[0]
}

/// torch's `multi_row_sum`: `interleave` sums over `count` steps, each level adding 2^p chunks of
/// the level below (p = max(4, ⌈log₂ count⌉ / 4)), so that only numbers of similar size are added.
private func cascadeMultiRowSum(_ x: [Float], width: Int, interleave: Int, count: Int) -> [[Float]] {
    let levels = 4
    let ceilLog2 = count <= 2 ? 1 : Int.bitWidth - (count - 1).leadingZeroBitCount
    let levelPower = max(4, ceilLog2 / levels)
    let levelStep = 1 << levelPower, levelMask = levelStep - 1
    var acc = [[[Float]]](repeating: [[Float]](repeating: [Float](repeating: 0, count: width), count: interleave), count: levels)
    func addStep(_ i: Int) {
        for k in 0..<interleave {
            for lane in 0..<width { acc[0][k][lane] += x[(i * interleave + k) * width + lane] }
        }
    }
    var i = 0
    while i + levelStep <= count {
        for _ in 0..<levelStep {
            addStep(i)
            i += 1
        }
        for level in 1..<levels {
            for k in 0..<interleave {
                for lane in 0..<width {
                    acc[level][k][lane] += acc[level - 1][k][lane]
                    acc[level - 1][k][lane] = 0
                }
            }
            if i & (levelMask << (level * levelPower)) != 0 { break }
        }
    }
    while i < count {
        addStep(i)
        i += 1
    }
    for level in 1..<levels {
        for k in 0..<interleave {
            for lane in 0..<width { acc[0][k][lane] += acc[level][k][lane] }
        }
    }
    return acc[0]
}
