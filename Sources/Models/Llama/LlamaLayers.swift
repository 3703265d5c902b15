import Foundation
import LoRABenchKernels
import LoRABenchAdapters

// The Llama decoder's layers as transformers' `modeling_llama.py` computes them in float32
// (decoder-spec.md, "One forward pass"). Shapes: N = B·T token rows, C hidden width, D head size,
// H query heads, G key/value heads, KV = G·D, F the SwiGLU width. Each forward keeps what its
// backward will need and says so.

/// One Linear of the decoder (no bias): the adapter that replaced it, or the frozen weight alone.
package enum LlamaLinear {
    case frozen(FrozenLinear)
    case adapted(any Adapter)

    /// x [N, in] → y [N, out], always a new matrix: adapters keep their input, and DoRA its output,
    /// for backward, so a reused buffer would be copied on write instead.
    package func forward(_ x: Matrix, training: Bool) throws -> Matrix {
        switch self {
        case let .adapted(adapter):
            return try adapter.forward(x, training: training)
        case let .frozen(linear):
            var y = Matrix.uninitializedActivation(x.rows, linear.outFeatures)
            linear.withWeight { gemm(x, .n, $0, .t, into: &y) }
            return y
        }
    }

    /// ∂L/∂y [N, out] → ∂L/∂x [N, in], stored into `gradInput` or, with `accumulate`, added to it
    /// (Q, K and V read one input); an adapter also accumulates its parameter gradients.
    package func backward(_ gradOutput: Matrix, into gradInput: inout Matrix, accumulate: Bool) throws {
        switch self {
        case let .adapted(adapter):
            try adapter.backward(gradOutput, into: &gradInput, accumulate: accumulate)
        case let .frozen(linear):
            linear.backward(gradOutput, into: &gradInput, accumulate: accumulate)
        }
    }

    /// Parameter gradients only, for a layer whose input needs no gradient: nothing to do when frozen.
    package func backwardParameters(_ gradOutput: Matrix) throws {
        if case let .adapted(adapter) = self { _ = try adapter.backward(gradOutput) }
    }

    package var isAdapted: Bool {
        if case .adapted = self { return true }
        return false
    }
}

/// Token embedding: out[n] = E[ids[n]] ([N, C] from E [vocab, C]).
package enum LlamaEmbedding {
    package static func forward(inputIDs: [Int], table: Matrix, into out: inout Matrix) {
        let width = table.cols
        out.ensureShapeForOverwrite(inputIDs.count, width)
        table.storage.withUnsafeBufferPointer { source in
            out.storage.withUnsafeMutableBufferPointer { target in
                for (row, id) in inputIDs.enumerated() {
                    (target.baseAddress! + row * width).update(from: source.baseAddress! + id * width, count: width)
                }
            }
        }
    }
}

