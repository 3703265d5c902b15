import Testing
@testable import LoRABenchKernels

/// NF4 storage (QLoRA §3) on small hand-made weights: the layout, the scales, the errors. The
/// bit-exact comparison with bitsandbytes is the fixture suite (`NF4FixtureTests`).
@Suite struct NF4Tests {
    @Test(arguments: [0, 16, 48, 63, 100, 8192, -64])
    func blockSizesOtherThanBitsandbytesOnesAreThrownErrors(_ blockSize: Int) {
        #expect(throws: QuantizationError.invalidBlockSize(blockSize)) {
            try NF4Matrix(quantizing: .zeros(4, 64), blockSize: blockSize)
        }
        #expect("\(QuantizationError.invalidBlockSize(blockSize))".contains("32, 64, 128, 256, 512, 1024, 2048, 4096"))
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func aNonFiniteWeightIsAThrownError(_ value: Float) {
        var weight = Matrix(rows: 2, cols: 32, repeating: 0.5)
        weight[1, 7] = value
        #expect(throws: QuantizationError.nonFinite(shape: [2, 32])) { try NF4Matrix(quantizing: weight, blockSize: 32) }
    }

    @Test func theFirstValueOfAPairIsInTheHighNibbleAndAnOddCountPadsWithTheIndexOfZero() throws {
        // −1 is code 0, 1 is code 15, 0 is code 7, 0.5 lies nearest to 0.4407 (code 12).
        let weight = Matrix([[-1, 1, 0], [0.5, 1, -1], [0, 0, 1]])
        let quantized = try NF4Matrix(quantizing: weight, blockSize: 32, doubleQuant: false)
        #expect(quantized.packed == [0x0F, 0x7C, 0xF0, 0x77, 0xF7])
        #expect(quantized.scales == .float32(absmax: [1]))
    }

    @Test func aValueOnADecisionBoundaryTakesTheLowerCode() throws {
        // (q_7 + q_8)/2 goes to q_7 and (q_6 + q_7)/2 to q_6, with the block's absmax 1.
        let quantized = try NF4Matrix(quantizing: Matrix([[NF4.midpoints[7], NF4.midpoints[6], 1, 0]]), blockSize: 32, doubleQuant: false)
        #expect(quantized.packed == [0x76, 0xF7])
    }

    /// Each value's code is the number of midpoints strictly below it, on, just below and just
    /// above every midpoint (the kernel finds it in four comparisons, not fifteen).
    @Test func everyCodeIsTheCountOfMidpointsBelowItsValue() throws {
        let values: [Float] = NF4.midpoints.flatMap { [$0.nextDown, $0, $0.nextUp] } + [-1, 1]
        let quantized = try NF4Matrix(quantizing: Matrix([values]), blockSize: 64, doubleQuant: false)
        let codes = values.indices.map { i in i.isMultiple(of: 2) ? quantized.packed[i / 2] >> 4 : quantized.packed[i / 2] & 0x0F }
        #expect(codes == values.map { value in UInt8(NF4.midpoints.filter { $0 < value }.count) })
    }

    @Test func dequantizationIsTheCodeTimesItsBlockScale() throws {
        var rng = SplitMix64(seed: 4)
        let weight = Matrix.gaussian(6, 50, std: 0.1, using: &rng)
        let quantized = try NF4Matrix(quantizing: weight, blockSize: 64, doubleQuant: false)
        var output = Matrix(rows: 6, cols: 50)
        quantized.dequantize(into: &output)
        let absmax = quantized.blockAbsmax
        #expect(absmax.count == 5, "300 values in blocks of 64: four full blocks and one of 44")
        for i in 0..<weight.count {
            let byte = quantized.packed[i / 2]
            let index = Int(i % 2 == 0 ? byte >> 4 : byte & 0x0F)
            #expect(output.storage[i] == NF4.code[index] * absmax[i / 64])
            #expect(abs(output.storage[i] - weight.storage[i]) <= 0.17 * absmax[i / 64], "farther than half the widest code gap")
        }
        #expect(quantized.dequantized() == output)
    }

