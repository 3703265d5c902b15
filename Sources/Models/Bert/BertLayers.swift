#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters

// The BERT building blocks, each a forward/backward pair in the style of llm.c: the caller owns
// the activations and passes them in; a block keeps only what its own backward needs (LayerNorm
// its normalized input, attention its probabilities; GELU hands its derivative to the caller).
// Buffers are sized on first use and reused while shapes repeat. Shapes use N = B·T token rows,
// C = hidden size, H = heads, d = C/H. Backward passes compute input gradients only: the base
// model is frozen.

// MARK: - LayerNorm

/// LayerNorm over the last dimension (Ba et al. 2016): y = γ ⊙ (x − μ)/√(σ² + ε) + β, with μ, σ²
/// the mean and biased variance of each row, as torch `nn.LayerNorm`. Rows are split across
/// the BLAS threads and reduced eight lanes at a time (CKernels' layer_norm.c).
public struct LayerNorm {
    /// γ [1, C].
    public let gamma: Matrix
    /// β [1, C].
    public let beta: Matrix
    public let epsilon: Float
    // Saved by forward: x̂ = (x − μ)/σ [N, C] and 1/σ [N].
    private var normalized = Matrix.zeros(0, 0)
    private var inverseStd: [Float] = []

    public init(gamma: Matrix, beta: Matrix, epsilon: Float) {
        precondition(gamma.count == beta.count, "LayerNorm γ has \(gamma.count) entries, β \(beta.count)")
        self.gamma = gamma.reshaped(1, gamma.count)
        self.beta = beta.reshaped(1, beta.count)
        self.epsilon = epsilon
    }

