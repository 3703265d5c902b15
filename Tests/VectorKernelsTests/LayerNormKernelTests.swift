@testable import LoRABenchKernels
import Testing

/// LayerNorm's C rows (whichever vector width this CPU dispatches to) against the Swift loops they
/// replaced, bit for bit: moving them to C must not move a single number.
@Suite struct LayerNormKernelTests {
    /// The replaced forward over rows `rows`: x + residual staged in x̂'s row and normalized in place.
    static func referenceForward(rows: Range<Int>, width: Int, _ input: UnsafePointer<Float>, adding added: UnsafePointer<Float>?,
                                 gains: UnsafePointer<Float>, shifts: UnsafePointer<Float>, epsilon: Float,
                                 normalized xhat: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                                 inverses: UnsafeMutablePointer<Float>) {
        for r in rows {
            let row = xhat + r * width
            if let added {
                for c in 0..<width { row[c] = input[r * width + c] + added[r * width + c] }
            } else {
                row.update(from: input + r * width, count: width)
            }
            let mean = laneSum(width) { row[$0] } / Float(width)
            let variance = laneSum(width) { (row[$0] - mean) * (row[$0] - mean) } / Float(width)
            let inverse = 1 / (variance + epsilon).squareRoot()
            inverses[r] = inverse
            for c in 0..<width {
                let value = (row[c] - mean) * inverse
                row[c] = value
                output[r * width + c] = value * gains[c] + shifts[c]
            }
        }
    }

    /// The replaced backward: ∂x = (1/σ)·(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)), g = γ ⊙ ∂y, in place.
    static func referenceBackward(rows: Range<Int>, width: Int, _ gradient: UnsafeMutablePointer<Float>,
                                  normalized xhat: UnsafePointer<Float>, gains: UnsafePointer<Float>, inverses: UnsafePointer<Float>) {
        for r in rows {
            let g = gradient + r * width, n = xhat + r * width
            let meanG = laneSum(width) { g[$0] * gains[$0] } / Float(width)
            let meanGX = laneSum(width) { g[$0] * gains[$0] * n[$0] } / Float(width)
            let inverse = inverses[r]
            for c in 0..<width { g[c] = inverse * (g[c] * gains[c] - meanG - n[c] * meanGX) }
        }
    }

    struct Outputs: Equatable {
        var normalized: [UInt32], output: [UInt32], inverses: [UInt32], gradient: [UInt32]
    }

    /// Forward over rows 1..<rows (row 0 left alone, as a worker's chunk), then backward.
    static func run(width: Int, rows: Int, withResidual: Bool, reference: Bool) -> Outputs {
        var rng = SplitMix64(seed: UInt64(width * 10 + rows))
        // A large common offset per row, where a one-pass variance would lose digits.
        let input = (0..<(rows * width)).map { i in rng.nextGaussian() * 2 + Float(i / width) * 100 }
        let residual = (0..<(rows * width)).map { _ in rng.nextGaussian() }
        let gains = (0..<width).map { _ in 1 + rng.nextGaussian() * 0.1 }, shifts = (0..<width).map { _ in rng.nextGaussian() * 0.1 }
        var normalized = [Float](repeating: 0, count: rows * width), output = normalized, inverses = [Float](repeating: 0, count: rows)
        var gradient = (0..<(rows * width)).map { _ in rng.nextGaussian() }
        let chunk = 1..<rows
        input.withUnsafeBufferPointer { x in
            residual.withUnsafeBufferPointer { added in
                gains.withUnsafeBufferPointer { g in
                    shifts.withUnsafeBufferPointer { b in
                        normalized.withUnsafeMutableBufferPointer { n in
                            output.withUnsafeMutableBufferPointer { y in
                                inverses.withUnsafeMutableBufferPointer { s in
                                    let added = withResidual ? added.baseAddress : nil
                                    if reference {
                                        referenceForward(rows: chunk, width: width, x.baseAddress!, adding: added, gains: g.baseAddress!, shifts: b.baseAddress!,
                                                         epsilon: 1e-12, normalized: n.baseAddress!, output: y.baseAddress!, inverses: s.baseAddress!)
                                    } else {
                                        layerNormForward(rows: chunk, width: width, x.baseAddress!, adding: added, gains: g.baseAddress!, shifts: b.baseAddress!,
                                                         epsilon: 1e-12, normalized: n.baseAddress!, output: y.baseAddress!, inverses: s.baseAddress!)
                                    }
                                }
                            }
                        }
                        normalized.withUnsafeBufferPointer { n in
                            inverses.withUnsafeBufferPointer { s in
                                gradient.withUnsafeMutableBufferPointer { d in
                                    if reference {
                                        referenceBackward(rows: chunk, width: width, d.baseAddress!, normalized: n.baseAddress!, gains: g.baseAddress!, inverses: s.baseAddress!)
                                    } else {
                                        layerNormBackward(rows: chunk, width: width, d.baseAddress!, normalized: n.baseAddress!, gains: g.baseAddress!, inverses: s.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Outputs(normalized: normalized.map(\.bitPattern), output: output.map(\.bitPattern),
                       inverses: inverses.map(\.bitPattern), gradient: gradient.map(\.bitPattern))
    }

    @Test(arguments: [(1, false), (7, true), (8, false), (11, true), (384, true), (384, false), (389, true)])
    func theKernelsGiveTheBitsOfTheSwiftLoops(width: Int, withResidual: Bool) {
        let actual = Self.run(width: width, rows: 5, withResidual: withResidual, reference: false)
        let expected = Self.run(width: width, rows: 5, withResidual: withResidual, reference: true)
        #expect(actual.normalized == expected.normalized, "x̂")
        #expect(actual.output == expected.output, "y")
        #expect(actual.inverses == expected.inverses, "1/σ")
        #expect(actual.gradient == expected.gradient, "∂x")
        #expect(actual.output[0..<width].allSatisfy { $0 == 0 } && actual.inverses[0] == 0, "row 0 is outside the chunk and stays unwritten")
    }
}