    @Test func anAllZeroBlockDequantizesToZeroAndAPartialOneKeepsTheClampedScale() throws {
        var weight = Matrix(rows: 3, cols: 40, repeating: 0)
        for c in 0..<40 { weight[0, c] = Float(c) / 40 }
        let quantized = try NF4Matrix(quantizing: weight, blockSize: 32, doubleQuant: false)
        // Blocks 2 and 3 hold only zeros; block 3 is the partial last one (120 = 3·32 + 24).
        let expected: [Float] = [31 / 40, 39 / 40, 0, Float(1e-38 as Double)]
        #expect(quantized.blockAbsmax == expected)
        #expect(quantized.dequantized().storage[64...].allSatisfy { $0 == 0 })
    }

    @Test func doubleQuantizationStoresEightBitScalesAroundTheirMean() throws {
        var rng = SplitMix64(seed: 8)
        let weight = Matrix.gaussian(64, 64, std: 0.05, using: &rng)
        let single = try NF4Matrix(quantizing: weight, doubleQuant: false)
        let double = try NF4Matrix(quantizing: weight, doubleQuant: true)
        #expect(double.packed == single.packed, "double quantization changes only the scales")
        guard case let .doubleQuantized(scales) = double.scales, case let .float32(absmax) = single.scales else {
            Issue.record("unexpected scales")
            return
        }
        #expect(scales.quantized.count == 64 && scales.nestedAbsmax.count == 1)
        #expect(scales.offset == sumInTorchOrder(absmax) / 64)
        let largest = absmax.map { abs($0 - scales.offset) }.max()!
        #expect(scales.nestedAbsmax == [largest])
        for (restored, original) in zip(double.blockAbsmax, absmax) {
            #expect(abs(restored - original) <= 0.02 * largest, "an 8-bit scale is within a code step of the original")
        }
    }

    @Test func residentBytesCountThePackedCodesAndTheScales() throws {
        let weight = Matrix(rows: 64, cols: 64, repeating: 0.25)
        #expect(try NF4Matrix(quantizing: weight, doubleQuant: false).residentBytes == 2048 + 64 * 4)
        // 64 one-byte scales, one nested float32 absmax, the float32 offset.
        #expect(try NF4Matrix(quantizing: weight, doubleQuant: true).residentBytes == 2048 + 64 + 4 + 4)
    }

    @Test func theDynamicMapIsBitsandbytesSigned8BitMap() {
        let map = NF4.dynamicMap
        #expect(map.count == 256)
        #expect(zip(map, map.dropFirst()).allSatisfy { $0 < $1 }, "sorted, no repeats")
        // Values as bitsandbytes 0.50.2 returns them: ±0.99296874 (the largest midpoint of the
        // finest linspace), ±5.5e-7 (10⁻⁶ times the midpoint of [0.1, 1]), 0 and 1.
        #expect(map[0].bitPattern == 3_212_718_899 && map[254].bitPattern == 1_065_235_251 && map[255] == 1)
        #expect(map[126].bitPattern == 3_037_963_191 && map[127] == 0 && map[128].bitPattern == 890_479_543)
    }

    /// bitsandbytes' CPU kernel picks codes through a 65,536-point grid, not the nearest code;
    /// values and indices from bitsandbytes 0.50.2's `quantize_blockwise` (block absmax 1).
    @Test(arguments: [(Float(bitPattern: 977_843_343), UInt8(141), UInt8(140)),
                      (Float(bitPattern: 1_051_092_452), 207, 206),
                      (Float(bitPattern: 3_207_410_408), 22, 23),
                      (Float(bitPattern: 1_063_701_732), 247, 248)])
    func eightBitIndicesAreBitsandbytesGridLookupNotTheNearestCode(value: Float, bitsandbytes: UInt8, nearest: UInt8) {
        let distances = NF4.dynamicMap.map { abs(Double($0) - Double(value)) }
        #expect(distances.firstIndex(of: distances.min()!) == Int(nearest))
        #expect(dynamicMapIndex(value) == bitsandbytes)
    }

    @Test func sumsAddInTorchsOrder() {
        // torch.sum of 1/1 … 1/100 in float32 (torch 2.15, one thread) is one ulp above the correctly
        // rounded sum: its 8 lanes and cascade levels round differently.
        let values = (1...100).map { 1 / Float($0) }
        #expect(sumInTorchOrder(values).bitPattern == 1_084_620_544)
        #expect(Float(values.reduce(0.0) { $0 + Double($1) }).bitPattern == 1_084_620_543)
        #expect(sumInTorchOrder([1, 2, 3]) == 6)
        #expect(sumInTorchOrder([]) == 0)
    }
}