    /// LN(x + residual) [N, C] for x [N, C] and an optional residual [N, C] (the sum is formed
    /// here rather than by a separate pass, and is not kept: backward needs only x̂ and 1/σ).
    /// `y` may be any buffer but the inputs.
    public mutating func forward(_ x: Matrix, adding residual: Matrix? = nil, into y: inout Matrix) {
        let rows = x.rows, width = x.cols
        precondition(width == gamma.count, "LayerNorm over \(gamma.count) features got input \(x.shape)")
        precondition(residual.map { $0.shape == x.shape } ?? true, "residual \(residual?.shape ?? []) for input \(x.shape)")
        normalized.ensureShape(rows, width)
        if y.shape != x.shape { y = .uninitializedActivation(rows, width) }
        if inverseStd.count != rows { inverseStd = [Float](repeating: 0, count: rows) }
        let epsilon = epsilon
        let summand = residual ?? Matrix.zeros(0, 0)
        x.storage.withUnsafeBufferPointer { px in
            summand.storage.withUnsafeBufferPointer { pr in
                gamma.storage.withUnsafeBufferPointer { pg in
                    beta.storage.withUnsafeBufferPointer { pb in
                        normalized.storage.withUnsafeMutableBufferPointer { pn in
                            y.storage.withUnsafeMutableBufferPointer { py in
                                inverseStd.withUnsafeMutableBufferPointer { ps in
                                    let input = px.baseAddress!, added = residual == nil ? nil : UnsafePointer(pr.baseAddress)
                                    let gains = pg.baseAddress!, shifts = pb.baseAddress!
                                    let xhat = pn.baseAddress!, output = py.baseAddress!, inverses = ps.baseAddress!
                                    forEachChunk(rows, minimumChunk: 64) { chunk in
                                        layerNormForward(rows: chunk, width: width, input, adding: added, gains: gains, shifts: shifts,
                                                         epsilon: epsilon, normalized: xhat, output: output, inverses: inverses)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// ∂L/∂y [N, C] → ∂L/∂x [N, C] in place, for the last forward:
    /// ∂x = (1/σ)·(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) with g = γ ⊙ ∂y (the row-wise chain rule
    /// through μ and σ; llm.c's layernorm_backward without the frozen γ, β gradients).
    public func backward(_ grad: inout Matrix) {
        let rows = grad.rows, width = grad.cols
        precondition(grad.shape == normalized.shape, "LayerNorm gradient \(grad.shape) for a forward of \(normalized.shape)")
        grad.storage.withUnsafeMutableBufferPointer { pd in
            normalized.storage.withUnsafeBufferPointer { pn in
                gamma.storage.withUnsafeBufferPointer { pg in
                    inverseStd.withUnsafeBufferPointer { ps in
                        let gradient = pd.baseAddress!, xhat = pn.baseAddress!, gains = pg.baseAddress!, inverses = ps.baseAddress!
                        forEachChunk(rows, minimumChunk: 64) { chunk in
                            layerNormBackward(rows: chunk, width: width, gradient, normalized: xhat, gains: gains, inverses: inverses)
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Embeddings

/// BERT's input layer: LayerNorm(word[id] + token_type[type] + position[t]) per token, summed
/// in Hugging Face's order. Frozen and first, so it has no backward.
public struct BertEmbeddings {
    /// [vocab, C].
    public let words: Matrix
    /// [max positions, C].
    public let positions: Matrix
    /// [token types, C].
    public let tokenTypes: Matrix
    public var norm: LayerNorm

    public init(words: Matrix, positions: Matrix, tokenTypes: Matrix, norm: LayerNorm) {
        precondition(words.cols == positions.cols && words.cols == tokenTypes.cols && words.cols == norm.gamma.count,
                     "embedding tables of widths \(words.cols), \(positions.cols), \(tokenTypes.cols) and LayerNorm of \(norm.gamma.count)")
        self.words = words
        self.positions = positions
        self.tokenTypes = tokenTypes
        self.norm = norm
    }

    /// ids, types [B·T] (row-major [B, T], positions 0..<T in each row; ids already validated)
    /// → out [B·T, C]; `sum` is scratch [B·T, C].
    public mutating func forward(inputIDs: [Int], tokenTypeIDs: [Int], sequenceLength: Int,
                                 sum: inout Matrix, into out: inout Matrix) {
        let tokens = inputIDs.count, width = words.cols
        precondition(tokenTypeIDs.count == tokens && tokens % sequenceLength == 0 && sequenceLength <= positions.rows,
                     "\(tokens) ids, \(tokenTypeIDs.count) types, sequence length \(sequenceLength)")
        sum.ensureShape(tokens, width)
        words.storage.withUnsafeBufferPointer { pw in
            positions.storage.withUnsafeBufferPointer { pp in
                tokenTypes.storage.withUnsafeBufferPointer { pt in
                    sum.storage.withUnsafeMutableBufferPointer { ps in
                        for token in 0..<tokens {
                            let word = inputIDs[token] * width, type = tokenTypeIDs[token] * width
                            let position = (token % sequenceLength) * width, row = token * width
                            for c in 0..<width { ps[row + c] = (pw[word + c] + pt[type + c]) + pp[position + c] }
                        }
                    }
                }
            }
        }
        norm.forward(sum, into: &out)
    }
}

// MARK: - Self-attention

/// Multi-head scaled dot-product attention (Vaswani et al. 2017, Eq. 1) over already projected
/// Q, K, V: per sequence b and head h, P = softmax(Q_bh·K_bhᵀ/√d + M_b) and O_bh = P·V_bh.
///
/// Heads are column blocks of the [N, C] buffers and are addressed by stride; only one head's
/// Kᵀ or Vᵀ [d, T] is copied, into a per-thread scratch, so that every product combines rows.
/// The padding mask is Hugging Face's additive one: 0 for a kept key and the most negative
/// finite Float (torch.finfo(float32).min) for a padded key. Being finite, it never makes
/// inf − inf: a row whose keys are all padded gets a uniform softmax, exactly as in torch.
/// At BERT's sizes a head's products take microseconds, too little for OpenBLAS to thread or
/// for a cblas_sgemm call's overhead, so sequences are split across the BLAS threads and each
/// head runs CKernels' `smallProduct` and softmax loops.
public struct MultiHeadAttention {
    public let headCount: Int
    // Saved by forward: P [B·H·T, T], the (b, h) block at rows (b·H + h)·T.
    private var probabilities = Matrix.zeros(0, 0)
    private var sequenceLength = 0

    public init(headCount: Int) {
        precondition(headCount >= 1, "attention needs at least one head")
        self.headCount = headCount
    }

    /// Q, K, V [B·T, C], mask [B·T] of 1 (token) / 0 (padding) → context [B·T, C] (written in full).
    /// Sequences run concurrently; a head's products are `smallProduct`s over its blocks in place.
    public mutating func forward(query: Matrix, key: Matrix, value: Matrix, attentionMask: [Int],
                                 sequenceLength: Int, into context: inout Matrix) {
        let tokens = query.rows, width = query.cols, heads = headCount
        precondition(key.shape == query.shape && value.shape == query.shape, "Q \(query.shape), K \(key.shape), V \(value.shape)")
        precondition(width % heads == 0 && attentionMask.count == tokens && tokens % sequenceLength == 0,
                     "attention of \(heads) heads over \(query.shape), \(attentionMask.count) mask entries, T = \(sequenceLength)")
        let length = sequenceLength, headWidth = width / heads, batch = tokens / length
        let scale = 1 / Float(headWidth).squareRoot()
        self.sequenceLength = length
        probabilities.ensureShape(batch * heads * length, length)
        if context.shape != query.shape { context = .uninitializedActivation(tokens, width) }
        let keyBias = attentionMask.map { $0 == 0 ? -Float.greatestFiniteMagnitude : 0 }
        query.storage.withUnsafeBufferPointer { pq in
            key.storage.withUnsafeBufferPointer { pk in
                value.storage.withUnsafeBufferPointer { pv in
                    probabilities.storage.withUnsafeMutableBufferPointer { pp in
                        context.storage.withUnsafeMutableBufferPointer { po in
                            keyBias.withUnsafeBufferPointer { pm in
                                let q = pq.baseAddress!, k = pk.baseAddress!, v = pv.baseAddress!
                                let p = pp.baseAddress!, o = po.baseAddress!, bias = pm.baseAddress!
                                forEachChunk(batch, minimumChunk: 1) { sequences in
                                    // K_bhᵀ [d, T], so that S's rows combine rows of it.
                                    withUnsafeTemporaryAllocation(of: Float.self, capacity: headWidth * length) { scratch in
                                        let keysTransposed = scratch.baseAddress!
                                        for b in sequences {
                                            for h in 0..<heads {
                                                let head = b * length * width + h * headWidth
                                                let scores = p + (b * heads + h) * length * length
                                                // S = Q_bh·K_bhᵀ/√d [T, T].
                                                transpose(rows: length, cols: headWidth, k + head, stride: width, into: keysTransposed)
                                                smallProduct(.n, m: length, n: length, k: headWidth, alpha: scale,
                                                             q + head, lda: width, keysTransposed, ldb: length, scores, ldc: length)
                                                maskedSoftmaxRows(scores, rows: length, keyBias: bias + b * length)
                                                // O_bh = P·V_bh [T, d].
                                                smallProduct(.n, m: length, n: headWidth, k: length, alpha: 1,
                                                             scores, lda: length, v + head, ldb: width, o + head, ldc: width)
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

    /// ∂L/∂O [B·T, C] with the forward's Q, K, V → ∂Q, ∂K, ∂V [B·T, C] (each written in full):
    /// ∂V = Pᵀ·∂O, ∂P = ∂O·Vᵀ, ∂S = P ⊙ (∂P − rowsum(P ⊙ ∂P)) (softmax's Jacobian),
    /// ∂Q = ∂S·K/√d, ∂K = ∂Sᵀ·Q/√d. The additive mask is constant and needs no gradient.
    public func backward(_ gradContext: Matrix, query: Matrix, key: Matrix, value: Matrix,
                         gradQuery: inout Matrix, gradKey: inout Matrix, gradValue: inout Matrix) {
        let tokens = query.rows, width = query.cols, heads = headCount, length = sequenceLength
        precondition(gradContext.shape == query.shape && probabilities.rows == tokens * heads,
                     "attention gradient \(gradContext.shape) for a forward over \(probabilities.rows / heads) tokens")
        let headWidth = width / heads, batch = tokens / length
        let scale = 1 / Float(headWidth).squareRoot()
        gradQuery.ensureShape(tokens, width)
        gradKey.ensureShape(tokens, width)
        gradValue.ensureShape(tokens, width)
        gradContext.storage.withUnsafeBufferPointer { pdo in
            query.storage.withUnsafeBufferPointer { pq in
                key.storage.withUnsafeBufferPointer { pk in
                    value.storage.withUnsafeBufferPointer { pv in
                        probabilities.storage.withUnsafeBufferPointer { pp in
                            gradQuery.storage.withUnsafeMutableBufferPointer { pdq in
                                gradKey.storage.withUnsafeMutableBufferPointer { pdk in
                                    gradValue.storage.withUnsafeMutableBufferPointer { pdv in
                                        let dO = pdo.baseAddress!, q = pq.baseAddress!, k = pk.baseAddress!, v = pv.baseAddress!
                                        let probs = pp.baseAddress!, dQ = pdq.baseAddress!, dK = pdk.baseAddress!, dV = pdv.baseAddress!
                                        forEachChunk(batch, minimumChunk: 1) { sequences in
                                            // ∂P, then ∂S, of one head [T, T], and V_bhᵀ [d, T].
                                            withUnsafeTemporaryAllocation(of: Float.self, capacity: length * length + headWidth * length) { scratch in
                                                let ds = scratch.baseAddress!, valuesTransposed = ds + length * length
                                                for b in sequences {
                                                    for h in 0..<heads {
                                                        let head = b * length * width + h * headWidth
                                                        let p = probs + (b * heads + h) * length * length
                                                        // ∂V_bh = Pᵀ·∂O_bh [T, d].
                                                        smallProduct(.t, m: length, n: headWidth, k: length, alpha: 1,
                                                                     p, lda: length, dO + head, ldb: width, dV + head, ldc: width)
                                                        // ∂P = ∂O_bh·V_bhᵀ [T, T].
                                                        transpose(rows: length, cols: headWidth, v + head, stride: width, into: valuesTransposed)
                                                        smallProduct(.n, m: length, n: length, k: headWidth, alpha: 1,
                                                                     dO + head, lda: width, valuesTransposed, ldb: length, ds, ldc: length)
                                                        softmaxBackwardRows(ds, probabilities: p, rows: length)
                                                        // ∂Q_bh = ∂S·K_bh/√d, ∂K_bh = ∂Sᵀ·Q_bh/√d [T, d].
                                                        smallProduct(.n, m: length, n: headWidth, k: length, alpha: scale,
                                                                     ds, lda: length, k + head, ldb: width, dQ + head, ldc: width)
                                                        smallProduct(.t, m: length, n: headWidth, k: length, alpha: scale,
                                                                     ds, lda: length, q + head, ldb: width, dK + head, ldc: width)
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

// MARK: - GELU

/// GELU in its exact form (Hendrycks & Gimpel 2016, Eq. 1): x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)),
/// torch's `nn.GELU()` default and BERT's "gelu".
///
/// The exp and erf are the cost (done per element by libm they took a third of a layer's GEMM
/// time), so they run vectorised (`gelu`, as wide as the CPU allows), split across the BLAS
/// threads, and only once: forward also stores GELU′(x) = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π),
/// which is all that backward needs. Forward writes a new matrix, as llm.c's `gelu_forward(out,
/// inp)`: its input is an adapter's output, which the adapter may keep for backward (DoRA does),
/// and writing over it would copy it first.
public enum GELU {
    /// x [N, F] → y = GELU(x) [N, F] (reshaped as needed); `derivative` [N, F] ← GELU′(x).
    public static func forward(_ x: Matrix, into y: inout Matrix, derivative: inout Matrix) {
        if y.shape != x.shape { y = .uninitializedActivation(x.rows, x.cols) }
        if derivative.shape != x.shape { derivative = .uninitializedActivation(x.rows, x.cols) }
        guard x.count > 0 else { return }
        x.storage.withUnsafeBufferPointer { px in
            y.storage.withUnsafeMutableBufferPointer { py in
                derivative.storage.withUnsafeMutableBufferPointer { pd in
                    let (inputs, outputs, slopes) = (px.baseAddress!, py.baseAddress!, pd.baseAddress!)
                    forEachChunk(px.count, minimumChunk: 16_384) { chunk in
                        gelu(inputs + chunk.lowerBound, into: outputs + chunk.lowerBound, derivative: slopes + chunk.lowerBound,
                             count: chunk.count)
                    }
                }
            }
        }
    }

    /// ∂L/∂y [N, F] → ∂L/∂x = ∂L/∂y ⊙ GELU′(x) in place, with the forward's `derivative`.
    public static func backward(_ grad: inout Matrix, derivative: Matrix) {
        precondition(grad.shape == derivative.shape, "GELU gradient \(grad.shape) for a forward of \(derivative.shape)")
        grad.storage.withUnsafeMutableBufferPointer { pg in
            derivative.storage.withUnsafeBufferPointer { pd in
                let gradient = pg.baseAddress!, slopes = pd.baseAddress!
                forEachChunk(pg.count, minimumChunk: 65_536) { chunk in
                    for i in chunk { gradient[i] *= slopes[i] }
                }
            }
        }
    }
}

// MARK: - Mean pooling

/// sentence-transformers' mean pooling: the average of the token rows whose mask is 1,
/// Σ_t m_t·h_t / max(Σ_t m_t, 1e-9).
public enum MeanPooling {
    /// hidden [B·T, C], mask [B·T] → pooled [B, C].
    public static func forward(_ hidden: Matrix, attentionMask: [Int], batchSize: Int, into pooled: inout Matrix) {
        let width = hidden.cols, length = hidden.rows / batchSize
        precondition(attentionMask.count == hidden.rows && length * batchSize == hidden.rows,
                     "pooling \(hidden.shape) with \(attentionMask.count) mask entries into \(batchSize) rows")
        pooled.ensureShape(batchSize, width)
        hidden.storage.withUnsafeBufferPointer { ph in
            pooled.storage.withUnsafeMutableBufferPointer { po in
                for b in 0..<batchSize {
                    let out = po.baseAddress! + b * width
                    out.update(repeating: 0, count: width)
                    var kept = 0
                    for t in 0..<length where attentionMask[b * length + t] != 0 {
                        kept += 1
                        let row = ph.baseAddress! + (b * length + t) * width
                        for c in 0..<width { out[c] += row[c] }
                    }
                    let inverse = 1 / max(Float(kept), 1e-9)
                    for c in 0..<width { out[c] *= inverse }
                }
            }
        }
    }

    /// ∂L/∂pooled [B, C] → ∂L/∂hidden [B·T, C] (written in full): m_t·∂pooled_b / max(Σ m, 1e-9).
    public static func backward(_ gradPooled: Matrix, attentionMask: [Int], into gradHidden: inout Matrix) {
        let batch = gradPooled.rows, width = gradPooled.cols, length = attentionMask.count / batch
        precondition(length * batch == attentionMask.count, "\(attentionMask.count) mask entries for \(batch) rows")
        gradHidden.ensureShape(batch * length, width)
        gradPooled.storage.withUnsafeBufferPointer { pg in
            gradHidden.storage.withUnsafeMutableBufferPointer { pd in
                for b in 0..<batch {
                    let kept = (0..<length).reduce(0) { $0 + (attentionMask[b * length + $1] != 0 ? 1 : 0) }
                    let inverse = 1 / max(Float(kept), 1e-9)
                    for t in 0..<length {
                        let row = pd.baseAddress! + (b * length + t) * width
                        if attentionMask[b * length + t] == 0 {
                            row.update(repeating: 0, count: width)
                        } else {
                            for c in 0..<width { row[c] = pg[b * width + c] * inverse }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Classification head and loss

/// The trainable head logits = pooled·Wᵀ + b, torch `nn.Linear(C, labels)` (peft's
/// `modules_to_save` classifier).
public final class ClassificationHead {
    /// W [labels, C], `classifier.weight`.
    public let weight: Parameter
    /// b [1, labels], `classifier.bias`.
    public let bias: Parameter
    // Saved by forward: the pooled input [B, C].
    private var input = Matrix.zeros(0, 0)

    /// torch's `nn.Linear` initialisation: W and b ~ U(±1/√C) (kaiming-uniform with a = √5).
    public init(inFeatures: Int, labelCount: Int, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let bound = 1 / Float(inFeatures).squareRoot()
        self.weight = Parameter("classifier.weight", role: .weight, value: .uniform(labelCount, inFeatures, bound: bound, using: &rng))
        self.bias = Parameter("classifier.bias", role: .bias, value: .uniform(1, labelCount, bound: bound, using: &rng))
    }

    public var parameters: [Parameter] { [weight, bias] }
    public var labelCount: Int { weight.value.rows }

    /// pooled [B, C] → logits [B, labels].
    public func forward(_ pooled: Matrix) -> Matrix {
        input = pooled
        var logits = Matrix.zeros(0, 0)
        gemm(pooled, .n, weight.value, .t, into: &logits)
        addRowVector(bias.value, to: &logits)
        return logits
    }

    /// ∂L/∂logits [B, labels] → ∂L/∂pooled [B, C]; accumulates ∂W = ∂logitsᵀ·pooled and ∂b = Σ_rows ∂logits.
    public func backward(_ gradLogits: Matrix) -> Matrix {
        gemm(gradLogits, .t, input, .n, into: &weight.grad, beta: 1)
        addColumnSums(of: gradLogits, to: &bias.grad)
        return matmul(gradLogits, .n, weight.value, .n)
    }
}

/// Mean cross-entropy over the batch, torch `F.cross_entropy`: L = (1/B)·Σ_b (logsumexp(z_b) − z_b[y_b]),
/// and ∂L/∂z = (softmax(z) − onehot(y))/B. logits [B, labels], labels [B] → (L, ∂L/∂z [B, labels]).
public func crossEntropy(logits: Matrix, labels: [Int]) -> (loss: Float, gradient: Matrix) {
    precondition(labels.count == logits.rows, "\(labels.count) labels for \(logits.rows) rows of logits")
    precondition(labels.allSatisfy { (0..<logits.cols).contains($0) }, "labels \(labels) outside 0..<\(logits.cols)")
    let batch = logits.rows, classes = logits.cols
    var gradient = Matrix(rows: batch, cols: classes)
    var total: Double = 0
    for b in 0..<batch {
        let row = Array(logits.storage[(b * classes)..<((b + 1) * classes)])
        let maximum = row.max()!
        let exps = row.map { expf($0 - maximum) }
        let sum = exps.reduce(0, +)
        total += Double(logf(sum) + maximum - row[labels[b]])
        for c in 0..<classes {
            gradient[b, c] = (exps[c] / sum - (c == labels[b] ? 1 : 0)) / Float(batch)
        }
    }
    return (Float(total / Double(batch)), gradient)
}

/// Mean squared error over the batch, torch `F.mse_loss`: L = (1/B)·Σ_b (p_b − t_b)², and
/// ∂L/∂p = 2(p − t)/B. predictions [B, 1], targets [B] → (L, ∂L/∂p [B, 1]).
public func meanSquaredError(predictions: Matrix, targets: [Float]) -> (loss: Float, gradient: Matrix) {
    precondition(predictions.cols == 1 && targets.count == predictions.rows, "\(targets.count) targets for predictions \(predictions.shape)")
    let batch = predictions.rows
    var gradient = Matrix(rows: batch, cols: 1)
    var total: Double = 0
    for b in 0..<batch {
        let difference = predictions[b, 0] - targets[b]
        total += Double(difference * difference)
        gradient[b, 0] = 2 * difference / Float(batch)
    }
    return (Float(total / Double(batch)), gradient)
}
