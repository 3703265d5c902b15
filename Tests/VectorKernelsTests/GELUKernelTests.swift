@testable import LoRABenchKernels
import Testing

/// The C GELU kernel (whichever vector width this CPU dispatches to) against the Swift SIMD8
/// loop it replaced, bit for bit: the optimisation must not move a single number.
@Suite struct GELUKernelTests {
    /// erf by Abramowitz & Stegun 7.1.26, as the Swift kernel computed it before the C one.
    static func referenceErf(_ x: SIMD8<Float>, expNegativeSquare: SIMD8<Float>) -> SIMD8<Float> {
        let magnitude = unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
        let t = 1 / (1 + 0.327_591_1 * magnitude)
        var r = SIMD8<Float>(repeating: 1.061_405_429)
        r = r * t - 1.453_152_027
        r = r * t + 1.421_413_741
        r = r * t - 0.284_496_736
        r = r * t + 0.254_829_592
        let positive = 1 - r * t * expNegativeSquare
        return positive.replacing(with: -positive, where: x .< 0)
    }

    /// The replaced Swift loop: GELU in place, GELU′ into `slopes`.
    static func referenceGELU(_ values: inout [Float], _ slopes: inout [Float]) {
        values.withUnsafeMutableBufferPointer { pv in
            slopes.withUnsafeMutableBufferPointer { ps in
                var i = 0
                while i < pv.count {
                    let lanes = min(8, pv.count - i)
                    let x = loadLanes(pv.baseAddress! + i, lanes)
                    let z = x * Float(0.5).squareRoot()
                    let gaussian = vectorExp(-(z * z))
                    let cdf = 0.5 * (1 + referenceErf(z, expNegativeSquare: gaussian))
                    storeLanes(x * cdf, pv.baseAddress! + i, lanes)
                    storeLanes(cdf + x * gaussian * (1 / Float(2 * Float.pi).squareRoot()), ps.baseAddress! + i, lanes)
                    i += lanes
                }
            }
        }
    }

    static func kernelGELU(_ values: inout [Float], _ slopes: inout [Float]) {
        let inputs = values
        inputs.withUnsafeBufferPointer { pi in
            values.withUnsafeMutableBufferPointer { pv in
                slopes.withUnsafeMutableBufferPointer { ps in
                    gelu(pi.baseAddress!, into: pv.baseAddress!, derivative: ps.baseAddress!, count: pi.count)
                }
            }
        }
    }

    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 4_099])
    func theKernelGivesTheBitsOfTheSwiftLoop(count: Int) {
        var rng = SplitMix64(seed: UInt64(count))
        let edges: [Float] = [0, -0.0, 1, -1, 5.5, -5.5, 13, -13, 200, -200, 1e-30, -1e-30, .leastNonzeroMagnitude,
                              -.greatestFiniteMagnitude, .greatestFiniteMagnitude, .infinity, -.infinity]
        let inputs = (0..<count).map { i in i < edges.count && count > 100 ? edges[i] : rng.nextGaussian() * 4 }
        var (expected, expectedSlopes) = (inputs, [Float](repeating: .nan, count: count))
        var (actual, actualSlopes) = (inputs, [Float](repeating: .nan, count: count))
        Self.referenceGELU(&expected, &expectedSlopes)
        Self.kernelGELU(&actual, &actualSlopes)
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(actualSlopes.map(\.bitPattern) == expectedSlopes.map(\.bitPattern))
    }
}
