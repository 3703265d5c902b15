import Foundation
import LoRABenchKernels
import LoRABenchAdapters

// The Llama decoder's layers as transformers' `modeling_llama.py` computes them in float32
// (decoder-spec.md, "One forward pass"). Shapes: N = B·T token rows, C hidden width, D head size,
// H query heads, G key/value heads, KV = G·D, F the SwiGLU width. Each forward keeps what its
// backward will need and says so.

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
/// Rows run in CKernels' loops (rms_norm.c), split across the BLAS threads.
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
                        forEachChunk(rows, minimumChunk: 64) { chunk in
                            rmsNormForward(rows: chunk, width: width, input, weight: gamma, epsilon: epsilon, output: output, inverses: scales)
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
                    inverseRMS.withUnsafeBufferPointer { scales in
                        gradInput.storage.withUnsafeMutableBufferPointer { output in
                            let (upstream, input, gamma, scales, output) = (upstream.baseAddress!, input.baseAddress!, gamma.baseAddress!,
                                                                            scales.baseAddress!, output.baseAddress!)
                            forEachChunk(rows, minimumChunk: 64) { chunk in
                                rmsNormBackward(rows: chunk, width: width, upstream, input: input, weight: gamma, inverses: scales,
                                                accumulate: accumulate, into: output)
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

    /// x' = x·cos + rotate_half(x)·(sign·sin); a sign of ±1 changes no bit of the product. Rows run
    /// in CKernels' loop (rope.c), split across the BLAS threads.
    private func rotate(_ x: inout Matrix, cos: Matrix, sin: Matrix, sineSign: Float) {
        let half = headSize / 2, width = x.cols, rows = x.rows, heads = x.cols / headSize, headSize = headSize
        precondition(cos.rows == x.rows && cos.cols == half, "RoPE tables [\(cos.rows), \(cos.cols)] for \(x.rows) rows of head size \(headSize)")
        cos.storage.withUnsafeBufferPointer { cosines in
            sin.storage.withUnsafeBufferPointer { sines in
                x.storage.withUnsafeMutableBufferPointer { values in
                    let (cosines, sines, values) = (cosines.baseAddress!, sines.baseAddress!, values.baseAddress!)
                    forEachChunk(rows, minimumChunk: 64) { chunk in
                        ropeRows(chunk, heads: heads, headSize: headSize, values, stride: width, cos: cosines, sin: sines, sineSign: sineSign)
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
///
/// A head's products are a few microseconds each (T×T×D with T = 128, D = 64), too small for a
/// cblas_sgemm call's dispatch and threading: sequences are split across the BLAS threads, each
/// running CKernels' `smallProduct` (the BERT encoder's) and causal softmax over blocks of
/// `blockRows` query rows, each block only as far as its last row sees, so the masked upper triangle
/// (nearly half of each [T, T] product) is never computed. The probabilities are not kept:
/// backward computes them again, head by head (the same operations, so the same bits): one product
/// more than the six of forward and backward saves [B, H, T, T] floats per layer (135 MiB over
/// SmolLM2's 30 layers at 8 × 128 tokens).
package struct GroupedQueryAttention {
    package let headCount: Int
    package let keyValueHeadCount: Int
    package let headSize: Int
    /// The last forward's key bias [B·rows per sequence]: 0 for a token, −∞ for padding.
    private var keyBias: [Float] = []

    /// Query rows per block: a multiple of 16, so that a block's visible keys fill whole vectors.
    static let blockRows = 16

    package init(headCount: Int, keyValueHeadCount: Int, headSize: Int) {
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount
        self.headSize = headSize
    }

    /// One head's probabilities P [Tq, Tk] into `scores` (row stride Tk), zero where masked: per block
    /// of query rows, S = Q·Kᵀ/√D over the keys the block sees, then the causal softmax with the
    /// key bias. `keysTransposed` is the head's K transposed [D, Tk]; query row r sits at key r + Tk − Tq.
    private static func probabilities(into scores: UnsafeMutablePointer<Float>, queries: UnsafePointer<Float>, queryStride: Int,
                                      queryLength: Int, keysTransposed: UnsafePointer<Float>, keyLength: Int, headSize: Int,
                                      keyBias: UnsafePointer<Float>) {
        let scale = 1 / Float(headSize).squareRoot(), offset = keyLength - queryLength
        for first in stride(from: 0, to: queryLength, by: blockRows) {
            let last = min(first + blockRows, queryLength)
            let block = scores + first * keyLength
            smallProduct(.n, m: last - first, n: min(last + offset, keyLength), k: headSize, alpha: scale, queries + first * queryStride,
                         lda: queryStride, keysTransposed, ldb: keyLength, block, ldc: keyLength)
            causalSoftmaxRows(block, rows: last - first, stride: keyLength, lastVisible: first + offset, keyBias: keyBias)
        }
    }

    /// query [B·Tq, H·D] (RoPE applied) → context [B·Tq, H·D], heads side by side as `o_proj` reads them.
    /// A query that may attend no key (a left-padding row before any token) gets a zero context:
    /// its output is never read, and zeros keep NaN out of the rows that are.
    package mutating func forward(query: Matrix, keys source: AttentionKeys, batchSize: Int, into context: inout Matrix) {
        let queryLength = query.rows / batchSize, keyLength = source.length, rowsPerSequence = source.rowsPerSequence
        let width = headCount * headSize, keyWidth = keyValueHeadCount * headSize, group = headCount / keyValueHeadCount
        let (keyValueHeadCount, headSize) = (keyValueHeadCount, headSize)
        context.ensureShapeForOverwrite(query.rows, width)
        // 0 for a token, −∞ for padding: the softmax's exponential then gives a padded key exactly 0.
        keyBias = source.mask.map { $0 == 0 ? -Float.infinity : 0 }
        query.storage.withUnsafeBufferPointer { q in
            source.keys.storage.withUnsafeBufferPointer { k in
                source.values.storage.withUnsafeBufferPointer { v in
                    context.storage.withUnsafeMutableBufferPointer { out in
                        keyBias.withUnsafeBufferPointer { bias in
                            let (q, k, v, out, bias) = (q.baseAddress!, k.baseAddress!, v.baseAddress!, out.baseAddress!, bias.baseAddress!)
                            forEachChunk(batchSize, minimumChunk: 1) { sequences in
                                // One key/value head's K transposed [D, Tk], so that a score row combines its rows,
                                // and one head's P [Tq, Tk].
                                withUnsafeTemporaryAllocation(of: Float.self, capacity: (headSize + queryLength) * keyLength) { scratch in
                                    let keysTransposed = scratch.baseAddress!, scores = keysTransposed + headSize * keyLength
                                    for batch in sequences {
                                        let keyRow = batch * rowsPerSequence
                                        for kvHead in 0..<keyValueHeadCount {
                                            transpose(rows: keyLength, cols: headSize, k + keyRow * keyWidth + kvHead * headSize, stride: keyWidth,
                                                      into: keysTransposed)
                                            let values = v + keyRow * keyWidth + kvHead * headSize
                                            for head in kvHead * group..<(kvHead + 1) * group {
                                                let rowOffset = batch * queryLength * width + head * headSize
                                                Self.probabilities(into: scores, queries: q + rowOffset, queryStride: width, queryLength: queryLength,
                                                                   keysTransposed: keysTransposed, keyLength: keyLength, headSize: headSize,
                                                                   keyBias: bias + keyRow)
                                                // O = P·V, each block of rows over the keys it sees.
                                                for first in stride(from: 0, to: queryLength, by: Self.blockRows) {
                                                    let last = min(first + Self.blockRows, queryLength)
                                                    smallProduct(.n, m: last - first, n: headSize, k: min(last + keyLength - queryLength, keyLength), alpha: 1,
                                                                 scores + first * keyLength, lda: keyLength, values, ldb: keyWidth,
                                                                 out + rowOffset + first * width, ldc: width)
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

    /// ∂L/∂context [B·T, H·D] → ∂L/∂q [B·T, H·D], ∂L/∂k and ∂L/∂v [B·T, G·D] for the last forward,
    /// which attended within the batch (no cache) over the same `query`, `keys` and `values`
    /// (q and k with RoPE applied). Per head, with P the forward's probabilities (computed again):
    /// ∂P = ∂O·Vᵀ, ∂V += Pᵀ·∂O, ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P)), ∂Q = ∂S·K/√D, ∂K += ∂Sᵀ·Q/√D;
    /// the query heads of one group sum into their key/value head, in head order. A masked key has
    /// P = 0, so ∂S = 0 there, and a query that attended nothing passes no gradient. Blocks of rows
    /// (of keys, for ∂V and ∂K) stop where the causal mask makes every further term zero.
    /// `gradScores` is the workers' scratch, sized here: each one's P and ∂S of one head [T, T], K
    /// and V of one key/value head transposed [D, T], and one head's ∂K or ∂V [T, D] before it joins
    /// its group's.
    package func backward(_ gradContext: Matrix, query: Matrix, keys: Matrix, values: Matrix, batchSize: Int,
                          gradQuery: inout Matrix, gradKeys: inout Matrix, gradValues: inout Matrix, gradScores: inout [Float]) {
        let length = query.rows / batchSize
        let width = headCount * headSize, keyWidth = keyValueHeadCount * headSize, group = headCount / keyValueHeadCount
        let (keyValueHeadCount, headSize) = (keyValueHeadCount, headSize)
        let scale = 1 / Float(headSize).squareRoot()
        let blockSize = length * length
        precondition(keyBias.count == query.rows && keys.rows == query.rows,
                     "attention backward needs the last forward over this batch, without a cache")
        gradQuery.ensureShapeForOverwrite(query.rows, width)
        gradKeys.ensureShapeForOverwrite(keys.rows, keyWidth)
        gradValues.ensureShapeForOverwrite(values.rows, keyWidth)
        let workers = workerCount(batchSize, minimumChunk: 1), perWorker = 2 * blockSize + 3 * headSize * length
        if gradScores.count != workers * perWorker { gradScores = [Float](repeating: 0, count: workers * perWorker) }
        query.storage.withUnsafeBufferPointer { q in
            keys.storage.withUnsafeBufferPointer { k in
                values.storage.withUnsafeBufferPointer { v in
                    gradContext.storage.withUnsafeBufferPointer { dO in
                        keyBias.withUnsafeBufferPointer { bias in
                            gradQuery.storage.withUnsafeMutableBufferPointer { dQ in
                                gradKeys.storage.withUnsafeMutableBufferPointer { dK in
                                    gradValues.storage.withUnsafeMutableBufferPointer { dV in
                                        gradScores.withUnsafeMutableBufferPointer { scratch in
                                            let (q, k, v, dO, bias) = (q.baseAddress!, k.baseAddress!, v.baseAddress!, dO.baseAddress!, bias.baseAddress!)
                                            let (dQ, dK, dV, scratch) = (dQ.baseAddress!, dK.baseAddress!, dV.baseAddress!, scratch.baseAddress!)
                                            forEachChunk(batchSize, workers: workers) { worker, sequences in
                                                let probabilities = scratch + worker * perWorker, dS = probabilities + blockSize
                                                let keysTransposed = dS + blockSize, valuesTransposed = keysTransposed + headSize * length
                                                let part = valuesTransposed + headSize * length
                                                // ∂V_h = Pᵀ·∂O or ∂K_h = ∂Sᵀ·Q/√D into `part`, key blocks first..<last: the queries from
                                                // `first` on see them. Then added to the group's (the group's first head stores it).
                                                func keySideProduct(_ source: UnsafePointer<Float>, _ factor: UnsafePointer<Float>, alpha: Float,
                                                                    queryOffset: Int, into target: UnsafeMutablePointer<Float>, overwrite: Bool) {
                                                    for first in stride(from: 0, to: length, by: Self.blockRows) {
                                                        let last = min(first + Self.blockRows, length)
                                                        smallProduct(.t, m: last - first, n: headSize, k: length - first, alpha: alpha,
                                                                     source + first * length + first, lda: length, factor + queryOffset + first * width,
                                                                     ldb: width, part + first * headSize, ldc: headSize)
                                                    }
                                                    Self.add(part, into: target, rows: length, cols: headSize, stride: keyWidth, overwrite: overwrite)
                                                }
                                                for batch in sequences {
                                                    let rowOffset = batch * length
                                                    for kvHead in 0..<keyValueHeadCount {
                                                        let keyOffset = rowOffset * keyWidth + kvHead * headSize
                                                        transpose(rows: length, cols: headSize, k + keyOffset, stride: keyWidth, into: keysTransposed)
                                                        transpose(rows: length, cols: headSize, v + keyOffset, stride: keyWidth, into: valuesTransposed)
                                                        for head in kvHead * group..<(kvHead + 1) * group {
                                                            let queryOffset = rowOffset * width + head * headSize
                                                            Self.probabilities(into: probabilities, queries: q + queryOffset, queryStride: width, queryLength: length,
                                                                               keysTransposed: keysTransposed, keyLength: length, headSize: headSize,
                                                                               keyBias: bias + rowOffset)
                                                            for first in stride(from: 0, to: length, by: Self.blockRows) {
                                                                let last = min(first + Self.blockRows, length)
                                                                // ∂P and ∂S of rows first..<last, over the keys they see; then ∂Q.
                                                                smallProduct(.n, m: last - first, n: last, k: headSize, alpha: 1, dO + queryOffset + first * width,
                                                                             lda: width, valuesTransposed, ldb: length, dS + first * length, ldc: length)
                                                                causalSoftmaxBackwardRows(dS + first * length, probabilities: probabilities + first * length,
                                                                                          rows: last - first, stride: length, lastVisible: first)
                                                                smallProduct(.n, m: last - first, n: headSize, k: last, alpha: scale, dS + first * length,
                                                                             lda: length, k + keyOffset, ldb: keyWidth, dQ + queryOffset + first * width, ldc: width)
                                                            }
                                                            let firstOfGroup = head == kvHead * group
                                                            keySideProduct(probabilities, dO, alpha: 1, queryOffset: queryOffset, into: dV + keyOffset,
                                                                           overwrite: firstOfGroup)
                                                            keySideProduct(dS, q, alpha: scale, queryOffset: queryOffset, into: dK + keyOffset,
                                                                           overwrite: firstOfGroup)
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
        }
    }

    /// target[r, c] (row stride `stride`) ← part[r, c] (dense) when `overwrite`, else += it.
    private static func add(_ part: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, rows: Int, cols: Int, stride: Int,
                            overwrite: Bool) {
        for row in 0..<rows {
            let source = part + row * cols, destination = target + row * stride
            if overwrite {
                destination.update(from: source, count: cols)
            } else {
                for c in 0..<cols { destination[c] += source[c] }
            }
        }
    }
}

/// SwiGLU's gating: out = SiLU(gate) ⊙ up with SiLU(x) = x·σ(x) (`LlamaMLP`, act_fn = silu).
/// Backward needs gate and up, which the layer keeps, and recomputes σ (keeping it would cost an
/// [N, F] matrix per layer). CKernels' loops (swiglu.c), split across the BLAS threads.
package enum SwiGLU {
    package static func forward(gate: Matrix, up: Matrix, into out: inout Matrix) {
        precondition(gate.shape == up.shape, "SwiGLU gate \(gate.shape) and up \(up.shape) differ")
        out.ensureShapeForOverwrite(gate.rows, gate.cols)
        let count = gate.count
        gate.storage.withUnsafeBufferPointer { gate in
            up.storage.withUnsafeBufferPointer { up in
                out.storage.withUnsafeMutableBufferPointer { out in
                    let (gate, up, out) = (gate.baseAddress!, up.baseAddress!, out.baseAddress!)
                    forEachChunk(count, minimumChunk: 16_384) { chunk in
                        swigluForward(gate: gate + chunk.lowerBound, up: up + chunk.lowerBound, into: out + chunk.lowerBound, count: chunk.count)
                    }
                }
            }
        }
    }

    /// ∂L/∂out [N, F] → ∂L/∂gate and ∂L/∂up [N, F]: ∂up = ∂out ⊙ SiLU(gate) and
    /// ∂gate = ∂out ⊙ up ⊙ σ(gate)·(1 + gate·(1 − σ(gate))).
    package static func backward(_ gradOutput: Matrix, gate: Matrix, up: Matrix, gradGate: inout Matrix, gradUp: inout Matrix) {
        precondition(gradOutput.shape == gate.shape && gate.shape == up.shape, "SwiGLU backward of \(gradOutput.shape) for \(gate.shape)")
        gradGate.ensureShapeForOverwrite(gate.rows, gate.cols)
        gradUp.ensureShapeForOverwrite(gate.rows, gate.cols)
        let count = gate.count
        gradOutput.storage.withUnsafeBufferPointer { upstream in
            gate.storage.withUnsafeBufferPointer { gate in
                up.storage.withUnsafeBufferPointer { up in
                    gradGate.storage.withUnsafeMutableBufferPointer { gradGate in
                        gradUp.storage.withUnsafeMutableBufferPointer { gradUp in
                            let (upstream, gate, up) = (upstream.baseAddress!, gate.baseAddress!, up.baseAddress!)
                            let (gradGate, gradUp) = (gradGate.baseAddress!, gradUp.baseAddress!)
                            forEachChunk(count, minimumChunk: 16_384) { chunk in
                                let at = chunk.lowerBound
                                swigluBackward(upstream + at, gate: gate + at, up: up + at, gradGate: gradGate + at, gradUp: gradUp + at, count: chunk.count)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The tied LM head and its mean cross-entropy, as transformers' head and torch's `F.cross_entropy`
/// (log-softmax in float32) compute them: logits z = h·Eᵀ, L = (1/R)·Σ_r (logsumexp(z_r) − z_r[y_r]),
/// ∂L/∂z = (softmax(z) − onehot(y))/R and ∂L/∂h = ∂L/∂z·E. Formed `blockRows` rows at a time, so
/// that one block's logits exist at once instead of [R, V] (190 MiB at 8 × 127 positions of
/// SmolLM2's 49,152 tokens), the same products otherwise. Each row's Σ exp is accumulated in
/// Double: summed in float32, the tens of thousands of terms far below the running sum's ulp would
/// be rounded away, and the loss would come out biased low. Rows run in CKernels' loop
/// (cross_entropy.c), split across the BLAS threads; their losses are added in row order,
/// whatever the split.
package enum LanguageModelLoss {
    static let blockRows = 128

    /// h [R, C] (the final norm's output at the rows with a target), E [V, C], targets [R] in 0..<V →
    /// the mean loss and, when `formingGradient`, ∂L/∂h [R, C] (an evaluation skips its product,
    /// as costly as the logits').
    package static func tiedHead(_ hidden: Matrix, embedding: Matrix, targets: [Int], formingGradient: Bool) -> (loss: Float, gradient: Matrix?) {
        let rows = hidden.rows, width = hidden.cols, vocabulary = embedding.rows
        precondition(embedding.cols == width && targets.count == rows && targets.allSatisfy { (0..<vocabulary).contains($0) },
                     "\(targets.count) targets in 0..<\(vocabulary) for \(rows) rows of \(hidden.shape), embedding \(embedding.shape)")
        var losses = [Double](repeating: 0, count: rows)
        var gradient = Matrix.uninitializedActivation(formingGradient ? rows : 0, width)
        var logits = [Float](unsafeUninitializedCapacity: min(blockRows, rows) * vocabulary) { _, initialized in
            initialized = min(blockRows, rows) * vocabulary
        }
        hidden.storage.withUnsafeBufferPointer { h in
            embedding.storage.withUnsafeBufferPointer { e in
                targets.withUnsafeBufferPointer { targets in
                    losses.withUnsafeMutableBufferPointer { losses in
                        logits.withUnsafeMutableBufferPointer { z in
                            gradient.storage.withUnsafeMutableBufferPointer { dh in
                                let (h, e, targets, losses, z) = (h.baseAddress!, e.baseAddress!, targets.baseAddress!, losses.baseAddress!,
                                                                  z.baseAddress!)
                                for first in stride(from: 0, to: rows, by: blockRows) {
                                    let count = min(blockRows, rows - first)
                                    gemm(.n, .t, m: count, n: vocabulary, k: width, alpha: 1, h + first * width, lda: width, e, ldb: width,
                                         beta: 0, z, ldc: vocabulary)
                                    forEachChunk(count, minimumChunk: 8) { chunk in
                                        crossEntropyRows(chunk, vocabulary: vocabulary, z, targets: targets + first, totalRows: rows,
                                                         losses: losses + first)
                                    }
                                    if formingGradient {
                                        gemm(.n, .n, m: count, n: width, k: vocabulary, alpha: 1, z, lda: vocabulary, e, ldb: width,
                                             beta: 0, dh.baseAddress! + first * width, ldc: width)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (Float(losses.reduce(0, +) / Double(rows)), formingGradient ? gradient : nil)
    }
}