/// RMSNorm as `LlamaRMSNorm` computes it: the mean of squares in float32, y = w ⊙ (x · rsqrt(ms + ε)).
package struct RMSNorm {
    package let weight: Matrix  // [1, C]
    package let epsilon: Float

    /// x [N, C] → y [N, C]; `inverseRMS` [N] receives rsqrt(ms + ε) per row, which backward needs.
    package func forward(_ x: Matrix, into y: inout Matrix, inverseRMS: inout [Float]) {
        let rows = x.rows, width = x.cols
        y.ensureShapeForOverwrite(rows, width)
        if inverseRMS.count != rows { inverseRMS = [Float](repeating: 0, count: rows) }
        x.storage.withUnsafeBufferPointer { input in
            weight.storage.withUnsafeBufferPointer { gamma in
                y.storage.withUnsafeMutableBufferPointer { output in
                    inverseRMS.withUnsafeMutableBufferPointer { scales in
                        let (input, gamma, output, scales) = (input.baseAddress!, gamma.baseAddress!, output.baseAddress!, scales.baseAddress!)
                        for row in 0..<rows {
                            let source = input + row * width, target = output + row * width
                            var sumOfSquares: Float = 0
                            for j in 0..<width { sumOfSquares += source[j] * source[j] }
                            let scale = 1 / (sumOfSquares / Float(width) + epsilon).squareRoot()
                            scales[row] = scale
                            // transformers rounds x·rsqrt first, then multiplies by the weight.
                            for j in 0..<width { target[j] = gamma[j] * (source[j] * scale) }
                        }
                    }
                }
            }
        }
    }

    /// ∂L/∂y [N, C] → ∂L/∂x [N, C] for the forward's input x and its `inverseRMS` s, stored into
    /// `gradInput` or, with `accumulate`, added to it (the residual stream's gradient). With
    /// g' = ∂y ⊙ w: ∂x_j = s·g'_j − s³·x_j·(Σ_k g'_k·x_k)/C.
    package func backward(_ gradOutput: Matrix, input x: Matrix, inverseRMS: [Float], into gradInput: inout Matrix, accumulate: Bool) {
        let rows = x.rows, width = x.cols
        precondition(gradOutput.shape == x.shape && inverseRMS.count == rows, "RMSNorm backward of \(gradOutput.shape) for input \(x.shape)")
        if accumulate {
            precondition(gradInput.shape == x.shape, "RMSNorm accumulates into \(gradInput.shape), expected \(x.shape)")
        } else {
            gradInput.ensureShapeForOverwrite(rows, width)
        }
        gradOutput.storage.withUnsafeBufferPointer { upstream in
            x.storage.withUnsafeBufferPointer { input in
                weight.storage.withUnsafeBufferPointer { gamma in
                    gradInput.storage.withUnsafeMutableBufferPointer { output in
                        let (upstream, input, gamma, output) = (upstream.baseAddress!, input.baseAddress!, gamma.baseAddress!, output.baseAddress!)
                        for row in 0..<rows {
                            let g = upstream + row * width, source = input + row * width, target = output + row * width
                            let scale = inverseRMS[row]
                            var projection: Float = 0
                            for j in 0..<width { projection += g[j] * gamma[j] * source[j] }
                            let correction = scale * scale * scale * projection / Float(width)
                            for j in 0..<width {
                                let value = scale * g[j] * gamma[j] - correction * source[j]
                                target[j] = accumulate ? target[j] + value : value
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Rotary position embedding as transformers' Llama applies it: inv_freq_j = θ^(−2j/D) in float32,
/// angle = p·inv_freq_j, and x' = x·cos + rotate_half(x)·sin with rotate_half([x1, x2]) = [−x2, x1]
/// over the two halves of each head, so element j pairs with j + D/2.
package struct RotaryEmbedding {
    package let headSize: Int
    /// inv_freq [D/2], computed as `1.0 / (base ** (arange(0, D, 2).float() / D))` in float32.
    package let inverseFrequencies: [Float]

    package init(headSize: Int, theta: Float) {
        self.headSize = headSize
        inverseFrequencies = (0..<headSize / 2).map { 1 / Foundation.pow(theta, Float(2 * $0) / Float(headSize)) }
    }

    /// cos and sin [N, D/2] of each row's angles (the second half of transformers' [angles, angles]
    /// repeats the first); backward rotates by the same tables.
    package func tables(positions: [Int], cos: inout Matrix, sin: inout Matrix) {
        let half = headSize / 2
        cos.ensureShapeForOverwrite(positions.count, half)
        sin.ensureShapeForOverwrite(positions.count, half)
        for (row, position) in positions.enumerated() {
            for j in 0..<half {
                let angle = Float(position) * inverseFrequencies[j]
                cos.storage[row * half + j] = Foundation.cos(angle)
                sin.storage[row * half + j] = Foundation.sin(angle)
            }
        }
    }

    /// Rotates every head of x [N, heads·D] in place by its row's angles.
    package func apply(to x: inout Matrix, cos: Matrix, sin: Matrix) { rotate(&x, cos: cos, sin: sin, sineSign: 1) }

    /// Rotates by the opposite angles: the rotation's transpose, which carries ∂L/∂x' back to ∂L/∂x.
    package func applyInverse(to x: inout Matrix, cos: Matrix, sin: Matrix) { rotate(&x, cos: cos, sin: sin, sineSign: -1) }

    /// x' = x·cos + rotate_half(x)·(sign·sin); a sign of ±1 changes no bit of the product.
    private func rotate(_ x: inout Matrix, cos: Matrix, sin: Matrix, sineSign: Float) {
        let half = headSize / 2, width = x.cols, heads = x.cols / headSize
        precondition(cos.rows == x.rows && cos.cols == half, "RoPE tables [\(cos.rows), \(cos.cols)] for \(x.rows) rows of head size \(headSize)")
        cos.storage.withUnsafeBufferPointer { cosines in
            sin.storage.withUnsafeBufferPointer { sines in
                x.storage.withUnsafeMutableBufferPointer { values in
                    for row in 0..<x.rows {
                        let c = cosines.baseAddress! + row * half, s = sines.baseAddress! + row * half
                        for head in 0..<heads {
                            let first = values.baseAddress! + row * width + head * headSize, second = first + half
                            for j in 0..<half {
                                let (x1, x2, sine) = (first[j], second[j], sineSign * s[j])
                                first[j] = x1 * c[j] - x2 * sine
                                second[j] = x2 * c[j] + x1 * sine
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where attention reads its keys and values: B blocks of `rowsPerSequence` rows (the current
/// batch's k and v, or a KV cache whose rows beyond `length` are unused), and which of them are
/// real tokens (1) or padding (0).
package struct AttentionKeys {
    package var keys: Matrix       // [B·rowsPerSequence, KV]
    package var values: Matrix     // [B·rowsPerSequence, KV]
    package var mask: [Int]        // [B·rowsPerSequence]
    package var rowsPerSequence: Int
    /// Keys 0..<length of each block are attended.
    package var length: Int
}

/// Grouped-query causal attention (`LlamaAttention` with sdpa): query head i reads key/value head
/// ⌊i / (H/G)⌋; scores q·kᵀ/√D, masked where a key lies after the query (causal) or is padding,
/// softmax, times v. The last Tq of the `length` keys are the queries' own positions.
package struct GroupedQueryAttention {
    package let headCount: Int
    package let keyValueHeadCount: Int
    package let headSize: Int
    /// P [B, H, Tq, Tk] of the last forward, which backward needs.
    package private(set) var probabilities: [Float] = []

    package init(headCount: Int, keyValueHeadCount: Int, headSize: Int) {
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount
        self.headSize = headSize
    }

    /// query [B·Tq, H·D] (RoPE applied) → context [B·Tq, H·D], heads side by side as `o_proj` reads them.
    /// A query that may attend no key (a left-padding row before any token) gets a zero context:
    /// its output is never read, and zeros keep NaN out of the rows that are.
    package mutating func forward(query: Matrix, keys source: AttentionKeys, batchSize: Int, into context: inout Matrix) {
        let queryLength = query.rows / batchSize, keyLength = source.length
        let width = headCount * headSize, keyWidth = keyValueHeadCount * headSize, group = headCount / keyValueHeadCount
        let scale = 1 / Float(headSize).squareRoot()
        let blockSize = queryLength * keyLength
        if probabilities.count != batchSize * headCount * blockSize {
            probabilities = [Float](repeating: 0, count: batchSize * headCount * blockSize)
        }
        context.ensureShapeForOverwrite(query.rows, width)
        query.storage.withUnsafeBufferPointer { q in
            source.keys.storage.withUnsafeBufferPointer { k in
                source.values.storage.withUnsafeBufferPointer { v in
                    probabilities.withUnsafeMutableBufferPointer { p in
                        context.storage.withUnsafeMutableBufferPointer { out in
                            for batch in 0..<batchSize {
                                let keyRow = batch * source.rowsPerSequence
                                let mask = source.mask[keyRow..<keyRow + keyLength]
                                for head in 0..<headCount {
                                    let kvHead = head / group
                                    let scores = p.baseAddress! + (batch * headCount + head) * blockSize
                                    let queries = q.baseAddress! + batch * queryLength * width + head * headSize
                                    let keys = k.baseAddress! + keyRow * keyWidth + kvHead * headSize
                                    let values = v.baseAddress! + keyRow * keyWidth + kvHead * headSize
                                    gemm(.n, .t, m: queryLength, n: keyLength, k: headSize, alpha: scale, queries, lda: width,
                                         keys, ldb: keyWidth, beta: 0, scores, ldc: keyLength)
                                    for row in 0..<queryLength {
                                        // Query row `row` sits at key index row + keyLength − queryLength.
                                        let lastVisible = row + keyLength - queryLength
                                        Self.maskedSoftmax(scores + row * keyLength, count: keyLength, lastVisible: lastVisible, mask: mask)
                                    }
                                    gemm(.n, .n, m: queryLength, n: headSize, k: keyLength, alpha: 1, scores, lda: keyLength,
                                         values, ldb: keyWidth, beta: 0,
                                         out.baseAddress! + batch * queryLength * width + head * headSize, ldc: width)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// ∂L/∂context [B·T, H·D] → ∂L/∂q [B·T, H·D], ∂L/∂k and ∂L/∂v [B·T, G·D] for the last forward,
    /// which attended within the batch (no cache) over the same `query`, `keys` and `values`
    /// (q and k with RoPE applied). Per head, with P the kept probabilities:
    /// ∂P = ∂O·Vᵀ, ∂V += Pᵀ·∂O, ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)), ∂Q = ∂S·K/√D, ∂K += ∂Sᵀ·Q/√D;
    /// the query heads of one group sum into their key/value head. A masked key has P = 0, so ∂S = 0
    /// there, and a query that attended nothing passes no gradient. `gradScores` is scratch [T, T].
    package func backward(_ gradContext: Matrix, query: Matrix, keys: Matrix, values: Matrix, batchSize: Int,
                          gradQuery: inout Matrix, gradKeys: inout Matrix, gradValues: inout Matrix, gradScores: inout [Float]) {
        let length = query.rows / batchSize
        let width = headCount * headSize, keyWidth = keyValueHeadCount * headSize, group = headCount / keyValueHeadCount
        let scale = 1 / Float(headSize).squareRoot()
        let blockSize = length * length
        precondition(probabilities.count == batchSize * headCount * blockSize && keys.rows == query.rows,
                     "attention backward needs the last forward's probabilities over this batch, without a cache")
        gradQuery.ensureShapeForOverwrite(query.rows, width)
        gradKeys.ensureShapeForOverwrite(keys.rows, keyWidth)
        gradValues.ensureShapeForOverwrite(values.rows, keyWidth)
        gradKeys.fill(0)
        gradValues.fill(0)
        if gradScores.count != blockSize { gradScores = [Float](repeating: 0, count: blockSize) }
        query.storage.withUnsafeBufferPointer { q in
            keys.storage.withUnsafeBufferPointer { k in
                values.storage.withUnsafeBufferPointer { v in
                    gradContext.storage.withUnsafeBufferPointer { dO in
                        probabilities.withUnsafeBufferPointer { p in
                            gradQuery.storage.withUnsafeMutableBufferPointer { dQ in
                                gradKeys.storage.withUnsafeMutableBufferPointer { dK in
                                    gradValues.storage.withUnsafeMutableBufferPointer { dV in
                                        gradScores.withUnsafeMutableBufferPointer { dS in
                                            let dS = dS.baseAddress!
                                            for batch in 0..<batchSize {
                                                for head in 0..<headCount {
                                                    let kvHead = head / group
                                                    let probabilities = p.baseAddress! + (batch * headCount + head) * blockSize
                                                    let queryOffset = batch * length * width + head * headSize
                                                    let keyOffset = batch * length * keyWidth + kvHead * headSize
                                                    gemm(.n, .t, m: length, n: length, k: headSize, alpha: 1, dO.baseAddress! + queryOffset, lda: width,
                                                         v.baseAddress! + keyOffset, ldb: keyWidth, beta: 0, dS, ldc: length)
                                                    gemm(.t, .n, m: length, n: headSize, k: length, alpha: 1, probabilities, lda: length,
                                                         dO.baseAddress! + queryOffset, ldb: width, beta: 1, dV.baseAddress! + keyOffset, ldc: keyWidth)
                                                    softmaxBackwardRows(dS, probabilities: probabilities, rows: length)
                                                    gemm(.n, .n, m: length, n: headSize, k: length, alpha: scale, dS, lda: length,
                                                         k.baseAddress! + keyOffset, ldb: keyWidth, beta: 0, dQ.baseAddress! + queryOffset, ldc: width)
                                                    gemm(.t, .n, m: length, n: headSize, k: length, alpha: scale, dS, lda: length,
                                                         q.baseAddress! + queryOffset, ldb: width, beta: 1, dK.baseAddress! + keyOffset, ldc: keyWidth)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Softmax over the keys 0...lastVisible whose mask is 1, in place; every other key gets 0.
    private static func maskedSoftmax(_ scores: UnsafeMutablePointer<Float>, count: Int, lastVisible: Int, mask: ArraySlice<Int>) {
        let start = mask.startIndex
        var largest = -Float.infinity
        for j in 0...lastVisible where mask[start + j] != 0 { largest = max(largest, scores[j]) }
        guard largest > -Float.infinity else {
            for j in 0..<count { scores[j] = 0 }
            return
        }
        var sum: Float = 0
        for j in 0..<count {
            if j <= lastVisible, mask[start + j] != 0 {
                scores[j] = Foundation.exp(scores[j] - largest)
                sum += scores[j]
            } else {
                scores[j] = 0
            }
        }
        let inverse = 1 / sum
        for j in 0...lastVisible { scores[j] *= inverse }
    }
}

/// SwiGLU's gating: out = SiLU(gate) ⊙ up with SiLU(x) = x·σ(x) (`LlamaMLP`, act_fn = silu).
/// Backward needs gate and up, which the layer keeps.
package enum SwiGLU {
    package static func forward(gate: Matrix, up: Matrix, into out: inout Matrix) {
        precondition(gate.shape == up.shape, "SwiGLU gate \(gate.shape) and up \(up.shape) differ")
        out.ensureShapeForOverwrite(gate.rows, gate.cols)
        for index in 0..<gate.count {
            let g = gate.storage[index]
            out.storage[index] = g / (1 + Foundation.exp(-g)) * up.storage[index]
        }
    }

    /// ∂L/∂out [N, F] → ∂L/∂gate and ∂L/∂up [N, F]: ∂up = ∂out ⊙ SiLU(gate) and
    /// ∂gate = ∂out ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate))).
    package static func backward(_ gradOutput: Matrix, gate: Matrix, up: Matrix, gradGate: inout Matrix, gradUp: inout Matrix) {
        precondition(gradOutput.shape == gate.shape && gate.shape == up.shape, "SwiGLU backward of \(gradOutput.shape) for \(gate.shape)")
        gradGate.ensureShapeForOverwrite(gate.rows, gate.cols)
        gradUp.ensureShapeForOverwrite(gate.rows, gate.cols)
        for index in 0..<gate.count {
            let g = gate.storage[index], upstream = gradOutput.storage[index]
            let sigmoid = 1 / (1 + Foundation.exp(-g))
            gradUp.storage[index] = upstream * g * sigmoid
            gradGate.storage[index] = upstream * up.storage[index] * sigmoid * (1 + g * (1 - sigmoid))
        }
    }
}

/// Mean cross-entropy over the rows of a vocabulary-wide logit matrix, as torch's
/// `F.cross_entropy` (log-softmax in float32) computes it: L = (1/R)·Σ_r (logsumexp(z_r) − z_r[y_r]),
/// and ∂L/∂z = (softmax(z) − onehot(y))/R. Each row's Σ exp is accumulated in Double: summed in
/// float32 one term at a time, the tens of thousands of terms far below the running sum's ulp
/// would be rounded away, and the loss would come out biased low.
package enum LanguageModelLoss {
    /// logits [R, V] are overwritten by ∂L/∂logits; targets [R] in 0..<V.
    package static func crossEntropy(_ logits: inout Matrix, targets: [Int]) -> Float {
        let rows = logits.rows, vocabulary = logits.cols
        precondition(targets.count == rows && targets.allSatisfy { (0..<vocabulary).contains($0) },
                     "\(targets.count) targets in 0..<\(vocabulary) for \(rows) rows of logits")
        var total: Double = 0
        logits.storage.withUnsafeMutableBufferPointer { values in
            for row in 0..<rows {
                let z = values.baseAddress! + row * vocabulary
                var largest = -Float.infinity
                for j in 0..<vocabulary { largest = max(largest, z[j]) }
                let target = z[targets[row]]
                var sum: Double = 0
                for j in 0..<vocabulary {
                    z[j] = Foundation.exp(z[j] - largest)
                    sum += Double(z[j])
                }
                total += Foundation.log(sum) + Double(largest) - Double(target)
                let inverse = Float(1 / (sum * Double(rows)))
                for j in 0..<vocabulary { z[j] *= inverse }
                z[targets[row]] -= 1 / Float(rows)
            }
        }
        return Float(total / Double(rows))
    }
}

