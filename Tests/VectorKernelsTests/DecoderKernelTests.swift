@testable import LoRABenchKernels
import Foundation
import Testing

/// The Llama decoder's C passes (whichever vector width this CPU dispatches to: RMSNorm, RoPE,
/// SwiGLU, the causal softmax, the LM loss) against plain Swift loops that spell the same
/// operations in the same order, bit for bit.
@Suite struct DecoderKernelTests {
    /// Cephes' e^x (x ≤ 0) one element at a time: a lane of the SIMD8 reference.
    static func exp(_ x: Float) -> Float { vectorExp(SIMD8(repeating: x))[0] }

    static func gaussians(_ count: Int, seed: UInt64, std: Float = 1) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in rng.nextGaussian() * std }
    }

    // MARK: RMSNorm

    static func referenceRMSNormForward(rows: Range<Int>, width: Int, _ x: [Float], weight: [Float], epsilon: Float,
                                        output: inout [Float], inverses: inout [Float]) {
        for r in rows {
            let sumOfSquares = laneSum(width) { x[r * width + $0] * x[r * width + $0] }
            let inverse = 1 / (sumOfSquares / Float(width) + epsilon).squareRoot()
            inverses[r] = inverse
            for c in 0..<width { output[r * width + c] = weight[c] * (x[r * width + c] * inverse) }
        }
    }

    static func referenceRMSNormBackward(rows: Range<Int>, width: Int, _ g: [Float], input x: [Float], weight: [Float], inverses: [Float],
                                         accumulate: Bool, into out: inout [Float]) {
        for r in rows {
            let projection = laneSum(width) { g[r * width + $0] * weight[$0] * x[r * width + $0] }
            let s = inverses[r]
            let correction = s * s * s * projection / Float(width)
            for c in 0..<width {
                let value = s * g[r * width + c] * weight[c] - correction * x[r * width + c]
                out[r * width + c] = accumulate ? out[r * width + c] + value : value
            }
        }
    }

    @Test(arguments: [1, 7, 8, 13, 576, 581])
    func rmsNormGivesTheBitsOfTheSwiftLoops(width: Int) {
        let rows = 5, chunk = 1..<rows
        let x = Self.gaussians(rows * width, seed: UInt64(width)).enumerated().map { $1 * 3 + Float($0 / width) }
        let weight = Self.gaussians(width, seed: 2).map { 1 + $0 * 0.1 }
        let gradient = Self.gaussians(rows * width, seed: 3)
        var (output, inverses) = ([Float](repeating: 0, count: rows * width), [Float](repeating: 0, count: rows))
        var (expectedOutput, expectedInverses) = (output, inverses)
        rmsNormForward(rows: chunk, width: width, x, weight: weight, epsilon: 1e-5, output: &output, inverses: &inverses)
        Self.referenceRMSNormForward(rows: chunk, width: width, x, weight: weight, epsilon: 1e-5, output: &expectedOutput, inverses: &expectedInverses)
        #expect(output.map(\.bitPattern) == expectedOutput.map(\.bitPattern), "y")
        #expect(inverses.map(\.bitPattern) == expectedInverses.map(\.bitPattern), "1/rms")
        #expect(output[0..<width].allSatisfy { $0 == 0 } && inverses[0] == 0, "row 0 is outside the chunk and stays unwritten")
        for accumulate in [false, true] {
            var (stored, expected) = (Self.gaussians(rows * width, seed: 4), Self.gaussians(rows * width, seed: 4))
            rmsNormBackward(rows: chunk, width: width, gradient, input: x, weight: weight, inverses: inverses, accumulate: accumulate, into: &stored)
            Self.referenceRMSNormBackward(rows: chunk, width: width, gradient, input: x, weight: weight, inverses: inverses,
                                          accumulate: accumulate, into: &expected)
            #expect(stored.map(\.bitPattern) == expected.map(\.bitPattern), "∂x, accumulate: \(accumulate)")
        }
    }

    // MARK: RoPE

    @Test(arguments: [(2, 1), (16, 3), (64, 9), (64, 3)])
    func ropeGivesTheBitsOfTheSwiftLoop(headSize: Int, heads: Int) {
        let rows = 4, half = headSize / 2, stride = heads * headSize + 5  // a wider buffer than the heads, as attention's rows are not
        let x = Self.gaussians(rows * stride, seed: 5)
        let angles = (0..<(rows * half)).map { Float($0 % 37) * 0.37 }
        let cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
        for sign: Float in [1, -1] {
            var rotated = x, expected = x
            ropeRows(1..<rows, heads: heads, headSize: headSize, &rotated, stride: stride, cos: cos, sin: sin, sineSign: sign)
            for r in 1..<rows {
                for h in 0..<heads {
                    for j in 0..<half {
                        let (first, second) = (r * stride + h * headSize + j, r * stride + h * headSize + j + half)
                        let (x1, x2, sine) = (x[first], x[second], sign * sin[r * half + j])
                        expected[first] = x1 * cos[r * half + j] - x2 * sine
                        expected[second] = x2 * cos[r * half + j] + x1 * sine
                    }
                }
            }
            #expect(rotated.map(\.bitPattern) == expected.map(\.bitPattern), "sign \(sign)")
        }
    }

    // MARK: SwiGLU

    static func sigmoid(_ g: Float) -> Float {
        let e = exp(-abs(g))
        let inverse = 1 / (1 + e)
        return g >= 0 ? inverse : e * inverse
    }

    @Test(arguments: [1, 15, 16, 1000])
    func swigluGivesTheBitsOfTheSwiftLoops(count: Int) {
        // Gates over SiLU's whole range, the saturated ends and ±0 included.
        var gate = Self.gaussians(count, seed: 6, std: 4)
        for (index, value) in [Float(0), -0, 30, -30, 100, -100].enumerated() where index < count { gate[index] = value }
        let up = Self.gaussians(count, seed: 7), upstream = Self.gaussians(count, seed: 8)
        var output = [Float](repeating: 0, count: count), gradGate = output, gradUp = output
        swigluForward(gate: gate, up: up, into: &output, count: count)
        swigluBackward(upstream, gate: gate, up: up, gradGate: &gradGate, gradUp: &gradUp, count: count)
        let expectedOutput = (0..<count).map { gate[$0] * Self.sigmoid(gate[$0]) * up[$0] }
        let expectedGradUp = (0..<count).map { upstream[$0] * gate[$0] * Self.sigmoid(gate[$0]) }
        let expectedGradGate = (0..<count).map { i -> Float in
            let s = Self.sigmoid(gate[i])
            return upstream[i] * up[i] * s * (1 + gate[i] * (1 - s))
        }
        #expect(output.map(\.bitPattern) == expectedOutput.map(\.bitPattern), "SiLU(gate)·up")
        #expect(gradUp.map(\.bitPattern) == expectedGradUp.map(\.bitPattern), "∂up")
        #expect(gradGate.map(\.bitPattern) == expectedGradGate.map(\.bitPattern), "∂gate")
        // σ as 1/(1 + e^(−g)) in Double: the kernel's SiLU is within a few float ulps of it.
        for i in 0..<count {
            let exact = Double(gate[i]) / (1 + Foundation.exp(-Double(gate[i]))) * Double(up[i])
            #expect(abs(Double(output[i]) - exact) <= 1e-6 * max(abs(exact), 1e-30) + 1e-37, "SiLU at gate \(gate[i])")
        }
    }

    // MARK: Causal softmax

    static func referenceCausalSoftmax(_ scores: inout [Float], rows: Int, stride: Int, lastVisible: Int, keyBias: [Float]) {
        for i in 0..<rows {
            let base = i * stride, count = min(lastVisible + i + 1, stride)
            for j in 0..<count { scores[base + j] += keyBias[j] }
            let maximum = scores[base..<base + count].max()!
            guard maximum > -.infinity else {
                for j in 0..<stride { scores[base + j] = 0 }
                continue
            }
            let sum = laneSum(count) { j in
                let e = exp(scores[base + j] - maximum)
                scores[base + j] = e
                return e
            }
            let inverse = 1 / sum
            for j in 0..<count { scores[base + j] *= inverse }
            for j in count..<stride { scores[base + j] = 0 }
        }
    }

    static func referenceCausalSoftmaxBackward(_ grad: inout [Float], probabilities: [Float], rows: Int, stride: Int, lastVisible: Int) {
        for i in 0..<rows {
            let base = i * stride, count = min(lastVisible + i + 1, stride)
            let weighted = laneSum(count) { probabilities[base + $0] * grad[base + $0] }
            for j in 0..<count { grad[base + j] = probabilities[base + j] * (grad[base + j] - weighted) }
            for j in count..<stride { grad[base + j] = 0 }
        }
    }

    /// Blocks as attention runs them: the first rows of a sequence, a later block, a KV cache's one
    /// query row over many keys, and padded keys (the first keys of a left-padded row see none).
    @Test(arguments: [(16, 128, 0, false), (16, 128, 48, false), (1, 37, 36, false), (5, 9, 0, true), (16, 20, 3, true)])
    func causalSoftmaxGivesTheBitsOfTheSwiftLoops(rows: Int, stride: Int, lastVisible: Int, padded: Bool) {
        let scores = Self.gaussians(rows * stride, seed: 9, std: 3).map { $0 + 0.5 }
        let keyBias = (0..<stride).map { j -> Float in padded && (j < 2 || j % 4 == 3) ? -.infinity : 0 }
        var actual = scores, expected = scores
        causalSoftmaxRows(&actual, rows: rows, stride: stride, lastVisible: lastVisible, keyBias: keyBias)
        Self.referenceCausalSoftmax(&expected, rows: rows, stride: stride, lastVisible: lastVisible, keyBias: keyBias)
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern), "P")
        for i in 0..<rows {
            let row = actual[i * stride..<(i + 1) * stride], count = min(lastVisible + i + 1, stride)
            let sum = row.reduce(0, +)
            let seesAToken = (0..<count).contains { keyBias[$0] == 0 }
            #expect(seesAToken ? abs(sum - 1) < 1e-5 : sum == 0, "row \(i) sums to \(sum)")
            #expect(row.dropFirst(count).allSatisfy { $0 == 0 }, "row \(i) is zero after its last visible key")
        }
        let upstream = Self.gaussians(rows * stride, seed: 10)
        var gradient = upstream, expectedGradient = upstream
        causalSoftmaxBackwardRows(&gradient, probabilities: actual, rows: rows, stride: stride, lastVisible: lastVisible)
        Self.referenceCausalSoftmaxBackward(&expectedGradient, probabilities: actual, rows: rows, stride: stride, lastVisible: lastVisible)
        #expect(gradient.map(\.bitPattern) == expectedGradient.map(\.bitPattern), "∂S")
    }

    // MARK: Cross-entropy

    static func referenceCrossEntropy(_ logits: inout [Float], rows: Range<Int>, vocabulary: Int, targets: [Int], totalRows: Int,
                                      losses: inout [Double]) {
        let whole = vocabulary - vocabulary % 8
        for r in rows {
            let base = r * vocabulary
            let maximum = logits[base..<base + vocabulary].max()!, target = logits[base + targets[r]]
            var lanes = [Double](repeating: 0, count: 8)
            for j in stride(from: 0, to: whole, by: 8) {
                for l in 0..<8 {
                    let e = exp(logits[base + j + l] - maximum)
                    logits[base + j + l] = e
                    lanes[l] += Double(e)
                }
            }
            var sum: Double = 0
            for l in 0..<8 { sum += lanes[l] }
            for j in whole..<vocabulary {
                logits[base + j] = exp(logits[base + j] - maximum)
                sum += Double(logits[base + j])
            }
            losses[r] = Foundation.log(sum) + Double(maximum) - Double(target)
            let inverse = Float(1 / (sum * Double(totalRows)))
            for j in 0..<vocabulary { logits[base + j] *= inverse }
            logits[base + targets[r]] -= 1 / Float(totalRows)
        }
    }

    @Test(arguments: [3, 16, 1001, 49152])
    func crossEntropyGivesTheBitsOfTheSwiftLoop(vocabulary: Int) {
        let rows = 4
        let logits = Self.gaussians(rows * vocabulary, seed: 11, std: 4)
        let targets = (0..<rows).map { ($0 * 7919) % vocabulary }
        var actual = logits, expected = logits
        var losses = [Double](repeating: 0, count: rows), expectedLosses = losses
        crossEntropyRows(1..<rows, vocabulary: vocabulary, &actual, targets: targets, totalRows: rows, losses: &losses)
        Self.referenceCrossEntropy(&expected, rows: 1..<rows, vocabulary: vocabulary, targets: targets, totalRows: rows, losses: &expectedLosses)
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern), "∂logits")
        #expect(losses.map(\.bitPattern) == expectedLosses.map(\.bitPattern), "row losses")
        #expect(actual[0..<vocabulary] == logits[0..<vocabulary] && losses[0] == 0, "row 0 is outside the chunk and stays unwritten")
        // Against log-sum-exp in Double: Cephes' exponential is within ~1 ulp of libm's.
        for r in 1..<rows {
            let row = logits[r * vocabulary..<(r + 1) * vocabulary].map(Double.init), top = row.max()!
            let exact = Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - top) }) + top - row[targets[r]]
            #expect(abs(losses[r] - exact) <= 1e-6 * max(1, abs(exact)), "row \(r): \(losses[r]) against \(exact)")
        }
    }
}
